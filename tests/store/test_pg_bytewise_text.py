"""PostgreSQL: every text column compares bytewise (COLLATE "C", migration 0023), as SQLite's do, whatever locale
the operator created the database with — the store's ids and codes compared through strcoll cost the server some
6 % of its CPU a delivery and a publish of 100,000 ~6 % of its time. A later migration's table declares it too."""

from __future__ import annotations

import pytest

from notifier.store import open_store
from tests.conftest import SettingsFactory
from tests.store.old_versions import migrate_until

BYTEWISE = 23  # the migration

# Every column of a table or index of the schema whose collation is not C (plain text ones, and any other kind).
NOT_BYTEWISE = """
SELECT c.relname || '.' || a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'i') AND a.attnum > 0
   AND NOT a.attisdropped AND a.attcollation <> 0
   AND a.attcollation <> (SELECT oid FROM pg_collation WHERE collname = 'C'
                           AND collnamespace = 'pg_catalog'::regnamespace)
 ORDER BY 1"""

TRIGGERS = ("SELECT c.relname || ':' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal ORDER BY 1")


async def test_every_text_column_and_index_of_a_migrated_schema_compares_bytewise(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    store = await open_store(make_settings(database={"url": pg_schema_url}))
    try:
        assert [r[0] for r in await store.backend.reader.fetch(NOT_BYTEWISE)] == []
        # Sorted as SQLite sorts: by code point, upper case before lower and '_' between, not as a locale would.
        async with store.backend.transaction() as db:
            for code in ("b", "B", "a", "_"):
                await db.execute("INSERT INTO domains (code, name) VALUES (?, '领域')", code)
        assert [r[0] for r in await store.backend.reader.fetch("SELECT code FROM domains ORDER BY code")] == [
            "B", "_", "a", "b"]
    finally:
        await store.close()


@pytest.mark.empty_database
async def test_a_database_upgraded_with_rows_keeps_them_and_its_guards(
        make_settings: SettingsFactory, pg_schema_url: str) -> None:
    """Version 22 with an alert and a delivery of it, then the upgrade: the rows are there, found by their keys, the
    triggers that hold a column came back as they were, and a delivery naming no alert is still refused."""
    settings = make_settings(database={"url": pg_schema_url})
    store = await open_store(settings, upgrade=False)
    try:
        async with store.backend.transaction() as db:
            await migrate_until(store, db, BYTEWISE - 1)
            await db.execute("INSERT INTO domains (code, name) VALUES ('environment', '环境')")
            await db.execute("INSERT INTO topics (key, name, domain, department, channels, created_at) "
                             "VALUES ('env.a', 'a', 'environment', '市环保局', '[]', 0)")
            await db.execute(
                "INSERT INTO alerts (id, topic, msg_type, headline, body, instruction, severity, urgency, "
                "target_regions, target_groups, policy, fallback_after, data, request_hash, public, status, "
                "department, created_at) VALUES ('old', 'env.a', 'alert', '重污染天气预警', '', '', 'severe', "
                "'expected', '[]', '[]', 'all', 60, '{}', 'x', 1, 'active', '市环保局', 1)")
            await db.execute(
                "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, "
                "next_attempt_at, created_at, updated_at) VALUES ('d-1', 'old', 's-1', 'sms', 1, 'queued', 0, 0, 0, 0)")
        before = [r[0] for r in await store.backend.reader.fetch(TRIGGERS)]
    finally:
        await store.close()

    store = await open_store(settings)
    try:
        reader = store.backend.reader
        assert [r[0] for r in await reader.fetch(NOT_BYTEWISE)] == []
        assert [r[0] for r in await reader.fetch(TRIGGERS)] == before
        assert await reader.fetchval("SELECT status FROM deliveries WHERE alert_id = 'old' AND subscriber_id = 's-1' "
                                     "AND channel = 'sms'") == "queued"
        with pytest.raises(Exception, match="would name no alert"):
            async with store.backend.transaction() as db:
                await db.execute("UPDATE deliveries SET alert_id = 'missing' WHERE id = 'd-1'")
    finally:
        await store.close()
