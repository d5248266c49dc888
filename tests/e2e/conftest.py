"""Fixtures for the browser tests: Debian's headless Chromium driven by Playwright (never a downloaded browser),
and the real application on a loopback port with a demo-like alert published to a few dozen subscribers over the
fake SMTP server and webhook receiver.

Without Chromium (or the playwright package) the tests skip with the reason, except under CI (`CI` set to
anything but "", "0" or "false"), where a missing browser is a failure: CI must prove the dashboard works.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.fakes.smtp import RunningSmtp
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.keys import create_key
from notifier.models import Role
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from notifier.web import SERVICE, create_app
from notifier.web.admin.dashboard import ADMIN, setup
from tests.conftest import SettingsFactory

CHROMIUM = "/usr/bin/chromium"
# As the machine notes prescribe for root in a closed network: no sandbox, no GPU, no calls home.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUBSCRIBERS = 60
SEED = 20261127


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} — CI must run the browser tests (.ci/run installs chromium)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's chromium, or skip (fail under CI)."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        _missing("headless Chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Debian Chromium, closed after the test."""
    executable = chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


# The demo's heavy-pollution warning, aimed at every district and group so that all 13 bars have people.
ALERT = {"topic": "env.heavy-pollution", "severity": "severe", "urgency": "expected", "level": "orange",
         "policy": "fallback", "fallback_after": 300, "headline": "长治市重污染天气橙色预警",
         "body": "受不利气象条件影响，预计未来72小时我市将出现重度污染天气。",
         "instruction": "老年人、儿童及呼吸道、心脑血管疾病患者减少户外活动；外出请佩戴口罩。",
         "data": {"aqi_forecast": "200-300", "duration_hours": 72}}
GROUPS = ["elderly", "child", "student", "disabled", "low_income"]


def residents(count: int, regions: list[str], webhook_base: str,
              rng: random.Random) -> tuple[list[SubscriberRecord], list[dict[str, str]]]:
    """Residents by email and organisations by webhook (some with both: email first, webhook as fallback),
    spread over every district and a few groups."""
    records, secrets = [], []
    now = time.time()
    for i in range(count):
        contacts: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.8:
            contacts["email"] = f"resident{i:03d}@example.org"
        if roll >= 0.55:
            contacts["webhook"] = f"{webhook_base}/org/{i:03d}"
        channels = [k for k in ("email", "webhook") if k in contacts]
        groups = sorted({g for g in GROUPS if rng.random() < (0.4 if g == "elderly" else 0.1)})
        records.append(SubscriberRecord(
            id=uuid.uuid4().hex, region=regions[i % len(regions)], locale="zh-CN", quiet_start=None, quiet_end=None,
            status="active", consent_source="e2e", consent_at=now, created_at=now, groups=groups, contacts=contacts,
            subscriptions=[("env.heavy-pollution", channels, 0)]))
        secrets.append({"webhook": f"whsec_{uuid.uuid4().hex}"} if "webhook" in contacts else {})
    return records, secrets


def script_trouble(records: list[SubscriberRecord], smtp: RunningSmtp, receiver: RunningReceiver,
                   rng: random.Random) -> None:
    """Dead mailboxes (permanent: fall back or fail), greylisting (retried), flaky and retired endpoints."""
    for record in records:
        roll = rng.random()
        if email := record.contacts.get("email"):
            if roll < 0.12:
                smtp.script(email, [550], then=550)
            elif roll < 0.2:
                smtp.script(email, [451])
        if url := record.contacts.get("webhook"):
            if roll > 0.9:
                receiver.script(url.removeprefix(receiver.url), [503, 503])
            elif roll > 0.85:
                receiver.script(url.removeprefix(receiver.url), [410])


@dataclass
class Served:
    """The running app, its URL, its service, keys, the published alert, and an HTTP client for the API."""

    url: str
    service: Service
    http: aiohttp.ClientSession
    alert_id: str = ""
    keys: dict[Role, str] = field(default_factory=dict)

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def api(self, path: str, role: Role = Role.ADMIN) -> Any:
        async with self.http.get(self.url + path, headers=self.auth(role)) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@pytest.fixture
async def served(make_settings: SettingsFactory, smtp: RunningSmtp,
                 receiver: RunningReceiver) -> AsyncIterator[Served]:
    """The real app on 127.0.0.1 with the demo's warning (all districts, all groups) published to 60 synthetic
    subscribers — dead mailboxes, greylisting, flaky and retired endpoints included — and not yet dispatched."""
    settings = make_settings(channels={"email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                                                 "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}})
    app = create_app(settings)
    if ADMIN not in app:  # until create_app registers the dashboard itself
        setup(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        service = app[SERVICE]
        running = Served(url=str(server.make_url("")).rstrip("/"), service=service, http=http)
        for role in (Role.ADMIN, Role.VIEWER):
            running.keys[role] = (await create_key(service.store, role))[1]
        rng = random.Random(SEED)
        regions = [r.code for r in service.catalogue.regions]
        records, secrets = residents(SUBSCRIBERS, regions, receiver.url, rng)
        await service.store.bulk_create_subscribers(records, secrets)
        script_trouble(records, smtp, receiver, rng)
        async with http.post(f"{running.url}/v1/alerts", json=ALERT, headers=running.auth()) as response:
            assert response.status == 202, await response.text()
            running.alert_id = (await response.json())["id"]
        yield running
    finally:
        await http.close()
        await server.close()
