"""After a large import the planner knows the new tables: PostgreSQL's statistics are taken at once (a fan-out
planned before autovacuum samples them scans and nested-loops, ~4× slower) and the new pages are marked visible (a
fan-out before autovacuum visits them reads each row's table page), and SQLite is left without any statistics (its
fan-out statements are written for the plans it makes without them)."""

from __future__ import annotations

import uuid

import pytest

from notifier.service import Service
from notifier.store import Store
from notifier.store.records import AssistedRecord
from notifier.store.subscribers import BULK_LOAD
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
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


async def test_a_large_import_leaves_its_pages_marked_visible(service: Service) -> None:
    """PostgreSQL: the import is vacuumed as well as sampled, so the next fan-out reads the people from their
    indexes alone, not every imported row's table page (SQLite has no visibility to mark)."""
    await service.store.bulk_create_subscribers(sms_people(BULK_LOAD), [{}] * BULK_LOAD)
    if service.store.dialect == "postgresql":
        visible = await service.store.backend.reader.fetch(
            "SELECT relname, relallvisible FROM pg_class WHERE oid IN (to_regclass('subscribers'), "
            "to_regclass('contacts'), to_regclass('subscriptions'), to_regclass('subscription_channels'))")
        assert len(visible) == 4 and all(row[1] > 0 for row in visible), visible


async def test_a_small_import_leaves_statistics_to_autovacuum(service: Service) -> None:
    await service.store.bulk_create_subscribers(sms_people(50), [{}] * 50)
    assert await _statistics(service.store) == 0


async def test_a_proxys_large_list_leaves_the_planner_knowing_the_people_it_assists(service: Service) -> None:
    """A sub-district's list of 10,000 assisted people for one grid worker: the fan-out's joins over them are
    planned with statistics on PostgreSQL, as after an import of subscribers."""
    proxy, _ = await create_subscriber(service.store, SubscriberIn.model_validate({
        "contacts": {"sms": "13900000009"}, "region": "140402", "role": "proxy",
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]}), allow_private_webhooks=False)
    people = [AssistedRecord(id=uuid.uuid4().hex, label=f"{n}号楼", region="140402", groups=[], seq=n)
              for n in range(1, BULK_LOAD + 1)]
    assert await service.store.import_assisted([(proxy.id, people)]) == BULK_LOAD
    if service.store.dialect == "sqlite":
        assert await _statistics(service.store) == 0
    else:
        assert await service.store.backend.reader.fetchval(
            "SELECT COUNT(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'assisted'") > 0
