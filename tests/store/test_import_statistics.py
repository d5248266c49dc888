"""After a large import the planner knows the new tables: PostgreSQL's statistics are taken at once (a fan-out
planned before autovacuum samples them scans and nested-loops, ~4× slower), and SQLite is left without any (its
fan-out statements are written for the plans it makes without them)."""

from __future__ import annotations

import pytest

from notifier.service import Service
from notifier.store import Store
from notifier.store.subscribers import BULK_LOAD
from tests.crowd import sms_people

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def _statistics(store: Store) -> int:
    if store.dialect == "sqlite":
        return int(await store.backend.reader.fetchval(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))
    return int(await store.backend.reader.fetchval(
        "SELECT COUNT(*) FROM pg_stats WHERE schemaname = current_schema() "
        "AND tablename IN ('contacts', 'subscription_channels')"))


async def test_a_large_import_leaves_the_planner_knowing_the_new_rows(service: Service) -> None:
    await service.store.bulk_create_subscribers(sms_people(BULK_LOAD), [{}] * BULK_LOAD)
    assert (await _statistics(service.store) > 0) == (service.store.dialect == "postgresql")


async def test_a_small_import_leaves_statistics_to_autovacuum(service: Service) -> None:
    await service.store.bulk_create_subscribers(sms_people(50), [{}] * 50)
    assert await _statistics(service.store) == 0
