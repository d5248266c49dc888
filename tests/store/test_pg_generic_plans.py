"""PostgreSQL: the queue's statements stay index look-ups whatever size the table had when they were first planned.

asyncpg prepares every statement, and after five runs on a connection PostgreSQL may keep one generic plan for it,
made for the table as it was then — a worker's first claims and sweeps run on an empty queue, and a fresh
deployment's first alerts are small. A plan that read the whole table then, cheap on a few pages, would read every
delivery of every alert at every claim later (claims by address, tried in the twenty-sixth round, were planned so: a
sequential scan with the addresses as a filter, the server's CPU 4x through the benchmark). Each statement that the
claim, its read, the record of its results (accepted, retried, failed) and the sweep run is planned here as a
generic plan on a store of a few deliveries: none of them may scan the deliveries table.

Some statements join a batch to the deliveries, the reports or the contacts by key in ways no generic plan made on
small tables reads by key (a push of delivery reports; a failure's next channel; a contact disabled): those are
planned at each run (`db.planned_each_run`); here they run so, and planned on tables grown since they were last
analysed, none reads a table whole."""

from __future__ import annotations

import time
from typing import Any

from notifier.states import DeliveryStatus
from notifier.store import Store, fallback, queue
from notifier.store.db import Db, planned_each_run
from notifier.store.receipts import APPLIED, apply_receipts
from tests.conftest import SettingsFactory
from tests.store.recording import Recording, a_push, claimed_and_failed, claimed_and_recorded, three_people, warned


class _Noting(Recording):
    """… and the planner's plan cache mode when each ran."""

    def __init__(self, db: Db) -> None:
        super().__init__(db)
        self.modes = list[str]()

    async def noted(self, sql: str, args: tuple[Any, ...]) -> None:
        await super().noted(sql, args)
        self.modes.append(await self.db.fetchval("SELECT current_setting('plan_cache_mode')"))


async def _the_queues_work(store: Store) -> list[tuple[str, tuple[Any, ...], str]]:
    """Three people (SMS, then email) warned three times: the SMS of a fallback warning accepted one by one (their
    emails told when to look), both channels of an `all` warning delivered, the SMS of a fallback warning failing
    (a retry, a permanent failure and its next channel, a contact disabled); a push of the first warning's reports;
    a sweep. Each statement once, with its first parameters and the plan cache mode it ran under."""
    async with store.backend.transaction() as db:
        noting = _Noting(db)
        await warned(store, "fallback")
        await claimed_and_recorded(noting, DeliveryStatus.SENT, "fallback")
        await warned(store, "all")
        await claimed_and_recorded(noting, DeliveryStatus.DELIVERED, "all", ids="a")
        await warned(store, "fallback")
        await claimed_and_failed(noting)
        applied = await apply_receipts(noting, "sms", await a_push(db), time.time(), b"k" * 32)
        assert applied.pushes[0][2] == [APPLIED] * 3
        await queue.sweep(noting, time.time(), 10, fallback.Requeued())
    runs = {}
    for (sql, args), mode in zip(noting.runs, noting.modes, strict=True):
        runs.setdefault(sql, (sql, args, mode))
    return list(runs.values())


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
    """Those that may keep a generic plan (not planned at each run)."""
    async with three_people(make_settings(database={"url": pg_schema_url})) as store:
        kept = [sql for sql, _, mode in await _the_queues_work(store) if mode == "auto" and "deliveries" in sql]
        assert len(kept) >= 8  # the claim, its read, records of each kind, the sweep's reclaim at least
        bad = []
        for sql in kept:
            plan = await _generic_plan(store, sql)
            if "Seq Scan on deliveries" in plan:
                bad.append(f"{sql}\n{plan}")
        assert not bad, "\n\n".join(bad)


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


async def test_the_statements_planned_at_each_run_read_by_key_on_tables_grown_since_analysed(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Those a generic plan made on small tables would read whole (a push of reports, a failure's next channel, a
    contact disabled): planned at each run, and so planned on big tables that were small when last analysed."""
    async with three_people(make_settings(database={"url": pg_schema_url})) as store:
        each_run = [(sql, args) for sql, args, mode in await _the_queues_work(store)
                    if mode == "force_custom_plan" and any(t in sql for t in ("deliveries", "receipts", "contacts"))]
        # The push's statements (stored, the requests' alerts, by number, by id, delivered, failed, the outcomes),
        # a failure's next channel, a contact disabled
        assert len(each_run) >= 9
        async with store.backend.transaction() as db:
            alert_id = await db.fetchval("SELECT alert_id FROM deliveries LIMIT 1")
            for sql in _GROWN:
                await db.execute(sql, *([alert_id] if "?" in sql else []))
            await db.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            bad = []
            for sql, args in each_run:
                plan = "\n".join(r[0] for r in await db.fetch(f"EXPLAIN {sql}", *args))
                if any(f"Seq Scan on {table}" in plan for table in ("deliveries", "receipts", "contacts")):
                    bad.append(f"{sql}\n{plan}")
            assert not bad, "\n\n".join(bad)


async def test_a_block_planned_at_each_run_leaves_the_transaction_as_it_was(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Nested (a push's failures queue their next channels, themselves planned at each run) and after."""
    async with three_people(make_settings(database={"url": pg_schema_url})) as store:
        async with store.backend.transaction() as db:
            mode = "SELECT current_setting('plan_cache_mode')"
            seen = [await db.fetchval(mode)]
            async with planned_each_run(db):
                seen.append(await db.fetchval(mode))
                async with planned_each_run(db):
                    seen.append(await db.fetchval(mode))
                seen.append(await db.fetchval(mode))
            seen.append(await db.fetchval(mode))
    assert seen == ["auto", "force_custom_plan", "force_custom_plan", "force_custom_plan", "auto"]
