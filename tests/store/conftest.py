"""Fixtures of the store's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.store.sqlite_db import SqliteBackend
from tests.store.writers import writer_backend


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    async with writer_backend(tmp_path / "writer.db") as opened:
        yield opened


@pytest.fixture
async def grouping(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    """`backend`, whose group commits take in whatever is queued for a minute (not for as long as a commit takes,
    which on a fast disk may be shorter than a test's own pauses)."""
    async with writer_backend(tmp_path / "writer.db", group_for=60.0) as opened:
        yield opened
