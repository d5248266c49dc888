"""Persistence behind one Protocol; `open_store` picks the back-end from the database url."""

from __future__ import annotations

from notifier.config import Settings
from notifier.store.protocol import Store
from notifier.store.sqlite import SqliteStore


async def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Open (and by default migrate) the configured database."""
    path = settings.sqlite_path()
    if path is None:
        raise NotImplementedError("the PostgreSQL back-end is not built yet: use a sqlite:/// url")
    store = SqliteStore(path)
    await store.open()
    if upgrade:
        await store.upgrade()
    return store


__all__ = ["Store", "open_store"]
