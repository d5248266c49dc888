"""PostgreSQL: a pooled connection goes back to the pool as its last use left it (no reset query: a round trip after
every read and transaction, measured one in four of a red warning's on two busy cores). That is safe only while
the store's work leaves nothing in the session beyond its transaction; these tests hold it to that."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notifier.store.db import POSTGRES, lock_key, planned_for
from notifier.store.pg_db import PgBackend

# What a session could keep after its transaction: settings, advisory locks, LISTENs, cursors (one row, four counts;
# the unnamed cursor is the statement asking).
LEFT_IN_SESSION = (
    "SELECT (SELECT COUNT(*) FROM pg_settings WHERE source = 'session' AND name = ANY($1::text[])), "
    "(SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
    "(SELECT COUNT(*) FROM pg_listening_channels()), (SELECT COUNT(*) FROM pg_cursors WHERE name <> '')")
PLANNED = [name for name, _ in POSTGRES.population_plan]


@pytest.fixture
async def one_connection(pg_schema_url: str) -> AsyncIterator[PgBackend]:
    """A back-end whose pool holds a single connection: every use after the first gets what the one before left."""
    backend = PgBackend(pg_schema_url, min_size=1, max_size=1)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


async def test_a_population_plan_and_advisory_locks_end_with_their_transaction(one_connection: PgBackend) -> None:
    async with one_connection.transaction() as db:
        await lock_key(db, "notifier:audit")
        async with planned_for(db, rows=1_000_000, table="deliveries"):  # a whole city's fan-out
            assert await db.fetchval("SELECT current_setting('enable_hashjoin')") == "off"
    async with one_connection.pool.acquire() as conn:
        assert tuple(await conn.fetchrow(LEFT_IN_SESSION, PLANNED)) == (0, 0, 0, 0)
        assert await conn.fetchval("SELECT current_setting('enable_hashjoin')") == "on"


async def test_a_transaction_that_failed_leaves_nothing_either(one_connection: PgBackend) -> None:
    with pytest.raises(LookupError):
        async with one_connection.transaction() as db:
            await lock_key(db, "notifier:audit")
            async with planned_for(db, rows=1_000_000, table="deliveries"):
                raise LookupError
    async with one_connection.pool.acquire() as conn:
        assert tuple(await conn.fetchrow(LEFT_IN_SESSION, PLANNED)) == (0, 0, 0, 0)
        assert await conn.fetchval("SELECT current_setting('enable_hashjoin')") == "on"
