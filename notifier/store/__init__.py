"""Persistence behind one Protocol; `open_store` picks the back-end from the database url."""

from __future__ import annotations

from notifier.config import Settings
from notifier.store.protocol import Store
from notifier.store.sqlite import SqliteStore


async def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Open (and by default migrate) the configured database: sqlite:///path, or postgresql:// (postgres://)."""
    path = settings.sqlite_path()
    store: Store
    if path is None:
        from notifier.store.postgres import PostgresStore  # asyncpg is imported only when PostgreSQL is used

        store = PostgresStore(settings.database.url)
    else:
        store = SqliteStore(path)
    await store.open()
    if upgrade:
        try:
            await store.upgrade()
        except BaseException:
            await store.close()
            raise
    return store


__all__ = ["Store", "open_store"]
