"""Read-only SQL the admin dashboard needs beyond the coverage object (SQLite): the reach-over-time curve, the
final failures grouped by their provider error, and the alert list's quick figures.

All run on the store's reader connection (WAL readers never block the writer) and return plain tuples; the admin
view masks and labels them. A PostgreSQL back-end would provide the same functions in a module of its own (until
then the dashboard leaves the curve and the error table out there).
"""

from __future__ import annotations

import math

import aiosqlite

from notifier.store.sqlite_queue import FINAL_FAILED, PENDING

MAX_POINTS = 240  # the curve is drawn at most about this many steps wide, however long the alert took
# Bucket widths in seconds: a county's alert may be reached within a second, a province's over hours.
BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
MAX_ERROR_GROUPS = 500  # distinct raw error texts read; the view folds them once contacts are masked


def bucket_for(span: float) -> float:
    """The narrowest bucket width that cuts `span` seconds into at most MAX_POINTS buckets."""
    wanted = span / MAX_POINTS
    return next((b for b in BUCKETS if b >= wanted), BUCKETS[-1] * math.ceil(wanted / BUCKETS[-1]))


async def reach_curve(db: aiosqlite.Connection, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
    """(bucket seconds, [(seconds since release, cumulative reached)]) of one alert, one point per non-empty
    bucket; the release is the alert's publish time, or its schedule when later (as for time_to_reach)."""
    span_row = next(iter(await db.execute_fetchall(
        "SELECT MAX(t.reached_at) - MAX(a.created_at, COALESCE(a.scheduled_at, 0)) FROM alert_targets t "
        "JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = ? AND t.reached_at IS NOT NULL", (alert_id,))))
    span = span_row[0]
    if span is None:
        return BUCKETS[0], []
    bucket = bucket_for(max(0.0, float(span)))
    rows = await db.execute_fetchall(
        "SELECT CAST(MAX(0, t.reached_at - MAX(a.created_at, COALESCE(a.scheduled_at, 0))) / ? AS INTEGER) AS b, "
        "COUNT(*) FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
        "WHERE t.alert_id = ? AND t.reached_at IS NOT NULL GROUP BY b ORDER BY b", (bucket, alert_id))
    points, total = [], 0
    for index, count in rows:
        total += int(count)
        points.append((round((int(index) + 1) * bucket, 3), total))  # reached by the end of the bucket
    return bucket, points


async def failure_errors(db: aiosqlite.Connection, alert_id: str) -> list[tuple[str, str, str | None, int]]:
    """(channel, final status, last error or None, deliveries) of the alert's finally failed deliveries, the most
    frequent first. Error texts are raw provider answers and may hold contacts: mask them before showing."""
    rows = await db.execute_fetchall(
        "SELECT channel, status, last_error, COUNT(*) AS n FROM deliveries "
        f"WHERE alert_id = ? AND status IN {FINAL_FAILED} "
        "GROUP BY channel, status, last_error ORDER BY n DESC, channel, status LIMIT ?",
        (alert_id, MAX_ERROR_GROUPS))
    return [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), int(r[3])) for r in rows]


async def alert_figures(db: aiosqlite.Connection, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
    """For the alert list: (targeted, reached, accepted, pending, awaiting receipt) per alert, by the coverage
    object's definitions, without the breakdowns (the list refreshes every few seconds)."""
    if not alert_ids:
        return {}
    marks = ", ".join("?" for _ in alert_ids)
    heads = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in await db.execute_fetchall(
        f"SELECT alert_id, COUNT(*), COUNT(reached_at), COUNT(accepted_at) FROM alert_targets "
        f"WHERE alert_id IN ({marks}) GROUP BY alert_id", alert_ids)}
    queue = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in await db.execute_fetchall(
        f"SELECT alert_id, SUM(CASE WHEN status IN {PENDING} THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) FROM deliveries WHERE alert_id IN ({marks}) "
        f"AND (status IN {PENDING} OR status = 'sent') GROUP BY alert_id", alert_ids)}
    return {i: (*heads.get(i, (0, 0, 0)), *queue.get(i, (0, 0))) for i in alert_ids}
