"""The admin dashboard's extra queries (reach curve, failure texts, the list's quick figures) for whichever store
back-end is open: `admin_queries(store)` returns them bound to the store, or None for a store that has none (a
test double), in which case the dashboard falls back to the coverage object."""

from __future__ import annotations

from typing import Protocol

from notifier.store import sqlite_admin
from notifier.store.postgres import PostgresStore
from notifier.store.protocol import Store
from notifier.store.sqlite import SqliteStore


class AdminQueries(Protocol):
    async def alert_figures(self, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]: ...
    async def reach_curve(self, alert_id: str) -> tuple[float, list[tuple[float, int]]]: ...
    async def failure_errors(self, alert_id: str) -> list[tuple[str, str, str | None, int]]: ...


class _Sqlite:
    """`sqlite_admin` on the store's reader connection (WAL readers never block the writer)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def alert_figures(self, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
        return await sqlite_admin.alert_figures(self.store.reader, alert_ids)

    async def reach_curve(self, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
        return await sqlite_admin.reach_curve(self.store.reader, alert_id)

    async def failure_errors(self, alert_id: str) -> list[tuple[str, str, str | None, int]]:
        return await sqlite_admin.failure_errors(self.store.reader, alert_id)


class _Postgres:
    """`pg_admin` on a pooled connection."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def alert_figures(self, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
        return await self.store.admin_alert_figures(alert_ids)

    async def reach_curve(self, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
        return await self.store.admin_reach_curve(alert_id)

    async def failure_errors(self, alert_id: str) -> list[tuple[str, str, str | None, int]]:
        return await self.store.admin_failure_errors(alert_id)


def admin_queries(store: Store) -> AdminQueries | None:
    """The dashboard's extra queries for `store`, or None when its back-end offers none."""
    if isinstance(store, SqliteStore):
        return _Sqlite(store)
    if isinstance(store, PostgresStore):
        return _Postgres(store)
    return None
