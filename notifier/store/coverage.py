"""How coverage is counted (SPEC "Coverage"): every figure of one alert's coverage object, aggregated in SQL over
its frozen targets (`alert_targets`, `alert_target_groups`: the denominator) and its deliveries, by the rules of
`states` (reached, accepted, a channel's counts, why a target was not reached, the release time) — a group's
figures summed from its region × group cells; and the alert's deliveries, paged, for the admin views.
"""

from __future__ import annotations

import math

from notifier.store.db import Db, Row
from notifier.store.records import CoverageRows, DeliveryRow
from notifier.store.states import (
    ACCEPTED,
    CHANNEL_FIELDS,
    NEVER,
    REACHED,
    TARGET_DELIVERIES,
    TARGETS_TO_COME,
    TO_COME,
    UNREACHED_CAUSE,
    channel_counts,
    count,
    counted,
    release,
    unreached_causes,
    unreached_target_counts,
)

QUANTILES = (0.5, 0.9, 0.99)


async def coverage_rows(db: Db, alert_id: str) -> CoverageRows:
    """Every figure of the coverage object."""
    # The whole and each region from one read of the targets (a province-wide alert has millions).
    regions = [(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in await db.fetch(
        f"SELECT region, COUNT(*), {count(REACHED)}, {count(ACCEPTED)} FROM alert_targets WHERE alert_id = ? "
        "GROUP BY region", alert_id)]
    targeted, reached, accepted = (sum(r[i] for r in regions) for i in (1, 2, 3))
    by_channel = {r[0]: channel_figures(r, 1) for r in await db.fetch(
        f"SELECT channel, {channel_counts()} FROM deliveries WHERE alert_id = ? AND {counted()} GROUP BY channel "
        "ORDER BY channel",
        alert_id)}
    cells = [(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in await db.fetch(
        f"SELECT t.region, g.group_code, COUNT(*), {count('t.' + REACHED)} FROM alert_targets t "
        "LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id AND g.subscriber_id = t.subscriber_id "
        "WHERE t.alert_id = ? GROUP BY t.region, g.group_code", alert_id)]
    cells.sort(key=lambda c: (c[0], c[1] or ""))  # NULL (no group) sorts first on SQLite, last on PostgreSQL
    by_region = {r[0]: (r[1], r[2]) for r in regions}
    # A target of a group is in exactly one cell of that group (its region's): a group's figures are its cells' sum.
    by_group: dict[str, tuple[int, int]] = {}
    for _, group, in_cell, reached_in_cell in cells:
        if group is not None:
            total, reached_total = by_group.get(group, (0, 0))
            by_group[group] = (total + in_cell, reached_total + reached_in_cell)
    return CoverageRows(targeted=targeted, reached=reached, accepted=accepted, by_channel=by_channel, cells=cells,
                        by_region=by_region, by_group=by_group,
                        reach_times=await _reach_quantiles(db, alert_id, targeted, reached),
                        unreachable=await _unreachable(db, alert_id))


def channel_figures(row: Row, start: int) -> dict[str, int]:
    """The `channel_counts()` columns of a row, from column `start` on, by name."""
    return {name: int(row[start + i] or 0) for i, name in enumerate(CHANNEL_FIELDS)}


async def _reach_quantiles(db: Db, alert_id: str, targeted: int, reached: int) -> list[float | None]:
    """Seconds from release until 50/90/99 % of the targeted were reached (None until that many are)."""
    out: list[float | None] = []
    for q in QUANTILES:
        k = max(1, math.ceil(q * targeted))
        if targeted == 0 or reached < k:
            out.append(None)
            continue
        value = await db.fetchval(
            f"SELECT t.reached_at - {release()} FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
            "WHERE t.alert_id = ? AND t.reached_at IS NOT NULL ORDER BY t.reached_at LIMIT 1 OFFSET ?",
            alert_id, k - 1)
        out.append(max(0.0, float(value)) if value is not None else None)
    return out


async def _unreachable(db: Db, alert_id: str) -> dict[str, int]:
    """Targets not reached, by cause (skipped fallbacks are not a delivery)."""
    rows = await db.fetch(
        f"SELECT {UNREACHED_CAUSE} AS cause, COUNT(*) FROM ("
        f"  SELECT t.subscriber_id, {unreached_target_counts()} "
        f"  FROM alert_targets t {TARGET_DELIVERIES} "
        "  WHERE t.alert_id = ? AND t.reached_at IS NULL GROUP BY t.subscriber_id) x GROUP BY cause "
        f"UNION ALL SELECT '{TO_COME}', COUNT(*) FROM {TARGETS_TO_COME} WHERE w.alert_id = ?", alert_id, alert_id)
    return unreached_causes({r[0]: int(r[1]) for r in rows})


async def list_deliveries(db: Db, alert_id: str, limit: int, after: str | None, status: str | None,
                          channel: str | None) -> tuple[list[DeliveryRow], int]:
    """A page of the alert's deliveries (by id, after `after`) with their contacts, and how many match."""
    where, params = "d.alert_id = ?", [alert_id]
    for column, value in (("status", status), ("channel", channel)):
        if value:
            where += f" AND d.{column} = ?"
            params.append(value)
    total = int(await db.fetchval(f"SELECT COUNT(*) FROM deliveries d WHERE {where}", *params))
    if after:
        where += " AND d.id > ?"
        params.append(after)
    rows = await db.fetch(
        "SELECT d.*, c.address FROM deliveries d LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id "
        f"AND c.channel = d.channel WHERE {where} ORDER BY d.id LIMIT ?", *params, limit)
    return [DeliveryRow(
        id=r["id"], alert_id=r["alert_id"], subscriber_id=r["subscriber_id"], channel=r["channel"],
        address=r["address"], status=r["status"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"] if r["next_attempt_at"] < NEVER else None,
        provider_message_id=r["provider_message_id"], last_error=r["last_error"], created_at=r["created_at"],
        sent_at=r["sent_at"], delivered_at=r["delivered_at"], finished_at=r["finished_at"]) for r in rows], total
