"""The PostgreSQL connection pool every PostgreSQL store part shares, its transactions and the numbered migrations
(`migrations_pg/`, the SQLite schema in PostgreSQL's dialect).

One asyncpg pool per store: each write is `async with pool.acquire() as c, c.transaction():` (READ COMMITTED; the
queue's row locks — `FOR UPDATE SKIP LOCKED` claims, `FOR UPDATE` fences — make concurrent workers on any number
of hosts safe), each read takes any pooled connection. Server settings come from the url's query string, which
asyncpg passes to the server: `postgresql://host/db?search_path=tenant_a` puts every table in schema `tenant_a`
(the tests give each test a schema of its own this way).

Migrations run in one transaction under a transaction-scoped advisory lock, so that workers starting together
on several hosts apply each version once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from notifier.store.rows import migrations as bundled_migrations

Conn = Any  # asyncpg.Connection (untyped)
Record = Any  # asyncpg.Record: r["column"], r[0], dict(r)
_MIGRATION_LOCK = 0x6E6F7469  # pg_advisory_xact_lock key: "noti"
POOL_MIN, POOL_MAX = 1, 10


def migrations() -> list[tuple[int, str]]:
    """(version, sql) of every bundled migration of this dialect, in order."""
    return bundled_migrations("migrations_pg")


def rowcount(status: str) -> int:
    """Rows touched, from an asyncpg command status ('UPDATE 3', 'INSERT 0 1', 'DELETE 0')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Args:
    """Collects the parameters of a query assembled from fixed fragments: `args(value)` returns its `$n`."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class PgBase:
    """The pool, transactions and migrations of one PostgreSQL database (or schema)."""

    def __init__(self, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX) -> None:
        self.url = url
        self._min, self._max = min_size, max_size
        self._pool: Any = None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self._min, max_size=self._max)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    async def upgrade(self) -> list[int]:
        """Apply the migrations not yet applied; returns the versions applied now."""
        async with self.transaction() as c:
            await c.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                            "applied_at DOUBLE PRECISION NOT NULL)")
            done = {r[0] for r in await c.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, sql in migrations():
                if version in done:
                    continue
                await c.execute(sql)  # a script without parameters: several statements in one call
                await c.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time())
                applied.append(version)
        return applied

    # ------------------------------------------------------------ access

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """One write transaction on a pooled connection, rolled back on any error."""
        async with self.pool.acquire() as c, c.transaction():
            yield c

    async def _read(self, sql: str, *args: Any) -> list[Record]:
        return list(await self.pool.fetch(sql, *args))
