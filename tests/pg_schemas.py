"""PostgreSQL schemas for the tests, reused: a test's schema, once the test is over, is emptied and handed to the
next test of the same process, migrated already. Migrating a fresh schema took ~100–150 ms, the largest part of a
PostgreSQL test's set-up (~230 ms against SQLite's ~50); emptying one takes ~10.

A schema is reused only when it is exactly what the migrations make: its tables, columns, keys, indexes, triggers,
functions and applied versions compare equal to those of a schema this process migrated itself (`_FINGERPRINT`);
one a test changed (a migration test's old version, a dropped trigger), one whose tables the planner has studied
(`_STUDIED`) and one that could not be emptied (a lock still held) are left alone, and the session's database is
dropped at the end whatever it holds. Tests that need a schema with no migrations applied are marked
`empty_database` and get a new one."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import asyncpg

from notifier.config import load_settings
from notifier.store import open_store

# Everything the migrations define in a schema, with the schema's own name taken out of the definitions
# (pg_get_indexdef and its kin always qualify), so that two schemas migrated alike have one fingerprint.
_FINGERPRINT = """
SELECT md5(replace(string_agg(x, ',' ORDER BY x), $1 || '.', '')) FROM (
  SELECT 'c:' || c.relname || ':' || c.relkind::text || ':' || coalesce(array_to_string(c.reloptions, ';'), '') AS x
    FROM pg_class c WHERE c.relnamespace = $1::regnamespace
  UNION ALL
  SELECT 'a:' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':'
         || a.attcollation::text || ':' || a.attnotnull::text || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'k:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = $1::regnamespace
  UNION ALL
  SELECT 'i:' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1::regnamespace
  UNION ALL
  SELECT 't:' || CASE WHEN t.tgisinternal  -- a key's own triggers, named by their oid: by what they do instead
                      THEN c.relname || ':' || t.tgfoid::regproc::text || ':' || t.tgtype::text
                      ELSE pg_get_triggerdef(t.oid) END || ':' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace
  UNION ALL
  SELECT 'f:' || p.proname || ':' || md5(p.prosrc) FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
  UNION ALL
  SELECT 'v:' || version::text FROM schema_migrations
) everything"""

# A table ever analysed or vacuumed (by the product after a bulk load, or by autovacuum) keeps what the planner
# learnt after its rows are deleted (pg_class.reltuples, pg_statistic): its schema would not plan like a new one.
_STUDIED = """
SELECT EXISTS (SELECT FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' AND reltuples >= 0)
    OR EXISTS (SELECT FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid
                WHERE c.relnamespace = $1::regnamespace)"""

_free: dict[str, list[str]] = {}  # database url -> schemas migrated and empty, ready for a test
_reference: dict[str, str] = {}  # database url -> the fingerprint of a schema as the migrations make it


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["search_path"][0]


def url_of(database_url: str, schema: str) -> str:
    return f"{database_url}?search_path={schema}"


async def execute(url: str, statement: str) -> None:
    """One statement on a connection of its own."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def new_schema(database_url: str) -> str:
    """A new schema with nothing in it: its url."""
    schema = f"t_{secrets.token_hex(6)}"
    await execute(database_url, f'CREATE SCHEMA "{schema}"')
    return url_of(database_url, schema)


async def for_test(database_url: str, *, empty: bool) -> str:
    """A test's schema: a new one with nothing in it for a test marked `empty_database`, else `take`'s."""
    return await (new_schema(database_url) if empty else take(database_url))


async def take(database_url: str) -> str:
    """A schema for a test: a reused one, migrated and empty, or else a new one (the store migrates it)."""
    free = _free.get(database_url)
    return free.pop() if free else await new_schema(database_url)


async def give_back(database_url: str, url: str) -> None:
    """The test using `url` is over: empty its schema and keep it for the next test, if it is as migrated."""
    if database_url not in _reference:
        _reference[database_url] = await _migrated_fingerprint(database_url)
    schema = schema_of(url)
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return
    try:
        # Emptied as the owner restoring data would: no trigger and no key check fires (the rows all go).
        await conn.execute(f"SET search_path = \"{schema}\"; SET lock_timeout = '2s'; "
                           "SET session_replication_role = replica")
        if await conn.fetchval(_FINGERPRINT, schema) != _reference[database_url]:
            return
        if await conn.fetchval(_STUDIED, schema):
            return
        tables = [r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", schema)]
        async with conn.transaction():
            await conn.execute("".join(f'DELETE FROM "{table}";' for table in tables))  # noqa: S608 (the catalogue's names)
    except asyncpg.PostgresError:  # a lock still held by something the test left open: not reused
        return
    finally:
        await conn.close()
    _free.setdefault(database_url, []).append(url)


async def _migrated_fingerprint(database_url: str) -> str:
    """The fingerprint of a schema this process migrates now (and then reuses like any other)."""
    url = await new_schema(database_url)
    store = await open_store(load_settings(None, {}, {"database": {"url": url}}))
    await store.close()
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        await conn.execute(f'SET search_path = "{schema_of(url)}"')
        fingerprint = str(await conn.fetchval(_FINGERPRINT, schema_of(url)))
    finally:
        await conn.close()
    _free.setdefault(database_url, []).append(url)
    return fingerprint
