"""Fixtures of the store's own tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.store.records import SubscriberRecord
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


def people(count: int, topic: str = "env.heavy-pollution", *, start: int = 0,
           channel: str = "sms") -> list[SubscriberRecord]:
    """`count` active subscribers of `topic` by SMS or email (ids and addresses numbered from `start`, in order),
    for `bulk_create_subscribers`."""
    now = time.time()
    address = {"sms": "+86139{:08d}", "email": "p{}@example.org"}[channel]
    return [SubscriberRecord(id=f"{n:032x}", region="140402", locale="zh-CN", quiet_start=None, quiet_end=None,
                             status="active", consent_source="test", consent_at=now, created_at=now,
                             contacts={channel: address.format(n)}, subscriptions=[(topic, [channel], 0)])
            for n in range(start, start + count)]
