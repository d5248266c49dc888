"""Persistence: one `Store` over SQLite (the embedded default) or PostgreSQL (scale-out); `open_store` picks the
back-end from the database url. Every SQL statement is written once (`db.py` holds what differs)."""

from __future__ import annotations

from notifier.cap.ids import CapIdentity
from notifier.config import Settings
from notifier.store.sql_store import Store


async def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Open (and by default migrate) the configured database: sqlite:///path, or postgresql:// (postgres://)."""
    path = settings.sqlite_path()
    identity = CapIdentity.of(settings.cap, settings.server.base_url())
    later = settings.database.deliveries_after_answer_from
    if path is None:
        from notifier.store.pg_db import PgBackend  # asyncpg is imported only when PostgreSQL is used

        store = Store(PgBackend(settings.database.url), identity, later, settings.database.fan_out_slice)
    else:
        from notifier.store.sqlite_db import SqliteBackend

        store = Store(SqliteBackend(path), identity, later, settings.database.fan_out_slice)
    await store.open()
    if upgrade:
        try:
            await store.upgrade()
        except BaseException:
            await store.close()
            raise
    return store


__all__ = ["Store", "open_store"]
