"""Migration 0007 on a database that already holds alerts: their idempotency keys move under their department,
and the keys are then unique per department only."""

from __future__ import annotations

import pytest

from notifier.config import Settings
from notifier.store import Store, open_store
from tests.conftest import SettingsFactory
from tests.store.old_versions import migrate_until

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

BEFORE = 6  # the last migration before governance
ALERT = ("INSERT INTO alerts (id, topic, msg_type, headline, body, instruction, severity, urgency, target_regions, "
         "target_groups, policy, fallback_after, data, idempotency_key, request_hash, public, status, department, "
         "created_at) VALUES (?, 'env.a', 'alert', 'h', '', '', 'minor', 'expected', '[]', '[]', 'all', 60, '{}', "
         "'k-1', 'x', 1, 'active', ?, 1)")


async def _old_database(settings: Settings) -> None:
    """A database as version 6 left it, with one alert published under idempotency key k-1."""
    store = await open_store(settings, upgrade=False)
    try:
        async with store.backend.transaction() as db:
            await migrate_until(store, db, BEFORE)
            await db.execute("INSERT INTO domains (code, name) VALUES ('environment', '环境')")
            await db.execute("INSERT INTO topics (key, name, domain, department, channels, created_at) "
                             "VALUES ('env.a', 'a', 'environment', '市环保局', '[]', 0)")
            await db.execute(ALERT, "old", "市环保局")
    finally:
        await store.close()


async def _upgraded(make_settings: SettingsFactory) -> Store:
    settings = make_settings()
    await _old_database(settings)
    store = await open_store(settings)
    return store


@pytest.mark.empty_database
async def test_an_old_alerts_idempotency_key_is_found_under_its_department(make_settings: SettingsFactory) -> None:
    """After the upgrade the old alert is found by (its department, k-1), and not under another department."""
    store = await _upgraded(make_settings)
    try:
        found = await store.alert_by_idempotency_key("市环保局", "k-1")
        assert found is not None and found.id == "old" and found.approval is None
        assert await store.alert_by_idempotency_key("市交通局", "k-1") is None
    finally:
        await store.close()


@pytest.mark.empty_database
async def test_another_department_may_use_the_same_key_after_the_upgrade(make_settings: SettingsFactory) -> None:
    """The old table-wide unique key no longer blocks another department; the same department still clashes."""
    store = await _upgraded(make_settings)
    try:
        async with store.backend.transaction() as db:
            await db.execute(ALERT, "new", "市交通局")
        with pytest.raises(Exception, match=r"(?i)unique"):
            async with store.backend.transaction() as db:
                await db.execute(ALERT, "again", "市环保局")
    finally:
        await store.close()
