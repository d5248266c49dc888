"""The SQLite connection pair every SQLite store part shares: WAL with synchronous=FULL (a committed delivery
survives power loss), `secure_delete` (deleted contacts are overwritten, not left in free pages), `BEGIN IMMEDIATE`
for every write (no SQLITE_BUSY upgrade deadlocks), one writer connection serialised by a lock and one reader
connection (WAL readers never block the writer), and the numbered migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from notifier.store.rows import migrations as bundled_migrations

Row = sqlite3.Row


def _split_statements(script: str) -> list[str]:
    """Statements of a migration file, so that they run inside one explicit transaction."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(ln.strip().startswith("--") for ln in buffer.strip().splitlines()):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def migrations() -> list[tuple[int, str]]:
    """(version, sql) of every bundled migration of this dialect, in order."""
    return bundled_migrations("migrations")


class SqliteBase:
    """Connections, transactions and migrations of one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock: asyncio.Lock | None = None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        import asyncio

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        self._writer = await self._connect()
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000",
                       "secure_delete=ON"):  # deleted personal data is zeroed, not left in free pages
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def upgrade(self) -> list[int]:
        """Apply the migrations not yet applied; returns the versions applied now."""
        async with self.transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "applied_at REAL NOT NULL)")
            done = {r[0] for r in await db.execute_fetchall("SELECT version FROM schema_migrations")}
            applied = []
            for version, sql in migrations():
                if version in done:
                    continue
                for statement in _split_statements(sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                applied.append(version)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any error."""
        if self._writer is None or self._lock is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.reader.execute_fetchall(sql, params))

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader
