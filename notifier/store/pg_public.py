"""Read-only SQL of the public disclosure column for PostgreSQL: the statements of `sqlite_public` (published
public alerts only, never before their schedule) with `$n` parameters."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.store.pg_base import Args, Conn, Record
from notifier.store.records_public import PublicFilter
from notifier.store.sqlite_public import LIKE_ESCAPE, PUBLISHED, like_pattern


def _where(where: PublicFilter, now: float, args: Args) -> str:
    clauses = ["public = 1", f"{PUBLISHED} <= {args(now)}", f"msg_type = ANY({args(list(where.msg_types))}::text[])"]
    for term in where.terms:
        pattern = args(like_pattern(term))
        clauses.append("(" + " OR ".join(f"LOWER({column}) LIKE {pattern} ESCAPE '{LIKE_ESCAPE}'"
                                         for column in ("headline", "body", "instruction")) + ")")
    if where.topic is not None:
        clauses.append(f"topic = {args(where.topic)}")
    if where.domain is not None:
        clauses.append(f"topic IN (SELECT key FROM topics WHERE domain = {args(where.domain)})")
    if where.region is not None:
        # target_regions is a JSON list of quoted codes; '[]' means every region.
        quoted = args(like_pattern(f'"{where.region}"'))
        clauses.append(f"(target_regions = '[]' OR target_regions LIKE {quoted} ESCAPE '{LIKE_ESCAPE}')")
    for column, value in (("level", where.level), ("severity", where.severity)):
        if value is not None:
            clauses.append(f"{column} = {args(value)}")
    if where.since is not None:
        clauses.append(f"{PUBLISHED} >= {args(where.since)}")
    if where.until is not None:
        clauses.append(f"{PUBLISHED} < {args(where.until)}")
    return " AND ".join(clauses)


async def public_alerts(c: Conn, where: PublicFilter, limit: int, offset: int,
                        now: float) -> tuple[list[Record], int]:
    """(rows, total matching) of public alerts matching `where`, newest publish time first."""
    if not where.msg_types:
        return [], 0
    args = Args()
    sql = _where(where, now, args)
    total = await c.fetchval(f"SELECT COUNT(*) FROM alerts WHERE {sql}", *args.values)
    rows = await c.fetch(f"SELECT * FROM alerts WHERE {sql} ORDER BY {PUBLISHED} DESC, id DESC "
                         f"LIMIT {args(limit)} OFFSET {args(offset)}", *args.values)
    return list(rows), int(total)


async def public_follow_ups(c: Conn, alert_ids: Sequence[str], now: float) -> list[Record]:
    """Published public updates and cancels that reference any of `alert_ids`, oldest first."""
    if not alert_ids:
        return []
    return list(await c.fetch(
        f"SELECT * FROM alerts WHERE public = 1 AND msg_type IN ('update', 'cancel') AND {PUBLISHED} <= $1 "
        f"AND references_id = ANY($2::text[]) ORDER BY {PUBLISHED}, id", now, list(alert_ids)))
