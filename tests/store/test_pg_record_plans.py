"""PostgreSQL: recording a batch of a large alert reaches the other rows its results change — each person's next
channel under a fallback alert, the people a proxy lists — by looking each one up by its key, never by reading every
row of the alert. The planner cannot know a fan-out's rows (its statistics are never fresh): started from the alert,
a 100,000-person fallback alert's every batch read all 100,000 waiting rows (~1 ms a delivery); and in a store where
anyone is assisted, every batch looked for proxies' people through the alert's whole key index once per delivery
(three alerts to 20,000 people: 1.4 s a batch of 500), or through every waiting row."""

from __future__ import annotations

import time
import uuid
from typing import Any

from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.states import DeliveryStatus
from notifier.store import open_store, queue
from notifier.store.db import Db
from notifier.store.records import DeliveryUpdate
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory
from tests.crowd import sms_people

PEOPLE, BATCH = 2000, 100


class _Planning:
    """A transaction in which the statements naming `mark` are planned (EXPLAIN) before they run."""

    def __init__(self, db: Db, mark: str) -> None:
        self.db, self.dialect, self.mark, self.plans = db, db.dialect, mark, list[str]()

    async def _plan(self, sql: str, args: tuple[Any, ...]) -> None:
        if self.mark in sql:
            self.plans.append("\n".join(r[0] for r in await self.db.fetch(f"EXPLAIN {sql}", *args)))

    async def execute(self, sql: str, *args: Any) -> int:
        await self._plan(sql, args)
        return await self.db.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        await self._plan(sql, args)
        return await self.db.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.db.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.db.fetchval(sql, *args)


async def test_a_batch_of_first_channels_reaches_each_next_channel_by_its_own_row(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Of a batch of numbers, one is to be tried again and two failed for good (a mixed batch: its rows locked and
    read first); the others were accepted one by one."""
    settings = make_settings(database={"url": pg_schema_url})
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(PEOPLE, email=True), [{}] * PEOPLE)
        await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="预警", policy="fallback",
                                           fallback_after=60), None)
        owner, now = uuid.uuid4().hex, time.time()
        claimed = await store.claim(owner, now, now + 60, BATCH)
        results = [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, now, provider_message_id=f"serial-{n}")
                   for n, d in enumerate(claimed)]
        results[0] = DeliveryUpdate(claimed[0].id, claimed[0].alert_id, DeliveryStatus.QUEUED, now,
                                    next_attempt_at=now + 1)
        results[1:3] = [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.FAILED, now, error="isv.MOBILE_NUMBER_ILLEGAL",
                                       fall_back=True) for d in claimed[1:3]]
        async with store.backend.transaction() as db:
            planning = _Planning(db, "n.position = d.position + 1")
            assert len((await queue.record(planning, owner, results, now, lambda: b"key")).written) == BATCH
        assert len(planning.plans) == 2  # the accepted's next channels told when to look; the failed's queued
        for plan in planning.plans:
            assert "deliveries_silent" not in plan, plan  # the index of every row waiting `skipped`
        rows, _ = await store.list_deliveries(claimed[0].alert_id, 2 * PEOPLE, None)
        emails = [r for r in rows if r.channel == "email"]
        assert sum(1 for r in emails if r.status == "queued") == 2
        assert sum(1 for r in emails if r.status == "skipped" and r.next_attempt_at is not None) == BATCH - 3
    finally:
        await store.close()


async def test_a_batch_in_a_store_with_proxies_finds_their_people_by_their_own_rows(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Three warnings to 2,000 people and a grid worker who tells two neighbours without a phone; a batch claimed
    and recorded, some numbers failed for good: the statements that look for the people of the batch's proxies
    (accepted, and failed) look each person's `proxy` row up by its whole key — not the alert's every row, nor
    every waiting row of every alert."""
    settings = make_settings(database={"url": pg_schema_url})
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(PEOPLE), [{}] * PEOPLE)
        await create_subscriber(store, SubscriberIn.model_validate({
            "contacts": {"webhook": "https://grid.example.org/hook"}, "region": "140402", "role": "proxy",
            "assists": [{"label": "3号楼 王奶奶", "region": "140402"}, {"label": "5号楼 李大爷", "region": "140402"}],
            "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]}),
            allow_private_webhooks=True)
        for _ in range(3):
            await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="预警", severity="severe"),
                                None)
        owner, now = uuid.uuid4().hex, time.time()
        claimed = await store.claim(owner, now, now + 60, 5 * BATCH)
        results = [DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.FAILED, now, error="isv.MOBILE_NUMBER_ILLEGAL")
                   if n % 10 == 0 else
                   DeliveryUpdate(d.id, d.alert_id, DeliveryStatus.SENT, now, provider_message_id=f"serial-{n}")
                   for n, d in enumerate(claimed)]
        async with store.backend.transaction() as db:
            planning = _Planning(db, "JOIN assisted p")
            assert len((await queue.record(planning, owner, results, now, lambda: b"key")).written) == len(claimed)
        assert len(planning.plans) == 2  # the accepted proxies' people, the failed proxies' people
        accepted_people = planning.plans[0]
        assert "deliveries_due" not in accepted_people, accepted_people  # every waiting row of every alert
        for plan in planning.plans:
            for line in plan.splitlines():
                if "channel = 'proxy'" in line and "Index Cond" in line:
                    assert "subscriber_id" in line, plan  # the whole key, not the alert's every row
    finally:
        await store.close()
