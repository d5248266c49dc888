"""The tests' reused PostgreSQL schemas (tests/pg_schemas.py) are as good as new ones: a schema comes back with
every migration and no row of the test before, and one that test changed is never handed out again."""

from __future__ import annotations

import asyncpg

from notifier.config import load_settings
from notifier.store import open_store
from notifier.store.migrate import migrations
from tests import pg_schemas


async def _migrated(database_url: str) -> str:
    url = await pg_schemas.new_schema(database_url)
    store = await open_store(load_settings(None, {}, {"database": {"url": url}}))
    await store.add_catalogue([("140402", "潞州区", "Luzhou")], [], [], [])
    await store.close()
    return url


async def _rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url.partition("?")[0], server_settings={"search_path": pg_schemas.schema_of(url)})
    try:
        return int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608 (ours)
    finally:
        await conn.close()


async def test_a_schema_given_back_comes_back_empty_and_migrated(pg_database: str) -> None:
    url = await _migrated(pg_database)
    assert await _rows(url, "regions") == 1
    await pg_schemas.give_back(pg_database, url)
    assert await pg_schemas.take(pg_database) == url  # handed out next, as the next test's
    assert await _rows(url, "regions") == 0
    assert await _rows(url, "schema_migrations") == len(migrations())


async def test_a_schema_the_test_changed_is_not_handed_out_again(pg_database: str) -> None:
    url = await _migrated(pg_database)
    await pg_schemas.execute(pg_database, f'DROP INDEX "{pg_schemas.schema_of(url)}".deliveries_due')
    await pg_schemas.give_back(pg_database, url)
    taken = await pg_schemas.take(pg_database)
    assert taken != url  # another schema, migrated and empty, or a new one: not this
    await pg_schemas.give_back(pg_database, taken)
    assert await _rows(url, "regions") == 1  # left as it was
