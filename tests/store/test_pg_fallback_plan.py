"""PostgreSQL: recording a batch of a fallback alert's first channels tells each person's next channel when to look,
or queues it at once after a failure, by looking that one row up — not by reading every row of the alert that waits
`skipped`. The planner cannot know how many wait (a fan-out's statistics are never fresh), and once started from the
alert, a 100,000-person fallback alert's every batch read all 100,000 (~1 ms a delivery)."""

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
from tests.conftest import SettingsFactory
from tests.crowd import sms_people

PEOPLE, BATCH = 2000, 100


class _Planning:
    """A transaction in which the statements about the next channels are planned (EXPLAIN) before they run."""

    def __init__(self, db: Db) -> None:
        self.db, self.dialect, self.plans = db, db.dialect, list[str]()

    async def execute(self, sql: str, *args: Any) -> int:
        if "n.position = d.position + 1" in sql:
            self.plans.append("\n".join(r[0] for r in await self.db.fetch(f"EXPLAIN {sql}", *args)))
        return await self.db.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
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
            planning = _Planning(db)
            assert len(await queue.record(planning, owner, results, now, lambda: b"key")) == BATCH
        assert len(planning.plans) == 2  # the accepted's next channels told when to look; the failed's queued
        for plan in planning.plans:
            assert "deliveries_silent" not in plan, plan  # the index of every row waiting `skipped`
        rows, _ = await store.list_deliveries(claimed[0].alert_id, 2 * PEOPLE, None)
        emails = [r for r in rows if r.channel == "email"]
        assert sum(1 for r in emails if r.status == "queued") == 2
        assert sum(1 for r in emails if r.status == "skipped" and r.next_attempt_at is not None) == BATCH - 3
    finally:
        await store.close()
