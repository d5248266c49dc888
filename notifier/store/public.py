"""The public disclosure column's reads: published public alerts, filtered, searched and paged, and the public
follow-ups (updates, cancels) of a set of alerts.

Only rows with `public = 1` that went out (`states.released`: never one waiting for approval, rejected or
withdrawn) and whose publish time (`states.release`: the schedule when later than the creation or approval) has
come are ever read here: a scheduled alert is not public before it goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.states import MsgType
from notifier.store.db import Db, as_list
from notifier.store.records import AlertRow
from notifier.store.records_public import PublicFilter
from notifier.store.rows import alert_record
from notifier.store.states import release, released

PUBLISHED = release("")
LIKE_ESCAPE = "\\"
_FOLLOW_UPS = f"('{MsgType.UPDATE}', '{MsgType.CANCEL}')"
_SEARCHED = ("headline", "body", "instruction")


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, lower-cased, with `%`, `_` and the escape character escaped."""
    escaped = text.lower().replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
    return "%" + escaped.replace("_", LIKE_ESCAPE + "_") + "%"


def _where(db: Db, where: PublicFilter, now: float) -> tuple[str, list[Any]]:
    """WHERE clause over `alerts` for a filter (fixed fragments, every value a parameter)."""
    clauses = ["public = 1", released(), f"{PUBLISHED} <= ?", f"msg_type IN {db.dialect.each()}"]
    params: list[Any] = [now, as_list(where.msg_types)]
    for term in where.terms:
        clauses.append("(" + " OR ".join(f"LOWER({column}) LIKE ? ESCAPE '{LIKE_ESCAPE}'"
                                         for column in _SEARCHED) + ")")
        params += [like_pattern(term)] * len(_SEARCHED)
    if where.region is not None:
        # target_regions is a JSON list of quoted codes; '[]' means every region.
        clauses.append(f"(target_regions = '[]' OR target_regions LIKE ? ESCAPE '{LIKE_ESCAPE}')")
        params.append(like_pattern(f'"{where.region}"'))
    narrowing = (("topic = ?", where.topic),
                 ("topic IN (SELECT key FROM topics WHERE domain = ?)", where.domain),
                 ("level = ?", where.level),
                 ("severity = ?", where.severity),
                 (f"{PUBLISHED} >= ?", where.since),
                 (f"{PUBLISHED} < ?", where.until))
    for clause, value in narrowing:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


async def public_alerts(db: Db, where: PublicFilter, limit: int, offset: int,
                        now: float) -> tuple[list[AlertRow], int]:
    """(alerts, total matching) of public alerts matching `where`, newest publish time first."""
    if not where.msg_types:
        return [], 0
    sql, params = _where(db, where, now)
    total = int(await db.fetchval(f"SELECT COUNT(*) FROM alerts WHERE {sql}", *params))
    rows = await db.fetch(f"SELECT * FROM alerts WHERE {sql} ORDER BY {PUBLISHED} DESC, id DESC LIMIT ? OFFSET ?",
                          *params, limit, offset)
    return [alert_record(r) for r in rows], total


async def public_follow_ups(db: Db, alert_ids: Sequence[str], now: float) -> list[AlertRow]:
    """Published public updates and cancels that reference any of `alert_ids`, oldest first."""
    if not alert_ids:
        return []
    rows = await db.fetch(
        f"SELECT * FROM alerts WHERE public = 1 AND {released()} AND msg_type IN {_FOLLOW_UPS} AND {PUBLISHED} <= ? "
        f"AND references_id IN {db.dialect.each()} ORDER BY {PUBLISHED}, id", now, as_list(alert_ids))
    return [alert_record(r) for r in rows]
