"""Read-only SQL of the public disclosure column (SQLite; written in portable SQL): published public alerts,
filtered, searched and paged, and the public follow-ups (updates, cancels) of a set of alerts.

Only rows with `public = 1` whose publish time has come are ever read here: a scheduled alert is not public
before it goes out. Functions take the store's reader connection and return raw rows; `SqliteStore` turns them
into `AlertRow`s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from notifier.store.records_public import PublicFilter

# When an alert went out: its schedule when later than its creation, else its creation (as rendering's
# published_at). CASE rather than MAX/GREATEST, which differ between SQLite and PostgreSQL.
PUBLISHED = "(CASE WHEN scheduled_at IS NOT NULL AND scheduled_at > created_at THEN scheduled_at ELSE created_at END)"
LIKE_ESCAPE = "\\"


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, lower-cased, with `%`, `_` and the escape character escaped."""
    escaped = text.lower().replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
    return "%" + escaped.replace("_", LIKE_ESCAPE + "_") + "%"


def _where(where: PublicFilter, now: float) -> tuple[str, list[Any]]:
    marks = ", ".join("?" for _ in where.msg_types)
    clauses = ["public = 1", f"{PUBLISHED} <= ?", f"msg_type IN ({marks})"]
    params: list[Any] = [now, *where.msg_types]
    for term in where.terms:
        clauses.append("(" + " OR ".join(f"LOWER({column}) LIKE ? ESCAPE '{LIKE_ESCAPE}'"
                                         for column in ("headline", "body", "instruction")) + ")")
        params += [like_pattern(term)] * 3
    if where.topic is not None:
        clauses.append("topic = ?")
        params.append(where.topic)
    if where.domain is not None:
        clauses.append("topic IN (SELECT key FROM topics WHERE domain = ?)")
        params.append(where.domain)
    if where.region is not None:
        # target_regions is a JSON list of quoted codes; '[]' means every region.
        clauses.append(f"(target_regions = '[]' OR target_regions LIKE ? ESCAPE '{LIKE_ESCAPE}')")
        params.append(like_pattern(f'"{where.region}"'))
    for column, value in (("level", where.level), ("severity", where.severity)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.since is not None:
        clauses.append(f"{PUBLISHED} >= ?")
        params.append(where.since)
    if where.until is not None:
        clauses.append(f"{PUBLISHED} < ?")
        params.append(where.until)
    return " AND ".join(clauses), params


async def public_alerts(db: aiosqlite.Connection, where: PublicFilter, limit: int, offset: int,
                        now: float) -> tuple[list[sqlite3.Row], int]:
    """(rows, total matching) of public alerts matching `where`, newest publish time first."""
    if not where.msg_types:
        return [], 0
    sql, params = _where(where, now)
    total = next(iter(await db.execute_fetchall(f"SELECT COUNT(*) FROM alerts WHERE {sql}", params)))[0]
    rows = await db.execute_fetchall(
        f"SELECT * FROM alerts WHERE {sql} ORDER BY {PUBLISHED} DESC, id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset])
    return list(rows), int(total)


async def public_follow_ups(db: aiosqlite.Connection, alert_ids: Sequence[str], now: float) -> list[sqlite3.Row]:
    """Published public updates and cancels that reference any of `alert_ids`, oldest first."""
    if not alert_ids:
        return []
    marks = ", ".join("?" for _ in alert_ids)
    rows = await db.execute_fetchall(
        f"SELECT * FROM alerts WHERE public = 1 AND msg_type IN ('update', 'cancel') AND {PUBLISHED} <= ? "
        f"AND references_id IN ({marks}) ORDER BY {PUBLISHED}, id", [now, *alert_ids])
    return list(rows)
