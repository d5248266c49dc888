"""An open SQLite back-end for the writer's own tests (the fixtures in conftest.py, and tests that need options)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from notifier.store.sqlite_db import SqliteBackend


@asynccontextmanager
async def writer_backend(path: Path, *, group_for: float | None = None) -> AsyncIterator[SqliteBackend]:
    """An open SQLite back-end with an empty table `t (n INTEGER, name TEXT)`; `group_for`: SqliteBackend's."""
    opened = SqliteBackend(path, group_for=group_for)
    await opened.open()
    try:
        await opened.run(lambda db: db.execute("CREATE TABLE t (n INTEGER, name TEXT)"))
        yield opened
    finally:
        await opened.close()
