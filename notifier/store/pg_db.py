"""The PostgreSQL back-end's connections: one asyncpg pool per store. Each write is a transaction on a pooled
connection (READ COMMITTED; the queue's row locks — `FOR UPDATE SKIP LOCKED` claims, `FOR UPDATE` fences — make
concurrent workers on any number of hosts safe); each read takes any pooled connection.

Server settings come from the url's query string, which asyncpg passes to the server:
`postgresql://host/db?search_path=tenant_a` puts every table in schema `tenant_a` (the tests give each test a
schema of its own this way).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from notifier.store.db import COMING, POSTGRES, Db, QueueWatch, Row, T, hear

# Two connections are always kept: asyncpg (0.32 on) closes a connection idle for IDLE_LIFETIME_SECONDS only while
# the pool holds more than POOL_MIN. A red warning after a quiet hour — or while a routine publish holds the other
# connection — is then published on one whose server process has its tables, triggers and statements ready: on a
# new connection a small life-safety publish took 3-4 ms to connect and 11-15 ms more (the tables and statements
# looked up anew) against 4.4-5.7 ms on a connection that had published before (an idle machine; more on busy cores).
POOL_MIN, POOL_MAX = 2, 10
IDLE_LIFETIME_SECONDS = 300.0
# After the listening connection is lost or cannot be made, listen again after this long, doubling up to the
# most (the poll covers the gap).
RELISTEN_SECONDS, RELISTEN_MOST = 1.0, 30.0
# What a lost, refused or unreachable server raises: the listening connection and an announcement survive it.
SERVER_UNREACHED = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
log = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"\?")

Connection = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool


@lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """`?` placeholders as asyncpg's `$1, $2, …` (our statements never hold a literal question mark)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def rowcount(status: str) -> int:
    """Rows touched, from a command status ('UPDATE 3', 'INSERT 0 1', 'DELETE 0')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgDb:
    """`Db` over one pooled connection (in a transaction) or over the pool itself (reads)."""

    dialect = POSTGRES

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return rowcount(await self.conn.execute(numbered(sql), *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        if batch:
            await self.conn.executemany(numbered(sql), batch)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self.conn.fetch(numbered(sql), *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self.conn.fetchrow(numbered(sql), *args)
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(numbered(sql), *args)


async def _kept_as_is(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is. Our sessions keep nothing beyond their transactions — settings
    by `set_config(…, true)`, advisory locks by `pg_advisory_xact_lock`, no cursor held past a commit, LISTEN only on
    `queue_watch`'s own connection — so asyncpg's default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`) would be a round trip for nothing after every read and transaction — on two busy cores
    each round trip waits for two processes to be scheduled, and a red warning's publish and claim made ~25 of them.
    asyncpg still rolls back a transaction left open, whatever this does (tests/store/test_pg_sessions.py)."""


class PgBackend:
    """The pool and transactions of one PostgreSQL database (or schema)."""

    dialect = POSTGRES

    def __init__(self, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX,
                 idle_lifetime: float = IDLE_LIFETIME_SECONDS) -> None:
        self.url = url
        self._min, self._max, self._idle_lifetime = min_size, max_size, idle_lifetime
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=self._min, max_size=self._max, reset=_kept_as_is,
                                               max_inactive_connection_lifetime=self._idle_lifetime)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self, *, background: bool = False) -> AsyncIterator[Db]:
        """One write transaction on a pooled connection, rolled back on any error (PostgreSQL has no single
        writer to queue for: `background` changes nothing)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield PgDb(conn)

    def schema_change(self) -> AbstractAsyncContextManager[Db]:
        """A transaction like any other: PostgreSQL changes a table in place, whoever refers to it."""
        return self.transaction()

    async def run(self, work: Callable[[Db], Awaitable[T]], *, background: bool = False, urgent: bool = False,
                  yielding: bool = False, single: bool = False, idle: bool = False) -> T:
        """`urgent`, `yielding` and `idle` mean nothing here: PostgreSQL's writers do not wait for each other's
        transactions (except on the rows or keys they share)."""
        if single:
            async with self.pool.acquire() as conn:
                return await work(PgDb(conn))
        async with self.transaction(background=background) as db:
            return await work(db)

    @property
    def reader(self) -> Db:
        return PgDb(self.pool)

    async def bulk_read(self, work: Callable[[Db], Awaitable[T]]) -> T:
        """`work` over the pool (no reader waits for another's reads)."""
        return await work(self.reader)

    async def run_script(self, db: Db, script: str) -> None:
        await db.execute(script)  # no parameters: asyncpg runs the whole script in one call

    async def after_bulk_load(self, tables: Sequence[str]) -> None:
        """VACUUM (ANALYZE), what autovacuum does up to a minute later: a fan-out planned before its statistics
        joins freshly imported tables by nested loops over scans — measured, 100,000 subscribers: its SELECT
        635–680 ms without statistics, 160–175 ms with (hash joins) —, and reads every imported row's table page
        until the pages are marked visible — the targets' INSERT 428 -> 268 ms, a 100,000-person publish
        1,225–1,272 -> 1,032–1,118 ms (store alone, copies of one database, two runs each way)."""
        async with self.pool.acquire() as conn:  # VACUUM runs outside a transaction: a connection of its own
            await conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")  # our own table names, never input

    @asynccontextmanager
    async def queue_watch(self, wake: Callable[[int, str | None], None],
                          coming: Callable[[int], None] | None = None) -> AsyncIterator[QueueWatch]:
        """LISTEN on the schema's channel (`queued_channel()`, migration 0022) on a connection of its own, outside
        the pool, while the block runs: a lost connection is made again, and `wake(0, None)` once it listens again
        for what was queued meanwhile. The trigger's payload is the priority queued and an alert of it (migration
        0024; before it, the priority alone); an announcement's is COMING and the priority."""
        watch = QueueWatch()
        listening = asyncio.create_task(self._listen(lambda payload: hear(payload, wake, coming), watch))
        try:
            yield watch
        finally:
            listening.cancel()
            await asyncio.wait({listening})

    async def announce(self, priority: int) -> None:
        """A NOTIFY of its own, outside any transaction: delivered at once, not at the publish's commit."""
        await self._notify(f"{COMING}{priority}", "announce a life-safety publish",
                           "workers elsewhere learn of it at its commit")

    def queued(self, priority: int, alert_id: str) -> None:
        """Nothing: the deliveries' trigger told the listeners at the commit (migrations 0022, 0024)."""

    async def queued_again(self, priority: int, alert_id: str) -> None:
        """A NOTIFY with the trigger's payload (migration 0024), which tells of inserts alone."""
        await self._notify(f"{priority}:{alert_id}", "tell of deliveries queued again",
                           "workers elsewhere find them at their poll")

    async def _notify(self, payload: str, what: str, meanwhile: str) -> None:
        """A NOTIFY on the schema's channel. Only a head start: a failure (the notification queue full behind a
        stuck listener, say) is logged — `what` could not be done, and what happens `meanwhile` — and never stops
        the work it tells of."""
        try:
            await self.pool.execute("SELECT pg_notify(queued_channel(), $1)", payload)
        except SERVER_UNREACHED as exc:
            log.warning("cannot %s (%s): %s", what, type(exc).__name__, meanwhile)

    async def _listen(self, heard: Callable[[str], None], watch: QueueWatch) -> None:
        pause, failing = RELISTEN_SECONDS, False
        while True:
            lost, conn = asyncio.Event(), None
            try:
                conn = await asyncpg.connect(self.url)
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(await conn.fetchval("SELECT queued_channel()"),
                                        lambda _conn, _pid, _channel, payload: heard(payload))
                log.info("listening for queued deliveries%s", " again" if failing else "")
                pause, failing = RELISTEN_SECONDS, False
                watch.listening = True
                heard("0")  # whatever was queued while nobody listened
                await lost.wait()
            except SERVER_UNREACHED as exc:
                if not failing:  # once a streak, not once a retry
                    log.warning("cannot listen for queued deliveries (%s): finding them by polling until it can",
                                type(exc).__name__)
                failing = True
            finally:
                watch.listening = False
                if conn is not None:
                    conn.terminate()  # at once, in a cancellation too: it holds nothing but the LISTEN
            await asyncio.sleep(pause)
            pause = min(pause * 2, RELISTEN_MOST)

    async def after_erasure(self) -> None:
        """Deleted rows leave dead tuples until VACUUM and copies in WAL archives and backups: an operator's
        retention matter, written down in docs/erasure.md."""
