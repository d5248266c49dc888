"""The demo's reach without a smartphone (issue 12): elderly residents follow the typical policy — WeChat or SMS
first, then a voice call when no receipt comes within the fallback window — some on landlines, over the fake Aliyun
voice gateway, which answers most calls while some ring out and some phones are off; and grid workers (proxies on
their community system's webhook) tell the elderly people who have no phone of their own, confirming most of them
while the warning goes out. The summary line says how much of the elderly group's coverage voice and proxies add.

The demo calls once (`max_calls = 1`): redialling waits at least a minute between calls, longer than the demo
runs; the tests and README show redials.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from notifier.coverage import alert_coverage
from notifier.fakes.aliyun_voice import FakeAliyunVoice, start_aliyun_voice
from notifier.fakes.webhook_receiver import RunningReceiver, start_receiver
from notifier.i18n import N_, Words
from notifier.store import Store
from notifier.store.records import AssistedRecord, SubscriberRecord
from subscriptions.contacts import generate_webhook_secret

VOICE_KEY, VOICE_SECRET = "demo-voice-key", "demo-voice-secret"
VOICE_TOKEN = "demo-voice-receipt-token-0001"  # noqa: S105 - the bundled fake's, protecting nothing
ELDERLY = "elderly"
GRID_WORKERS = 6
PEOPLE_EACH = 8
LANDLINE_ONLY = 0.15  # of the elderly residents: a fixed line and no mobile
CONFIRMED_SHARE = 0.75  # of the people on a grid worker's list, those confirmed told while the demo watches
LABELS = ("号楼{unit}单元 王奶奶", "号楼{unit}单元 李大爷", "号楼{unit}单元 张奶奶", "号楼{unit}单元 赵爷爷")
SUMMARY = N_("The elderly: %(targeted)s targeted, %(reached)s reached (%(rate)s) — %(voice)s first reached by a voice "
             "call, %(proxy)s told by grid workers; without them %(without)s")


class ReachGateways:
    """The fake Aliyun voice gateway and the grid workers' community system (a webhook receiver)."""

    voice: FakeAliyunVoice
    grid: RunningReceiver

    async def start(self, stack: AsyncExitStack) -> None:
        self.voice = await start_aliyun_voice(access_key_id=VOICE_KEY, access_key_secret=VOICE_SECRET,
                                              receipt_delay=0.5)
        stack.push_async_callback(self.voice.stop)
        self.grid = await start_receiver()
        stack.push_async_callback(self.grid.stop)

    def point_callbacks_at(self, base: str) -> None:
        self.voice.receipt_url = f"{base}/v1/receipts/voice/aliyun?token={VOICE_TOKEN}"

    def voice_section(self) -> dict[str, Any]:
        return {"provider": "aliyun", "endpoint": self.voice.url, "tts_code": "TTS_100001",
                "called_show_number": "03552000000", "access_key_id": VOICE_KEY, "access_key_secret": VOICE_SECRET,
                "receipt_token": VOICE_TOKEN, "max_calls": 1}


def with_voice(records: list[SubscriberRecord], rng: random.Random) -> list[SubscriberRecord]:
    """Elderly residents get WeChat or SMS first, then a voice call when no receipt comes within the fallback window
    — on their mobile or a landline; some have only a landline (no message on a screen reaches them)."""
    out = []
    for r in records:
        phone = r.contacts.get("sms")
        if ELDERLY not in r.groups or phone is None:
            out.append(r)
            continue
        landline = f"+863552{rng.randrange(100000, 999999)}"
        only = rng.random() < LANDLINE_ONLY
        contacts = {"voice": landline} if only else {**r.contacts, "voice": phone if rng.random() < 0.6 else landline}
        first = "wechat" if "wechat" in r.contacts else "sms"  # the typical policy: WeChat or SMS, then a call
        out.append(replace(r, contacts=contacts, subscriptions=[
            (topic, ["voice"] if only else [first, "voice"], rank) for topic, _, rank in r.subscriptions]))
    return out


def script_calls(records: list[SubscriberRecord], voice: FakeAliyunVoice, rng: random.Random) -> None:
    """Most calls are answered; some ring out, some phones are switched off."""
    for r in records:
        if number := r.contacts.get("voice"):
            roll = rng.random()
            if roll < 0.15:
                voice.standing(number, "no_answer")
            elif roll < 0.22:
                voice.standing(number, "powered_off")


def grid_workers(grid_url: str, regions: list[str], rng: random.Random) -> list[SubscriberRecord]:
    """Grid workers subscribed to heavy-pollution warnings, each with elderly people to tell in `regions` (store
    them with `webhook_secrets`)."""
    now = time.time()
    workers = []
    for w in range(GRID_WORKERS):
        region = regions[w % len(regions)]
        people = [AssistedRecord(id=uuid.uuid4().hex, region=region, groups=[ELDERLY], seq=n,
                                 label=f"{rng.randrange(1, 30)}" + rng.choice(LABELS).format(unit=rng.randrange(1, 6)))
                  for n in range(1, PEOPLE_EACH + 1)]
        workers.append(SubscriberRecord(
            id=uuid.uuid4().hex, region=region, locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
            consent_source="demo", consent_at=now, created_at=now, contacts={"webhook": f"{grid_url}/grid/{w}"},
            subscriptions=[("env.heavy-pollution", ["webhook"], 0)], role="proxy", assists=people))
    return workers


def webhook_secrets(workers: list[SubscriberRecord]) -> list[dict[str, str]]:
    return [{"webhook": generate_webhook_secret()} for _ in workers]


async def confirm_as_grid_workers(grid: RunningReceiver, base: str, rng: random.Random,
                                  stop: asyncio.Event) -> int:
    """Play the grid workers: for each list that arrives, tell most of the people on it, then confirm each at its
    link (POSTed to the demo's own address). Returns how many were confirmed."""
    seen, confirmed = 0, 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            for request in grid.received[seen:]:
                seen += 1
                for person in _assisted(request.body):
                    if rng.random() < CONFIRMED_SHARE:
                        async with http.post(base + urlsplit(person["confirm_url"]).path) as answer:
                            confirmed += answer.status == 200
            await asyncio.sleep(0.3)
    return confirmed


def _assisted(body: bytes) -> list[dict[str, str]]:
    listed: list[dict[str, str]] = json.loads(body).get("assisted", [])
    return listed


async def elderly_summary(store: Store, alert_id: str, words: Words) -> str:
    """The elderly group's coverage, and how much of it came first by voice or through a grid worker."""
    coverage = await alert_coverage(store, alert_id)
    group = coverage.by_group.get(ELDERLY)
    if group is None or not group.targeted or group.reached is None:
        return ""
    first = {kind: sum(b.reached for b in await store.coverage_breakdown(alert_id)
                       if b.group == ELDERLY and b.channel == kind) for kind in ("voice", "proxy")}
    without = (group.reached - first["voice"] - first["proxy"]) / group.targeted

    def pct(rate: float | None) -> str:
        return "—" if rate is None else f"{rate * 100:.1f}%"

    return words(SUMMARY, targeted=group.targeted, reached=group.reached, rate=pct(group.coverage_rate),
                 voice=first["voice"], proxy=first["proxy"], without=pct(without))
