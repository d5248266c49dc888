"""Analytics SQL for SQLite: population denominators, period aggregates over many alerts, and the
region × group × channel breakdown of one alert.

Every statement is portable SQL (PostgreSQL accepts it unchanged): CASE instead of two-argument MAX, window
functions for ranks, NULL-sensitive ordering done in Python. The figures are raw counts; `notifier.analytics`
and `notifier.population` turn them into the API's models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import aiosqlite

from notifier.store.records import BreakdownRecord, PeriodCell, PeriodFilter, PopulationRecord
from notifier.store.sqlite_queue import (
    _CHANNEL_COUNTS,  # the per-channel counting rule is defined once, in sqlite_queue
    FINAL_FAILED,
    IS_CANCELLED,
    IS_EXPIRED,
    PENDING,
    PENDING_OR_UNCONFIRMED,
)

CHANNEL_FIELDS = ("attempted", "sent", "delivered", "failed", "pending", "awaiting_receipt", "skipped")
# When an alert went out: its publish time, or its schedule when that is later.
RELEASE = ("CASE WHEN a.scheduled_at IS NOT NULL AND a.scheduled_at > a.created_at THEN a.scheduled_at "
           "ELSE a.created_at END")
DEPARTMENT = "COALESCE(a.department, '')"
ALL_GROUPS = ""  # group_code of a region's total row (see migration 0003)


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _marks(n: int) -> str:
    return ",".join("?" * n)


# ---------------------------------------------------------------- population


async def put_population(db: aiosqlite.Connection, rows: Sequence[PopulationRecord], now: float) -> None:
    """Replace every population row (the caller holds the write transaction)."""
    await db.execute("DELETE FROM population")
    await db.executemany(
        "INSERT INTO population (region, group_code, residents, updated_at) VALUES (?, ?, ?, ?)",
        [(r.region, r.group or ALL_GROUPS, r.residents, now) for r in rows])


async def population(db: aiosqlite.Connection) -> list[PopulationRecord]:
    rows = await db.execute_fetchall(
        "SELECT region, group_code, residents, updated_at FROM population ORDER BY region, group_code")
    return [PopulationRecord(region=r[0], group=r[1] or None, residents=int(r[2]), updated_at=float(r[3]))
            for r in rows]


# ---------------------------------------------------------------- period aggregates


def _alert_filter(f: PeriodFilter) -> tuple[str, list[Any]]:
    """WHERE clause over `alerts a` for a period filter (fixed fragments, every value a parameter)."""
    clauses: list[str] = ["a.msg_type = 'alert'"]
    params: list[Any] = []
    if f.topic_like is not None:
        clauses.append("a.topic LIKE ?")
        params.append(f.topic_like)
    if f.department is not None:
        clauses.append("a.department = ?")
        params.append(f.department)
    if f.since is not None:
        clauses.append("a.created_at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("a.created_at < ?")
        params.append(f.until)
    return " AND ".join(clauses), params


async def period_cells(db: aiosqlite.Connection, f: PeriodFilter) -> list[PeriodCell]:
    """Additive figures per topic × department of the alerts the filter selects."""
    where, params = _alert_filter(f)
    alerts = {(r[0], r[1]): int(r[2]) for r in await db.execute_fetchall(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*) FROM alerts a WHERE {where} GROUP BY a.topic, {DEPARTMENT}",
        params)}
    targets = {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in await db.execute_fetchall(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*), COUNT(t.reached_at), COUNT(t.accepted_at) FROM alert_targets t "
        f"JOIN alerts a ON a.id = t.alert_id WHERE {where} GROUP BY a.topic, {DEPARTMENT}", params)}
    channels: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(dict)
    for r in await db.execute_fetchall(
            f"SELECT x.topic, x.dept, channel, {_CHANNEL_COUNTS} FROM deliveries d JOIN ("
            f"SELECT a.id, a.topic, {DEPARTMENT} AS dept FROM alerts a WHERE {where}) x ON x.id = d.alert_id "
            "GROUP BY x.topic, x.dept, channel", params):
        channels[(r[0], r[1])][r[2]] = dict(zip(CHANNEL_FIELDS, (int(v or 0) for v in r[3:]), strict=True))
    unreachable = await _period_unreachable(db, where, params)
    return [PeriodCell(topic=topic, department=dept, alerts=count, targeted=targets.get((topic, dept), (0, 0, 0))[0],
                       reached=targets.get((topic, dept), (0, 0, 0))[1],
                       accepted=targets.get((topic, dept), (0, 0, 0))[2],
                       by_channel=channels.get((topic, dept), {}), unreachable=unreachable.get((topic, dept), {}))
            for (topic, dept), count in sorted(alerts.items())]


async def _period_unreachable(db: aiosqlite.Connection, where: str,
                              params: list[Any]) -> dict[tuple[str, str], dict[str, int]]:
    """Targeted but unreached, by cause, with the same rule as one alert's `unreachable`."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in await db.execute_fetchall(
            "SELECT topic, dept, CASE WHEN n = 0 THEN 'no_contact' WHEN pend > 0 THEN 'pending' "
            "WHEN expd > 0 THEN 'expired' WHEN canc > 0 THEN 'cancelled' ELSE 'all_failed' END AS cause, COUNT(*) "
            f"FROM (SELECT a.topic AS topic, {DEPARTMENT} AS dept, COUNT(d.id) AS n, "
            f"  {_count(PENDING_OR_UNCONFIRMED)} AS pend, {_count(IS_EXPIRED)} AS expd, "
            f"  {_count(IS_CANCELLED)} AS canc "
            "  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            "  LEFT JOIN deliveries d ON d.alert_id = t.alert_id AND d.subscriber_id = t.subscriber_id "
            "       AND d.status <> 'skipped' "
            f"  WHERE {where} AND t.reached_at IS NULL "
            "  GROUP BY t.alert_id, t.subscriber_id, a.topic, a.department) x GROUP BY topic, dept, cause", params):
        out[(r[0], r[1])][r[2]] = int(r[3])
    return out


_DIMENSIONS = {"topic": "a.topic", "department": DEPARTMENT}


async def period_reach_times(db: aiosqlite.Connection, f: PeriodFilter, dimension: str | None,
                             ranks: Sequence[int]) -> dict[str, dict[int, float]]:
    """Seconds from release to reach of the targets ranked `ranks` (1 = reached soonest) within each value of
    `dimension` ("topic", "department", or None for all the alerts together; its key is "")."""
    if not ranks:
        return {}
    where, params = _alert_filter(f)
    key = _DIMENSIONS[dimension] if dimension is not None else "''"
    partition = f"PARTITION BY {key}" if dimension is not None else ""
    duration = f"t.reached_at - {RELEASE}"
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in await db.execute_fetchall(
            f"SELECT k, rn, dur FROM (SELECT {key} AS k, {duration} AS dur, "
            f"  ROW_NUMBER() OVER ({partition} ORDER BY {duration}, t.alert_id, t.subscriber_id) AS rn "
            f"  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            f"  WHERE {where} AND t.reached_at IS NOT NULL) x WHERE rn IN ({_marks(len(ranks))})",
            [*params, *ranks]):
        out[r[0]][int(r[1])] = float(r[2])
    return out


# ---------------------------------------------------------------- one alert, broken down


# A delivered delivery that no other delivery of the same subscriber beat: the channel that reached them first.
_FIRST_TO_REACH = (
    "d.status = 'delivered' AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.alert_id = d.alert_id "
    "AND e.subscriber_id = d.subscriber_id AND e.status = 'delivered' AND (COALESCE(e.delivered_at, 0) < "
    "COALESCE(d.delivered_at, 0) OR (COALESCE(e.delivered_at, 0) = COALESCE(d.delivered_at, 0) "
    "AND e.channel < d.channel)))")


_BREAKDOWN_COUNTS = ", ".join(_count(c) for c in (
    "d.attempts > 0", "d.sent_at IS NOT NULL", "d.status = 'delivered'", f"d.status IN {FINAL_FAILED}",
    f"d.status IN {PENDING}", _FIRST_TO_REACH))


async def coverage_breakdown(db: aiosqlite.Connection, alert_id: str) -> list[BreakdownRecord]:
    """Region × group × channel rows of one alert; skipped fallbacks count nowhere, and subscribers with no
    delivery at all (no usable contact) form the rows with channel None."""
    rows = await db.execute_fetchall(
        f"SELECT t.region, g.group_code, d.channel, COUNT(*), {_BREAKDOWN_COUNTS} FROM alert_targets t "
        "LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id AND g.subscriber_id = t.subscriber_id "
        "LEFT JOIN deliveries d ON d.alert_id = t.alert_id AND d.subscriber_id = t.subscriber_id "
        "     AND d.status <> 'skipped' "
        "WHERE t.alert_id = ? GROUP BY t.region, g.group_code, d.channel", (alert_id,))
    records = [BreakdownRecord(region=r[0], group=r[1], channel=r[2], targeted=int(r[3]), attempted=int(r[4] or 0),
                               sent=int(r[5] or 0), delivered=int(r[6] or 0), failed=int(r[7] or 0),
                               pending=int(r[8] or 0), reached=int(r[9] or 0)) for r in rows]
    # Sorted here: SQLite puts NULLs first, PostgreSQL last.
    return sorted(records, key=lambda b: (b.region, b.group or "", b.channel or ""))


async def target_regions(db: aiosqlite.Connection, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
    """The region each given subscriber had when the alert froze its targets."""
    if not subscriber_ids:
        return {}
    rows = await db.execute_fetchall(
        f"SELECT subscriber_id, region FROM alert_targets WHERE alert_id = ? "
        f"AND subscriber_id IN ({_marks(len(subscriber_ids))})", (alert_id, *subscriber_ids))
    return {r[0]: r[1] for r in rows}
