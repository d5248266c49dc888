"""Analytics: population denominators, period aggregates over many alerts, and the region × group × channel
breakdown of one alert.

The figures are raw counts, counted by the rules of `states` exactly as one alert's coverage object counts them
(a channel's counts, why a target was not reached, the release time); `notifier.analytics` and
`notifier.population` turn them into the API's models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from notifier.states import DeliveryStatus, MsgType
from notifier.store.coverage import channel_figures
from notifier.store.db import Db, as_list
from notifier.store.records import BreakdownRecord, PeriodCell, PeriodFilter, PopulationRecord
from notifier.store.states import (
    ACCEPTED,
    REACHED,
    TARGET_DELIVERIES,
    TARGETS_TO_COME,
    TO_COME,
    UNREACHED_CAUSE,
    channel_counts,
    count,
    counted,
    is_,
    release,
    released,
    unreached_causes,
    unreached_target_counts,
)

DEPARTMENT = "COALESCE(a.department, '')"
ALL_GROUPS = ""  # group_code of a region's total row (see migration 0003)
_DIMENSIONS = {"topic": "a.topic", "department": DEPARTMENT}

# ---------------------------------------------------------------- population


async def put_population(db: Db, rows: Sequence[PopulationRecord], now: float) -> None:
    """Replace every population row (the caller holds the write transaction)."""
    await db.execute("DELETE FROM population")
    await db.executemany("INSERT INTO population (region, group_code, residents, updated_at) VALUES (?, ?, ?, ?)",
                         [(r.region, r.group or ALL_GROUPS, r.residents, now) for r in rows])


async def population(db: Db) -> list[PopulationRecord]:
    rows = await db.fetch("SELECT region, group_code, residents, updated_at FROM population "
                          "ORDER BY region, group_code")
    return [PopulationRecord(region=r[0], group=r[1] or None, residents=int(r[2]), updated_at=float(r[3]))
            for r in rows]


# ---------------------------------------------------------------- period aggregates


def _alert_filter(f: PeriodFilter, *, small_too: bool = False) -> tuple[str, list[Any]]:
    """WHERE clause over `alerts a` for a period filter (fixed fragments, every value a parameter): only `alert`
    messages, as updates and cancels are follow-ups, and only those that went out (not held, rejected or
    withdrawn); alerts under `min_targeted` only when `small_too`."""
    clauses: list[str] = [f"a.msg_type = '{MsgType.ALERT}'", released("a.")]
    params: list[Any] = []
    small = None if small_too else f.min_targeted
    for clause, value in (("a.topic LIKE ?", f.topic_like), ("a.department = ?", f.department),
                          ("a.created_at >= ?", f.since), ("a.created_at < ?", f.until), ("a.targeted >= ?", small)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


async def period_cells(db: Db, f: PeriodFilter) -> list[PeriodCell]:
    """Additive figures per topic × department of the alerts the filter selects."""
    where, params = _alert_filter(f)
    every, every_params = _alert_filter(f, small_too=True)
    small = f.min_targeted if f.min_targeted is not None else 0
    counts = {(r[0], r[1]): (int(r[2]), int(r[3] or 0)) for r in await db.fetch(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*), SUM(CASE WHEN a.targeted < ? THEN 1 ELSE 0 END) FROM alerts a "
        f"WHERE {every} GROUP BY a.topic, {DEPARTMENT}", small, *every_params)}
    targets = {(r[0], r[1]): (int(r[2]), int(r[3] or 0), int(r[4] or 0)) for r in await db.fetch(
        f"SELECT a.topic, {DEPARTMENT}, COUNT(*), {count('t.' + REACHED)}, {count('t.' + ACCEPTED)} "
        f"FROM alert_targets t JOIN alerts a ON a.id = t.alert_id WHERE {where} GROUP BY a.topic, {DEPARTMENT}",
        *params)}
    channels: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(dict)
    for r in await db.fetch(
            f"SELECT x.topic, x.dept, d.channel, {channel_counts('d.')} FROM deliveries d JOIN ("
            f"SELECT a.id, a.topic, {DEPARTMENT} AS dept FROM alerts a WHERE {where}) x ON x.id = d.alert_id "
            f"WHERE {counted('d.')} GROUP BY x.topic, x.dept, d.channel", *params):
        channels[(r[0], r[1])][r[2]] = channel_figures(r, 3)
    unreachable = await _period_unreachable(db, where, params)
    empty = (0, 0, 0)
    return [PeriodCell(topic=topic, department=dept, alerts=n - left_out,
                       targeted=targets.get((topic, dept), empty)[0], reached=targets.get((topic, dept), empty)[1],
                       accepted=targets.get((topic, dept), empty)[2], by_channel=channels.get((topic, dept), {}),
                       unreachable=unreachable.get((topic, dept), {}), left_out=left_out)
            for (topic, dept), (n, left_out) in sorted(counts.items())]


async def _period_unreachable(db: Db, where: str, params: list[Any]) -> dict[tuple[str, str], dict[str, int]]:
    """Targeted but unreached, by cause, with the same rule as one alert's `unreachable`."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in await db.fetch(
            f"SELECT topic, dept, {UNREACHED_CAUSE} AS cause, COUNT(*) FROM ("
            f"  SELECT a.topic AS topic, {DEPARTMENT} AS dept, {unreached_target_counts('d.')} "
            f"  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id {TARGET_DELIVERIES} "
            f"  WHERE {where} AND NOT (t.{REACHED}) "
            "  GROUP BY t.alert_id, t.subscriber_id, a.topic, a.department) x GROUP BY topic, dept, cause "
            f"UNION ALL SELECT a.topic, {DEPARTMENT}, '{TO_COME}', COUNT(*) FROM {TARGETS_TO_COME} "
            f"JOIN alerts a ON a.id = t.alert_id WHERE {where} GROUP BY a.topic, {DEPARTMENT}", *params, *params):
        out[(r[0], r[1])][r[2]] = int(r[3])
    return {key: unreached_causes(counts) for key, counts in out.items()}


async def period_reach_times(db: Db, f: PeriodFilter, dimension: str | None,
                             ranks: Sequence[int]) -> dict[str, dict[int, float]]:
    """Seconds from release to reach of the targets ranked `ranks` (1 = reached soonest) within each value of
    `dimension` ("topic", "department", or None for all the alerts together; its key is "")."""
    if not ranks:
        return {}
    where, params = _alert_filter(f)
    key = _DIMENSIONS[dimension] if dimension is not None else "''"
    partition = f"PARTITION BY {key}" if dimension is not None else ""
    duration = f"t.reached_at - {release('a.')}"
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in await db.fetch(
            f"SELECT k, rn, dur FROM (SELECT CAST({key} AS TEXT) AS k, {duration} AS dur, "
            f"  ROW_NUMBER() OVER ({partition} ORDER BY {duration}, t.alert_id, t.subscriber_id) AS rn "
            "  FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            f"  WHERE {where} AND t.{REACHED}) x WHERE rn IN {db.dialect.each('INTEGER')}",
            *params, as_list(ranks)):
        out[r[0]][int(r[1])] = float(r[2])
    return out


# ---------------------------------------------------------------- one alert, broken down


# A delivered delivery that no other delivery of the same subscriber beat: the channel that reached them first.
_FIRST_TO_REACH = (
    f"{is_(DeliveryStatus.DELIVERED, 'd.')} AND NOT EXISTS (SELECT 1 FROM deliveries e "
    f"WHERE e.alert_id = d.alert_id AND e.subscriber_id = d.subscriber_id AND {is_(DeliveryStatus.DELIVERED, 'e.')} "
    "AND (COALESCE(e.delivered_at, 0) < COALESCE(d.delivered_at, 0) OR (COALESCE(e.delivered_at, 0) = "
    "COALESCE(d.delivered_at, 0) AND e.channel < d.channel)))")


async def coverage_breakdown(db: Db, alert_id: str) -> list[BreakdownRecord]:
    """Region × group × channel rows of one alert; skipped fallbacks count nowhere, and subscribers with no
    delivery at all (no usable contact) form the rows with channel None."""
    rows = await db.fetch(
        f"SELECT t.region, g.group_code, d.channel, COUNT(*), {channel_counts('d.')}, {count(_FIRST_TO_REACH)} "
        "FROM alert_targets t LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id "
        f"AND g.subscriber_id = t.subscriber_id {TARGET_DELIVERIES} "
        "WHERE t.alert_id = ? GROUP BY t.region, g.group_code, d.channel", alert_id)
    records = []
    for r in rows:
        c = channel_figures(r, 4)
        records.append(BreakdownRecord(
            region=r[0], group=r[1], channel=r[2], targeted=int(r[3]), attempted=c["attempted"], sent=c["sent"],
            delivered=c["delivered"], failed=c["failed"], pending=c["pending"], reached=int(r[-1] or 0)))
    # Sorted here: SQLite puts NULLs first, PostgreSQL last.
    return sorted(records, key=lambda b: (b.region, b.group or "", b.channel or ""))


async def target_regions(db: Db, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
    """The region each given subscriber had when the alert froze its targets."""
    if not subscriber_ids:
        return {}
    rows = await db.fetch("SELECT subscriber_id, region FROM alert_targets WHERE alert_id = ? "
                          f"AND subscriber_id IN {db.dialect.each()}", alert_id, as_list(subscriber_ids))
    return {r[0]: r[1] for r in rows}
