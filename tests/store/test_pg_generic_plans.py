"""PostgreSQL: the queue's statements stay index look-ups whatever size the table had when they were first planned.

asyncpg prepares every statement, and after five runs on a connection PostgreSQL may keep one generic plan for it,
made for the table as it was then — a worker's first claims and sweeps run on an empty queue, and a fresh
deployment's first alerts are small. A plan that read the whole table then, cheap on a few pages, would read every
delivery of every alert at every claim later (claims by address, tried in the twenty-sixth round, were planned so: a
sequential scan with the addresses as a filter, the server's CPU 4x through the benchmark). Each statement that the
claim, its read, the record of its results and the sweep run is planned here as a generic plan on a store of a few
deliveries: none of them may scan the deliveries table.

A push of delivery reports joins its batch to the deliveries, the reports and the contacts by key in ways no generic
plan made on small tables reads by key: its statements are planned at each run (`planned_each_run`); here they run
so, and planned on tables grown since they were last analysed, none reads a table whole."""

from __future__ import annotations

import time
from typing import Any

from notifier.states import DeliveryStatus
from notifier.store import Store, queue
from notifier.store.db import Db
from notifier.store.receipts import APPLIED, apply_receipts
from tests.conftest import SettingsFactory
from tests.store.recording import Recording, a_push, claimed_and_recorded, three_people, warned


class _Noting(Recording):
    """… and the planner's plan cache mode when each ran."""

    def __init__(self, db: Db) -> None:
        super().__init__(db)
        self.modes = list[str]()

    async def noted(self, sql: str, args: tuple[Any, ...]) -> None:
        await super().noted(sql, args)
        self.modes.append(await self.db.fetchval("SELECT current_setting('plan_cache_mode')"))


async def _queue_statements(store: Store) -> list[str]:
    """Three people (SMS, then email) warned twice: the SMS of a fallback warning accepted one by one (their emails
    told when to look), then both channels of an `all` warning delivered; then a sweep."""
    async with store.backend.transaction() as db:
        recording = Recording(db)
        await warned(store, "fallback")
        await claimed_and_recorded(recording, DeliveryStatus.SENT, "fallback")
        await warned(store, "all")
        await claimed_and_recorded(recording, DeliveryStatus.DELIVERED, "all")
        await queue.sweep(recording, time.time(), 10)
    return recording.statements


async def _generic_plan(store: Store, sql: str) -> str:
    """The plan PostgreSQL keeps for `sql` when it plans it once for any parameters (not run)."""
    async with store.backend.transaction() as db:
        await db.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await db.execute(f"PREPARE queue_statement AS {sql}")
        try:
            values = f"({', '.join(['NULL'] * sql.count('?'))})" if "?" in sql else ""
            return "\n".join(r[0] for r in await db.fetch(f"EXPLAIN EXECUTE queue_statement{values}"))
        finally:
            await db.execute("DEALLOCATE queue_statement")


async def test_the_queues_statements_planned_on_a_small_table_never_read_all_deliveries(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    async with three_people(make_settings(database={"url": pg_schema_url})) as store:
        statements = [sql for sql in await _queue_statements(store) if "deliveries" in sql]
        assert len(statements) >= 5  # the claim, its read, two records, the sweep's reclaim at least
        for sql in statements:
            plan = await _generic_plan(store, sql)
            assert "Seq Scan on deliveries" not in plan, f"{sql}\n{plan}"


# Tables a city's history makes big, grown by rows of their own (not analysed since).
_GROWN = (
    "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, next_attempt_at, "
    "created_at, updated_at, provider_message_id) SELECT md5(CAST(g AS TEXT)), ?, 'g' || g, 'sms', 0, 'delivered', 0, "
    "0, 0, 0, 'big' || g FROM generate_series(1, 50000) AS g",
    "INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, outcome, received_at) "
    "SELECT 'sms', 'big' || g, 'big' || g, 1, 'applied', 0 FROM generate_series(1, 50000) AS g",
    "INSERT INTO subscribers (id, region, locale, status, created_at, updated_at) "
    "SELECT 'g' || g, '140402', 'zh-CN', 'active', 0, 0 FROM generate_series(1, 50000) AS g",
    "INSERT INTO contacts (subscriber_id, channel, address, verified_at) "
    "SELECT 'g' || g, 'sms', '+86137' || lpad(CAST(g AS TEXT), 8, '0'), 0 FROM generate_series(1, 50000) AS g",
)


async def test_a_push_of_reports_is_planned_at_each_run_and_reads_by_key(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    async with three_people(make_settings(database={"url": pg_schema_url})) as store:
        await warned(store, "fallback")
        async with store.backend.transaction() as db:
            await claimed_and_recorded(db, DeliveryStatus.SENT, "fallback")  # m0, m1, m2
            for sql in _GROWN:
                await db.execute(sql, *([await db.fetchval("SELECT alert_id FROM deliveries LIMIT 1")]
                                        if "?" in sql else []))
            noting = _Noting(db)
            counts = await apply_receipts(noting, "sms", await a_push(db), time.time(), b"k" * 32)
            assert counts[APPLIED] == 3
            runs = [(sql, args, mode) for (sql, args), mode in zip(noting.runs, noting.modes, strict=True)
                    if any(t in sql for t in ("deliveries", "receipts", "contacts"))]
            assert len(runs) >= 6  # stored, the requests' alerts, by number, by id, delivered, failed, the outcomes
            await db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            for sql, args, mode in runs:
                assert mode == "force_custom_plan", sql
                plan = "\n".join(r[0] for r in await db.fetch(f"EXPLAIN {sql}", *args))
                for table in ("deliveries", "receipts", "contacts"):
                    assert f"Seq Scan on {table}" not in plan, f"{sql}\n{plan}"

