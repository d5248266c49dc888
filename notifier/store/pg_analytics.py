"""Analytics SQL for PostgreSQL: population denominators, period aggregates over many alerts, and the
region × group × channel breakdown of one alert. The statements of `sqlite_analytics` (portable SQL) with `$n`
parameters; the counting fragments are imported from the SQLite modules so that both back-ends count alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from notifier.store.pg_base import Args, Conn
from notifier.store.records import BreakdownRecord, PeriodCell, PeriodFilter, PopulationRecord
from notifier.store.sqlite_analytics import (
    _BREAKDOWN_COUNTS,
    ALL_GROUPS,
    CHANNEL_FIELDS,
    DEPARTMENT,
    RELEASE,
    _count,
)
from notifier.store.sqlite_queue import _CHANNEL_COUNTS, IS_CANCELLED, IS_EXPIRED, PENDING_OR_UNCONFIRMED


async def put_population(c: Conn, rows: Sequence[PopulationRecord], now: float) -> None:
    """Replace every population row (the caller holds the write transaction)."""
    await c.execute("DELETE FROM population")
    await c.executemany("INSERT INTO population (region, group_code, residents, updated_at) VALUES ($1, $2, $3, $4)",
                        [(r.region, r.group or ALL_GROUPS, r.residents, now) for r in rows])


async def population(c: Conn) -> list[PopulationRecord]:
    rows = await c.fetch("SELECT region, group_code, residents, updated_at FROM population ORDER BY region, group_code")
    return [PopulationRecord(region=r[0], group=r[1] or None, residents=int(r[2]), updated_at=float(r[3]))
            for r in rows]


def _alert_filter(f: PeriodFilter, args: Args) -> str:
    """WHERE clause over `alerts a` for a period filter (fixed fragments, every value a parameter)."""
    clauses: list[str] = ["a.msg_type = 'alert'"]
    if f.topic_like is not None:
        clauses.append(f"a.topic LIKE {args(f.topic_like)}")
    if f.department is not None:
        clauses.append(f"a.department = {args(f.department)}")
    if f.since is not None:
        clauses.append(f"a.created_at >= {args(f.since)}")
    if f.until is not None:
        clauses.append(f"a.created_at < {args(f.until)}")
    return " AND ".join(clauses)


async def period_cells(c: Conn, f: PeriodFilter) -> list[PeriodCell]:
    """Additive figures per topic × department of the alerts the filter selects."""
    args = Args()
    where = _alert_filter(f, args)
    alerts = {(r[0], r[1]): int(r[2]) for r in await c.fetch(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*) FROM alerts a WHERE {where} GROUP BY a.topic, {DEPARTMENT}",
        *args.values)}
    targets = {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in await c.fetch(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*), COUNT(t.reached_at), COUNT(t.accepted_at) FROM alert_targets t "
        f"JOIN alerts a ON a.id = t.alert_id WHERE {where} GROUP BY a.topic, {DEPARTMENT}", *args.values)}
    channels: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(dict)
    for r in await c.fetch(
            f"SELECT x.topic, x.dept, channel, {_CHANNEL_COUNTS} FROM deliveries d JOIN ("
            f"SELECT a.id, a.topic, {DEPARTMENT} AS dept FROM alerts a WHERE {where}) x ON x.id = d.alert_id "
            "GROUP BY x.topic, x.dept, channel", *args.values):
        channels[(r[0], r[1])][r[2]] = dict(zip(CHANNEL_FIELDS, (int(v or 0) for v in r[3:]), strict=True))
    unreachable = await _period_unreachable(c, where, args)
    empty = (0, 0, 0)
    return [PeriodCell(topic=topic, department=dept, alerts=count, targeted=targets.get((topic, dept), empty)[0],
                       reached=targets.get((topic, dept), empty)[1], accepted=targets.get((topic, dept), empty)[2],
                       by_channel=channels.get((topic, dept), {}), unreachable=unreachable.get((topic, dept), {}))
            for (topic, dept), count in sorted(alerts.items())]


async def _period_unreachable(c: Conn, where: str, args: Args) -> dict[tuple[str, str], dict[str, int]]:
    """Targeted but unreached, by cause, with the same rule as one alert's `unreachable`."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in await c.fetch(
            "SELECT topic, dept, CASE WHEN n = 0 THEN 'no_contact' WHEN pend > 0 THEN 'pending' "
            "WHEN expd > 0 THEN 'expired' WHEN canc > 0 THEN 'cancelled' ELSE 'all_failed' END AS cause, COUNT(*) "
            f"FROM (SELECT a.topic AS topic, {DEPARTMENT} AS dept, COUNT(d.id) AS n, "
            f"  {_count(PENDING_OR_UNCONFIRMED)} AS pend, {_count(IS_EXPIRED)} AS expd, "
            f"  {_count(IS_CANCELLED)} AS canc "
            "  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            "  LEFT JOIN deliveries d ON d.alert_id = t.alert_id AND d.subscriber_id = t.subscriber_id "
            "       AND d.status <> 'skipped' "
            f"  WHERE {where} AND t.reached_at IS NULL "
            "  GROUP BY t.alert_id, t.subscriber_id, a.topic, a.department) x GROUP BY topic, dept, cause",
            *args.values):
        out[(r[0], r[1])][r[2]] = int(r[3])
    return out


_DIMENSIONS = {"topic": "a.topic", "department": DEPARTMENT}


async def period_reach_times(c: Conn, f: PeriodFilter, dimension: str | None,
                             ranks: Sequence[int]) -> dict[str, dict[int, float]]:
    """Seconds from release to reach of the targets ranked `ranks` within each value of `dimension`."""
    if not ranks:
        return {}
    args = Args()
    where = _alert_filter(f, args)
    key = _DIMENSIONS[dimension] if dimension is not None else "''"
    partition = f"PARTITION BY {key}" if dimension is not None else ""
    duration = f"t.reached_at - {RELEASE}"
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in await c.fetch(
            f"SELECT k, rn, dur FROM (SELECT {key}::text AS k, {duration} AS dur, "
            f"  ROW_NUMBER() OVER ({partition} ORDER BY {duration}, t.alert_id, t.subscriber_id) AS rn "
            f"  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            f"  WHERE {where} AND t.reached_at IS NOT NULL) x WHERE rn = ANY({args(list(ranks))}::bigint[])",
            *args.values):
        out[r[0]][int(r[1])] = float(r[2])
    return out


async def coverage_breakdown(c: Conn, alert_id: str) -> list[BreakdownRecord]:
    """Region × group × channel rows of one alert (see `sqlite_analytics.coverage_breakdown`)."""
    rows = await c.fetch(
        f"SELECT t.region, g.group_code, d.channel, COUNT(*), {_BREAKDOWN_COUNTS} FROM alert_targets t "
        "LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id AND g.subscriber_id = t.subscriber_id "
        "LEFT JOIN deliveries d ON d.alert_id = t.alert_id AND d.subscriber_id = t.subscriber_id "
        "     AND d.status <> 'skipped' "
        "WHERE t.alert_id = $1 GROUP BY t.region, g.group_code, d.channel", alert_id)
    records = [BreakdownRecord(region=r[0], group=r[1], channel=r[2], targeted=int(r[3]), attempted=int(r[4] or 0),
                               sent=int(r[5] or 0), delivered=int(r[6] or 0), failed=int(r[7] or 0),
                               pending=int(r[8] or 0), reached=int(r[9] or 0)) for r in rows]
    return sorted(records, key=lambda b: (b.region, b.group or "", b.channel or ""))


async def target_regions(c: Conn, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
    """The region each given subscriber had when the alert froze its targets."""
    if not subscriber_ids:
        return {}
    rows = await c.fetch("SELECT subscriber_id, region FROM alert_targets WHERE alert_id = $1 "
                         "AND subscriber_id = ANY($2::text[])", alert_id, list(subscriber_ids))
    return {r[0]: r[1] for r in rows}
