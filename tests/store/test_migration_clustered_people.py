"""Migration 0016 on a SQLite database that already holds people and a warning in flight: subscribers and contacts
are rebuilt in their key's order with every row, every reference and the deletes that follow a subscriber kept;
and an upgrade that would leave a reference to nothing is refused whole."""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

from notifier.config import Settings
from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.store import Store, open_store
from notifier.store.records import SubscriberRecord
from tests.conftest import SettingsFactory
from tests.store.old_versions import migrate_until

BEFORE = 15  # the last migration before the rebuild
PEOPLE = ("subscribers", "contacts", "subscriptions", "subscription_channels", "alert_targets", "deliveries")


def _person(i: int) -> tuple[SubscriberRecord, dict[str, str]]:
    now = time.time()
    return (SubscriberRecord(id=uuid.uuid4().hex, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None,
                             status="active", consent_source="test", consent_at=now, created_at=now,
                             contacts={"sms": f"+86138{i:08d}", "email": f"p{i}@example.cn"},
                             subscriptions=[("env.heavy-pollution", ["sms", "email"], 0)]), {})


async def _old_database(settings: Settings) -> dict[str, int]:
    """A database as version 15 left it, with 50 people and a warning to them queued; the rows of each table."""
    store = await open_store(settings, upgrade=False)
    try:
        async with store.backend.transaction() as db:
            await migrate_until(store, db, BEFORE)
        await seed_catalogue(store, city_catalogue(settings))
        people = [_person(i) for i in range(50)]
        await store.bulk_create_subscribers([p for p, _ in people], [s for _, s in people])
        await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警"), None)
        return await _counts(store)
    finally:
        await store.close()


async def _counts(store: Store) -> dict[str, int]:
    return {table: int(await store.backend.reader.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608 (ours)
            for table in PEOPLE}


@pytest.mark.empty_database
async def test_the_rebuild_keeps_every_person_contact_and_delivery(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    before = await _old_database(settings)
    assert before["deliveries"] >= 50 and before["contacts"] == 100
    store = await open_store(settings)
    try:
        assert await _counts(store) == before
        assert await store.backend.reader.fetch("PRAGMA foreign_key_check") == []
        clustered = await store.backend.reader.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID'")
        assert {r[0] for r in clustered} >= {"subscribers", "contacts"}
        # Foreign keys are enforced again: a subscriber's deletion takes its contacts and subscriptions with it.
        subscriber = await store.backend.reader.fetchval("SELECT id FROM subscribers LIMIT 1")
        assert await store.backend.reader.fetchval("PRAGMA foreign_keys") == 1
        assert await store.delete_subscriber(subscriber)
        for table in ("contacts", "subscriptions"):
            assert await store.backend.reader.fetchval(
                f"SELECT COUNT(*) FROM {table} WHERE subscriber_id = ?", subscriber) == 0  # noqa: S608 (ours)
    finally:
        await store.close()


async def test_a_change_leaving_a_reference_to_nothing_is_refused_whole(make_settings: SettingsFactory) -> None:
    """A contact added for nobody inside the migrations' transaction: the upgrade fails, nothing stays, and
    foreign keys are enforced again afterwards."""
    store = await open_store(make_settings())
    try:
        with pytest.raises(sqlite3.IntegrityError, match="would refer to nothing"):
            async with store.backend.schema_change() as db:
                await db.execute("CREATE TABLE scratch (n INTEGER)")
                await db.execute("INSERT INTO contacts (subscriber_id, channel, address) VALUES ('nobody', 'sms', "
                                 "'+8613800000000')")
        assert await store.backend.reader.fetchval(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'scratch'") == 0
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM contacts") == 0
        with pytest.raises(sqlite3.IntegrityError):
            async with store.backend.transaction() as db:
                await db.execute("INSERT INTO contacts (subscriber_id, channel, address) VALUES ('nobody', 'sms', "
                                 "'+8613800000000')")
    finally:
        await store.close()


async def test_an_up_to_date_database_opens_without_reading_every_reference(make_settings: SettingsFactory) -> None:
    """With nothing to upgrade, opening the store checks no reference (a full check reads the whole database: 2.5 s
    at 300,000 people, at every start): even a database holding a reference to nothing, left by some other tool,
    opens as before."""
    settings = make_settings()
    store = await open_store(settings)
    await store.close()
    path = settings.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:  # another tool, foreign keys unenforced
        raw.execute("INSERT INTO contacts (subscriber_id, channel, address) VALUES ('nobody', 'sms', '+8613800000000')")
    store = await open_store(settings)
    try:
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM contacts") == 1
    finally:
        await store.close()
