"""Fixtures of the store's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.store.sqlite_db import SqliteBackend


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """An open SQLite back-end with an empty table `t (n INTEGER, name TEXT)`."""
    opened = SqliteBackend(tmp_path / "writer.db")
    await opened.open()
    try:
        await opened.run(lambda db: db.execute("CREATE TABLE t (n INTEGER, name TEXT)"))
        yield opened
    finally:
        await opened.close()
