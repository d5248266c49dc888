"""The catalogue and the service's own settings: meta values, regions, population groups, domains, topics (what
an alert and a subscription may name), and API keys (stored by hash; the key itself is never kept).

Catalogue entries are only ever added here: `add_catalogue` keeps an admin's later edits, `create_topic` refuses a
key that exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notifier.errors import ConflictError, FieldError, InvalidInput
from notifier.schedule import Schedule, from_stored, parse_schedule
from notifier.store.db import Db, Row, as_list, marks, unpacked
from notifier.store.records import KeyRecord
from notifier.store.rows import SCHEDULE_FIELDS, key_record, topic_record

_SCHEDULE_COLUMNS = ", ".join(f"schedule_{name}" for name in SCHEDULE_FIELDS)
_TOPIC_COLUMNS = ("key, name, name_en, domain, department, channels, schedule, method, supervision, created_at, "
                  f"{_SCHEDULE_COLUMNS}, schedule_set_at")
_TOPIC_FIELDS = _TOPIC_COLUMNS.split(", ")  # every column of a topic
_INSERT_TOPIC = f"INSERT INTO topics ({_TOPIC_COLUMNS}) VALUES ({marks(11 + len(SCHEDULE_FIELDS))})"
_KEY_COLUMNS = "id, prefix, key_hash, role, topics, label, created_at, revoked_at, department"
# The tables `missing_codes` may check, with the column that names an entry.
_CODE_COLUMNS = {"regions": "code", "population_groups": "code", "topics": "key"}

Entry = tuple[str, str, str | None]  # code, name, English name


def _topic_params(t: dict[str, Any], now: float) -> tuple[Any, ...]:
    text, *structured = schedule_values(t.get("schedule"))
    return (t["key"], t["name"], t.get("name_en"), t["domain"], t["department"], json.dumps(t["channels"]),
            text, t.get("method"), t.get("supervision"), now, *structured, now)


def schedule_values(value: Any) -> tuple[Any, ...]:
    """A topic's schedule as given — a `Schedule`, its object form, its stored text (`to_stored`) or free text —
    as the values of (schedule, schedule_every, …, schedule_since): free text in `schedule`, a structured
    schedule in its own columns."""
    schedule = parse_schedule(value) if isinstance(value, Mapping) else value
    text = None
    if isinstance(schedule, str):
        stored = from_stored(schedule)
        schedule, text = stored.schedule, stored.text
    if not isinstance(schedule, Schedule):
        return (text, *(None for _ in SCHEDULE_FIELDS))
    return (None, *(getattr(schedule, name) for name in SCHEDULE_FIELDS))


# ---------------------------------------------------------------- meta


async def get_meta(db: Db, key: str) -> str | None:
    value = await db.fetchval("SELECT value FROM meta WHERE key = ?", key)
    return None if value is None else str(value)


async def set_meta_default(db: Db, key: str, value: str) -> str:
    """Store `value` unless the key is set; returns what is stored."""
    await db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, value)
    return str(await db.fetchval("SELECT value FROM meta WHERE key = ?", key))


# ---------------------------------------------------------------- catalogue


async def add_catalogue(db: Db, regions: Iterable[Entry], groups: Iterable[Entry], domains: Iterable[Entry],
                        topics: Iterable[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Insert catalogue entries that are not there yet (an admin's later edits are kept); returns the topics
    this call added (a concurrent seeder that added one first makes this one skip it)."""
    for table, entries in (("regions", regions), ("population_groups", groups), ("domains", domains)):
        await db.executemany(f"INSERT INTO {table} (code, name, name_en) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                             list(entries))
    existing = {r[0] for r in await db.fetch("SELECT key FROM topics")}
    added = [t for t in topics if t["key"] not in existing
             and await db.execute(_INSERT_TOPIC + " ON CONFLICT DO NOTHING", *_topic_params(t, now)) == 1]
    await _structure_old_schedules(db)
    return added


async def _structure_old_schedules(db: Db) -> None:
    """Topics stored before migration 0008 kept a structured schedule as JSON text: move it into its columns
    (once; free text stays where it is)."""
    rows = await db.fetch("SELECT key, schedule FROM topics WHERE schedule_every IS NULL AND schedule LIKE '{%'")
    for row in rows:
        values = schedule_values(row["schedule"])
        if values[1] is not None:
            await db.execute(f"UPDATE topics SET {_SET_SCHEDULE} WHERE key = ?", *values, row["key"])


_SET_SCHEDULE = ", ".join(f"{column} = ?" for column in ("schedule", *_SCHEDULE_COLUMNS.split(", ")))
# What a topic change may set besides the schedule (the key and the domain stay).
_CHANGEABLE = ("name", "name_en", "department", "channels", "method", "supervision")


async def update_topic(db: Db, key: str, fields: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """Set the given fields of a topic; None when there is no such topic. A schedule that differs from the stored
    one is set now (`schedule_set_at`): compliance is owed from this period unless it names `since`."""
    row = await db.fetchrow(f"SELECT * FROM topics WHERE key = ?{db.dialect.for_update}", key)
    if row is None:
        return None
    sets = [f"{name} = ?" for name in _CHANGEABLE if name in fields]
    params: list[Any] = [json.dumps(fields[name]) if name == "channels" else fields[name]
                         for name in _CHANGEABLE if name in fields]
    if "schedule" in fields:
        values = schedule_values(fields["schedule"])
        if values != tuple(row[c] for c in ("schedule", *_SCHEDULE_COLUMNS.split(", "))):
            sets += [_SET_SCHEDULE, "schedule_set_at = ?"]
            params += [*values, now]
    if sets:
        await db.execute(f"UPDATE topics SET {', '.join(sets)} WHERE key = ?", *params, key)
    return await get_topic(db, key)


async def list_regions(db: Db) -> list[Row]:
    return await db.fetch("SELECT code, name, name_en FROM regions ORDER BY code")


async def list_groups(db: Db) -> list[Row]:
    return await db.fetch("SELECT code, name, name_en FROM population_groups ORDER BY code")


async def list_domains(db: Db) -> list[Row]:
    return await db.fetch("SELECT code, name, name_en FROM domains ORDER BY code")


async def list_topics(db: Db) -> list[dict[str, Any]]:
    return [topic_record(r) for r in await db.fetch("SELECT * FROM topics ORDER BY key")]


# The catalogue's codes as `codes` reads them: every region, group and topic, each list packed into one column
# (`Dialect.packed`), named apart from any table read beside them.
CodeRows = tuple[list[list[Any]], list[list[Any]], list[list[Any]]]
_CODE_LISTS = (("codes__regions", "regions", ["code", "name", "name_en"]),
               ("codes__groups", "population_groups", ["code", "name", "name_en"]),
               ("codes__topics", "topics", ["key", "name", "name_en", "channels", "department"]))


def _codes_columns(db: Db) -> str:
    return ", ".join(f"(SELECT {db.dialect.packed(columns)} FROM {table}) AS {name}"
                     for name, table, columns in _CODE_LISTS)


def _code_rows(row: Row) -> CodeRows:
    regions, groups, topics = (sorted(unpacked(row[name]), key=lambda r: str(r[0])) for name, _, _ in _CODE_LISTS)
    return regions, groups, [[*t[:3], json.loads(t[3]), t[4]] for t in topics]


async def codes(db: Db) -> CodeRows:
    """(code, name, name_en) of every region and group, and (key, name, name_en, channels, department) of every
    topic, each sorted by code, in one packed read: input is checked against them on every publish, during a
    fan-out too, where three reads of some fifty rows took 7–26 ms of a red warning's publish (measured); the
    department answers whom an alert of the topic speaks for without a read of its own."""
    row = await db.fetchrow(f"SELECT {_codes_columns(db)}")
    assert row is not None  # noqa: S101 - a SELECT without FROM has its one row
    return _code_rows(row)


async def key_and_codes(db: Db, key_hash: str) -> tuple[KeyRecord, CodeRows] | None:
    """The key of a hash with the catalogue's codes (`codes`), in one statement; None for no such key (and no
    codes read). A publish needs both, and during a fan-out each read's answer waits for a turn of the busy event
    loop (0.1–9.5 ms each, twenty-ninth round)."""
    row = await db.fetchrow(f"SELECT k.*, {_codes_columns(db)} FROM api_keys k WHERE k.key_hash = ?", key_hash)
    return None if row is None else (key_record(row), _code_rows(row))


@dataclass(frozen=True, slots=True)
class Vouched:
    """A key and the catalogue's codes as this process read them for an earlier request (`keys.KnownKeys`), which
    a publish goes on without reading them again: its transaction reads both first (`confirm`) and stores nothing
    if either has changed since (`Unvouched`) — a revoked key, another role or department, a catalogue edit."""

    key_hash: str
    key: KeyRecord
    codes: CodeRows


class Unvouched(Exception):
    """The key or the catalogue a publish was vouched for has changed since they were read: nothing was stored;
    the request is to be checked again against what the store holds now."""


async def confirm(db: Db, vouched: Vouched) -> None:
    """Unvouched unless the key (revoked or not) and the catalogue's codes are still exactly as `vouched` says:
    the first statement of a vouched publish's transaction, so that nothing it stores was checked against
    anything else."""
    if await key_and_codes(db, vouched.key_hash) != (vouched.key, vouched.codes):
        raise Unvouched(vouched.key.id)


async def get_topic(db: Db, key: str) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT * FROM topics WHERE key = ?", key)
    return topic_record(row) if row is not None else None


# A topic's columns (alias `t`) in a statement that reads them beside another table's: each named apart.
TOPIC_BESIDE = ", ".join(f"t.{c} AS topic__{c}" for c in _TOPIC_FIELDS)


def topic_beside(row: Row) -> dict[str, Any] | None:
    """The topic read as `TOPIC_BESIDE` (None: an outer join found none), as `get_topic` gives it."""
    if row["topic__key"] is None:
        return None
    return topic_record({c: row[f"topic__{c}"] for c in _TOPIC_FIELDS})


async def create_topic(db: Db, topic: dict[str, Any], now: float) -> None:
    """Add one topic; Conflict (409) when its key exists, InvalidInput (422, field `domain`) for an unknown
    domain. A concurrent create of the same key loses on the primary key and gets the same Conflict."""
    exists = ConflictError(f"topic {topic['key']} exists")
    if await db.fetchval("SELECT 1 FROM topics WHERE key = ?", topic["key"]) is not None:
        raise exists
    if await db.fetchval("SELECT 1 FROM domains WHERE code = ?", topic["domain"]) is None:
        message = f"unknown domain {topic['domain']}"
        raise InvalidInput(message, [FieldError("domain", message)])
    if await db.execute(_INSERT_TOPIC + " ON CONFLICT (key) DO NOTHING", *_topic_params(topic, now)) == 0:
        raise exists


async def missing_codes(db: Db, table: str, codes: Sequence[str]) -> list[str]:
    """Which of `codes` are not in the regions / population_groups / topics table."""
    column = _CODE_COLUMNS[table]
    if not codes:
        return []
    rows = await db.fetch(f"SELECT {column} FROM {table} WHERE {column} IN {db.dialect.each()}", as_list(codes))
    present = {r[0] for r in rows}
    return [c for c in codes if c not in present]


# ---------------------------------------------------------------- API keys


async def create_key(db: Db, record: KeyRecord, key_hash: str) -> None:
    await db.execute(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES ({marks(9)})",
                     record.id, record.prefix, key_hash, record.role, json.dumps(record.topics), record.label,
                     record.created_at, record.revoked_at, record.department)


async def key_by_hash(db: Db, key_hash: str) -> KeyRecord | None:
    row = await db.fetchrow("SELECT * FROM api_keys WHERE key_hash = ?", key_hash)
    return key_record(row) if row is not None else None


async def list_keys(db: Db) -> list[KeyRecord]:
    return [key_record(r) for r in await db.fetch("SELECT * FROM api_keys ORDER BY created_at")]


async def revoke_key(db: Db, id_or_hash: str, now: float) -> tuple[KeyRecord | None, bool]:
    """Revoke the key named by its id or its hash (the first revocation time stays): (the key or None when there
    is none, whether this call revoked it)."""
    row = await db.fetchrow("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? OR key_hash = ? "
                            "RETURNING *", now, id_or_hash, id_or_hash)
    if row is None:
        return None, False
    record = key_record(row)
    return record, record.revoked_at == now
