"""Every delivery and every target names an alert that exists, on both back-ends: SQLite by its foreign keys,
PostgreSQL by a check once a statement (migration 0020, measured faster for a fan-out's rows). A statement that
would leave a row naming no alert is refused whole, and an alert that rows still name stays."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from notifier.database import city_catalogue, seed_catalogue
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.store import Store, open_store
from notifier.store.migrate import migrations
from tests.conftest import SettingsFactory
from tests.crowd import sms_people

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

REFUSED = (sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)
CHECKED_PER_STATEMENT = 20  # the PostgreSQL-only migration


@pytest.fixture
async def warned(make_settings: SettingsFactory) -> AsyncIterator[tuple[Store, str]]:
    """A store holding one alert to three people (their targets and deliveries written), and that alert's id."""
    settings = make_settings()
    store = await open_store(settings)
    try:
        await seed_catalogue(store, city_catalogue(settings))
        await store.bulk_create_subscribers(sms_people(3), [{}, {}, {}])
        alert, _ = await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="重污染天气预警"), None)
        yield store, alert.id
    finally:
        await store.close()


async def _count(store: Store, table: str) -> int:
    return int(await store.backend.reader.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608 (ours)


async def test_the_alert_is_written_with_its_rows(warned: tuple[Store, str]) -> None:
    store, alert_id = warned
    assert await _count(store, "alert_targets") == 3
    assert await store.backend.reader.fetchval(
        "SELECT COUNT(*) FROM deliveries WHERE alert_id = ?", alert_id) == 3


# Two new rows of each table from one statement: the first names the alert (the one parameter), the second none.
TWO_ROWS = {
    "alert_targets": ("alert_id, subscriber_id, region",
                      "CASE WHEN n = 1 THEN ? ELSE 'no-such-alert' END, 'p' || n, '140402'"),
    "deliveries": ("id, alert_id, subscriber_id, channel, position, status, priority, next_attempt_at, created_at, "
                   "updated_at",
                   "'d' || n, CASE WHEN n = 1 THEN ? ELSE 'no-such-alert' END, 'p' || n, 'sms', 0, 'queued', 0, 0, 0, "
                   "0"),
}


async def test_a_statement_whose_one_row_names_no_alert_is_refused_whole(warned: tuple[Store, str]) -> None:
    store, alert_id = warned
    for table, (columns, values) in TWO_ROWS.items():
        before = await _count(store, table)
        with pytest.raises(REFUSED):
            async with store.backend.transaction() as db:
                await db.execute(f"INSERT INTO {table} ({columns}) SELECT {values} "  # noqa: S608 (ours)
                                 "FROM (SELECT 1 AS n UNION ALL SELECT 2) AS two", alert_id)
        assert await _count(store, table) == before


async def test_a_row_cannot_be_moved_to_an_alert_that_does_not_exist(warned: tuple[Store, str]) -> None:
    store, alert_id = warned
    for table in ("alert_targets", "deliveries"):
        with pytest.raises(REFUSED):
            async with store.backend.transaction() as db:
                await db.execute(f"UPDATE {table} SET alert_id = 'no-such-alert'")  # noqa: S608 (ours)
        assert await store.backend.reader.fetchval(
            f"SELECT COUNT(*) FROM {table} WHERE alert_id = ?", alert_id) == 3  # noqa: S608 (ours)


async def test_an_alert_its_rows_name_cannot_be_removed_or_renamed(warned: tuple[Store, str]) -> None:
    store, alert_id = warned
    for change in ("DELETE FROM alerts WHERE id = ?", "UPDATE alerts SET id = id || '-renamed' WHERE id = ?"):
        with pytest.raises(REFUSED):
            async with store.backend.transaction() as db:
                await db.execute(change, alert_id)
        assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM alerts WHERE id = ?", alert_id) == 1


async def test_an_alert_no_row_names_can_still_be_removed(warned: tuple[Store, str]) -> None:
    store, alert_id = warned
    async with store.backend.transaction() as db:
        await db.execute("DELETE FROM deliveries WHERE alert_id = ?", alert_id)
        await db.execute("DELETE FROM alert_targets WHERE alert_id = ?", alert_id)
        await db.execute("DELETE FROM alerts WHERE id = ?", alert_id)
    assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM alerts WHERE id = ?", alert_id) == 0


def test_the_check_once_a_statement_is_postgresqls_alone() -> None:
    assert "foreign_key_violation" in dict(migrations("postgresql"))[CHECKED_PER_STATEMENT]
    assert dict(migrations("sqlite"))[CHECKED_PER_STATEMENT] == ""


async def test_a_removal_beside_a_fan_out_waits_for_it_then_sees_its_rows(warned: tuple[Store, str]) -> None:
    """An alert's first row written in one transaction while another removes the alert: the removal waits until
    the row is committed, then is refused — never an alert gone under a row that names it."""
    store, _ = warned
    quiet, _ = await publish_alert(store, AlertIn(topic="transit.fare-change", headline="公交票价调整"), None)
    assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM deliveries WHERE alert_id = ?", quiet.id) == 0
    written, release = asyncio.Event(), asyncio.Event()

    async def fan_out() -> None:
        async with store.backend.transaction() as db:
            await db.execute("INSERT INTO alert_targets (alert_id, subscriber_id, region) VALUES (?, 'p', '140402')",
                             quiet.id)
            written.set()
            await release.wait()

    async def removal() -> None:
        async with store.backend.transaction() as db:
            await db.execute("DELETE FROM alerts WHERE id = ?", quiet.id)

    writing = asyncio.create_task(fan_out())
    await written.wait()
    removing = asyncio.create_task(removal())
    await asyncio.sleep(0.3)
    assert not removing.done()  # waiting for the fan-out's transaction
    release.set()
    await writing
    with pytest.raises(REFUSED):
        await removing
    assert await store.backend.reader.fetchval("SELECT COUNT(*) FROM alerts WHERE id = ?", quiet.id) == 1
