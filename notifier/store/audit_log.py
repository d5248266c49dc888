"""The audit chain's table (`audit_log`, migration 0007): appending an entry inside the transaction of the act it
records, the head, pages of entries and the whole chain in seq order for verification.

Appending reads the head and inserts the entry that follows it; two writers must never extend the same head. On
SQLite the write transaction (`BEGIN IMMEDIATE`) already excludes every other writer; on PostgreSQL the append
takes an advisory lock (`lock_key`) held until the act commits. Callers append LAST in their transaction, so
the lock is held only from the append to the commit and is never held while other locks are awaited.

`at` and `details` are stored as text exactly as the entry was built (`details` = its canonical JSON), so that
the row read back hashes as it did when written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifier.audit import EMPTY_HEAD, FIELDS, Actor, AuditAction, AuditEntry, AuditHead, canonical_json, next_entry
from notifier.store.db import Db, Row, lock_key, marks
from notifier.store.records import KeyRecord

AUDIT_LOCK = "notifier:audit"
_COLUMNS = ", ".join(FIELDS)
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({marks(len(FIELDS))})"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a page shows: `since` ≤ at < `until` (both in `at` form), one department, one action."""

    since: str | None = None
    until: str | None = None
    department: str | None = None
    action: str | None = None


async def head(db: Db) -> AuditHead:
    """The last entry's {seq, hash, at}, or EMPTY_HEAD before the first."""
    row = await db.fetchrow("SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1")
    return EMPTY_HEAD if row is None else AuditHead(int(row[0]), str(row[1]), str(row[2]))


async def append(db: Db, actor: Actor, action: AuditAction, obj: str, details: Mapping[str, Any],
                 now: float) -> AuditEntry:
    """Append the entry of an act to the chain, in the caller's transaction (call it last: see the module)."""
    await lock_key(db, AUDIT_LOCK)
    entry = next_entry(await head(db), at=now, actor=actor.id, role=actor.role, department=actor.department,
                       action=action, object=obj, details=details)
    await db.execute(_INSERT, entry.seq, entry.at, entry.actor, entry.role, entry.department, entry.action,
                     entry.object, canonical_json(entry.details).decode("utf-8"), entry.prev_hash, entry.hash)
    return entry


def as_entry(row: Row) -> dict[str, Any]:
    """A stored row as the entry it claims to be. Details that are no longer JSON are kept as their text, so that
    verification reports the entry as changed rather than failing to read it."""
    entry = {name: row[name] for name in FIELDS}
    try:
        entry["details"] = json.loads(entry["details"])
    except (TypeError, ValueError):
        pass
    return entry


def _where(f: AuditFilter) -> tuple[str, list[Any]]:
    clauses, params = ["1 = 1"], []
    for clause, value in (("at >= ?", f.since), ("at < ?", f.until), ("department = ?", f.department),
                          ("action = ?", f.action)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


async def page(db: Db, f: AuditFilter, limit: int, after: int | None) -> tuple[list[dict[str, Any]], int]:
    """Entries matching the filter in seq order after seq `after`, at most `limit`, and how many match in all."""
    where, params = _where(f)
    total = int(await db.fetchval(f"SELECT COUNT(*) FROM audit_log WHERE {where}", *params))
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM audit_log WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",
                          *params, after or 0, limit)
    return [as_entry(r) for r in rows], total


async def chunk(db: Db, after: int, limit: int) -> list[dict[str, Any]]:
    """The next `limit` stored entries after seq `after`, in seq order (verification reads the chain this way)."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
    return [as_entry(r) for r in rows]


# ---------------------------------------------------------------- what an act's entry records


def topic_details(topic: Mapping[str, Any]) -> dict[str, Any]:
    """A topic's (or a change's) domain, department and channels, and which fields were set — not its free texts
    (a supervision channel may well hold a telephone number)."""
    return {"domain": topic.get("domain"), "department": topic.get("department"),
            "channels": list(topic.get("channels") or []),
            "set": sorted(name for name, value in topic.items() if value is not None and name != "key")}


def key_details(key: KeyRecord) -> dict[str, Any]:
    """A key's role, topic patterns and department — never the key or its hash."""
    return {"role": key.role, "topics": list(key.topics), "department": key.department, "label_set": bool(key.label)}
