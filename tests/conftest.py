"""Shared fixtures: settings on a temporary SQLite file, an opened Service, the fake gateways on loopback, and a
factory for subscribers. Everything talks over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.config import Settings, load_settings
from notifier.fakes.smtp import RunningSmtp, start_smtp
from notifier.fakes.webhook_receiver import RunningReceiver, start_receiver
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn

pytest_plugins = ["tests.log_scanner"]  # fails the run when any log record carries a contact

# aiosqlite logs every SQL statement with its parameters (contacts among them) at DEBUG.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

SettingsFactory = Callable[..., Settings]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings on a fresh SQLite file; webhooks may target loopback; fast retries; worker off."""

    def create(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "database": {"url": f"sqlite:///{tmp_path / 'notifier.db'}"},
            "channels": {"webhook": {"allow_private_networks": True, "timeout": 2.0}},
            "worker": {"enabled": False, "backoff_initial": 0.01, "backoff_max": 0.05, "poll_interval": 0.05},
        }
        return load_settings(None, {}, _merge(base, overrides))

    return create


@pytest.fixture
async def receiver() -> AsyncIterator[RunningReceiver]:
    running = await start_receiver()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def smtp() -> AsyncIterator[RunningSmtp]:
    running = await start_smtp()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def service(make_settings: SettingsFactory, smtp: RunningSmtp) -> AsyncIterator[Service]:
    """An opened service with webhook and email (to the fake SMTP server) configured, worker not running."""
    settings = make_settings(channels={"email": {"host": smtp.host, "port": smtp.port, "tls": "none",
                                                  "sender": "长治市政务公开 <notify@changzhi.gov.cn>"}})
    async with Service(settings) as running:
        yield running


SubscriberFactory = Callable[..., Awaitable[SubscriberRecord]]


@pytest.fixture
def make_subscriber(service: Service) -> SubscriberFactory:
    """create(contacts=…, channels=[…], region=…, groups=[…], topic=…, min_severity=…, quiet_hours=…)."""

    async def create(*, contacts: dict[str, str], channels: list[str] | None = None, region: str = "140402",
                     groups: list[str] | None = None, topic: str = "env.heavy-pollution",
                     min_severity: str | None = None, quiet_hours: dict[str, str] | None = None,
                     locale: str = "zh-CN") -> SubscriberRecord:
        body = SubscriberIn.model_validate({
            "contacts": contacts, "region": region, "groups": groups or [], "locale": locale,
            "quiet_hours": quiet_hours,
            "subscriptions": [{"topic": topic, "channels": channels or [k for k in contacts if k != "webhook_secret"],
                               "min_severity": min_severity}]})
        record, _ = await create_subscriber(service.store, body, allow_private_webhooks=True)
        return record

    return create


async def settle(service: Service, timeout: float = 20.0) -> None:
    """Run the dispatcher until nothing is pending (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await service.dispatcher.drain(timeout=timeout)
        stats = await service.store.queue_stats()
        if not any(stats.get(s, 0) for s in ("queued", "sending")):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries still pending after {timeout} s: {await service.store.queue_stats()}")
