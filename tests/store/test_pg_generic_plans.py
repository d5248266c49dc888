"""PostgreSQL: the queue's statements stay index look-ups whatever size the table had when they were first planned.

asyncpg prepares every statement, and after five runs on a connection PostgreSQL may keep one generic plan for it,
made for the table as it was then — a worker's first claims and sweeps run on an empty queue, and a fresh
deployment's first alerts are small. A plan that read the whole table then, cheap on a few pages, would read every
delivery of every alert at every claim later (claims by address, tried in the twenty-sixth round, were planned so: a
sequential scan with the addresses as a filter, the server's CPU 4x through the benchmark). Each statement that the
claim, its read, the record of its results and the sweep run, and a report's look-up of its number, is planned here
as a generic plan on a store of a few deliveries: none of them may scan the deliveries table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.states import DeliveryStatus
from notifier.store import Store, open_store, queue
from notifier.store.db import Db, Row
from notifier.store.receipts import BY_NUMBER
from notifier.store.records import DeliveryUpdate
from tests.conftest import SettingsFactory
from tests.crowd import sms_people


class _Recording:
    """A transaction's statements, run as ever and written down."""

    def __init__(self, db: Db) -> None:
        self.db, self.dialect, self.statements = db, db.dialect, list[str]()

    async def execute(self, sql: str, *args: Any) -> int:
        self.statements.append(sql)
        return await self.db.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Any]) -> None:
        self.statements.append(sql)
        await self.db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self.statements.append(sql)
        return await self.db.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self.statements.append(sql)
        return await self.db.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return await self.db.fetchval(sql, *args)


async def _claimed_and_recorded(db: _Recording, store: Store, status: DeliveryStatus, policy: str) -> None:
    """A warning to the three people (`policy`), its deliveries due now claimed, read and recorded as `status`,
    each under an id of its own."""
    await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="预警", severity="severe",
                                       policy=policy, fallback_after=60), None)
    owner, now = uuid.uuid4().hex, time.time()
    await queue.claim(db, owner, now, now + 60, 500)
    claimed = await queue.leased(db, owner, now + 60)
    assert len(claimed) == (3 if policy == "fallback" else 6)
    done = [DeliveryUpdate(d.id, d.alert_id, status, now, provider_message_id=f"m{n}") for n, d in enumerate(claimed)]
    assert len(await queue.record(db, owner, done, now, lambda: b"key", people_once=policy == "fallback")) == len(done)


async def _queue_statements(store: Store) -> list[str]:
    """Three people (SMS, then email) warned twice: the SMS of a fallback warning accepted one by one (their emails
    told when to look), then both channels of an `all` warning delivered; then a sweep."""
    async with store.backend.transaction() as db:
        recording = _Recording(db)
        await _claimed_and_recorded(recording, store, DeliveryStatus.SENT, "fallback")
        await _claimed_and_recorded(recording, store, DeliveryStatus.DELIVERED, "all")
        await queue.sweep(recording, time.time(), 10)
    return list(dict.fromkeys(recording.statements))


async def _generic_plan(store: Store, sql: str) -> str:
    """The plan PostgreSQL keeps for `sql` when it plans it once for any parameters (not run)."""
    async with store.backend.transaction() as db:
        await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await db.execute(f"PREPARE queue_statement AS {sql}")
        try:
            values = ", ".join(["NULL"] * sql.count("?"))
            return "\n".join(r[0] for r in await db.fetch(f"EXPLAIN EXECUTE queue_statement({values})"))
        finally:
            await db.execute("DEALLOCATE queue_statement")


async def test_the_queues_statements_planned_on_a_small_table_never_read_all_deliveries(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    settings = make_settings(database={"url": pg_schema_url})
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(3, email=True), [{}] * 3)
        statements = [sql for sql in await _queue_statements(store) if "deliveries" in sql]
        assert len(statements) >= 5  # the claim, its read, two records, the sweep's reclaim at least
        statements.append(BY_NUMBER)  # and the row a report of one number of a whole request speaks of
        for sql in statements:
            plan = await _generic_plan(store, sql)
            assert "Seq Scan on deliveries" not in plan, f"{sql}\n{plan}"
    finally:
        await store.close()
