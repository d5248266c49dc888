"""What the admin dashboard reads beyond the coverage object: the reach-over-time curve, the final failures
grouped by their provider error, and the alert list's quick figures.

All run on the store's reader and return plain tuples; the admin view masks and labels them. They count by the
rules of `states` (release time, in progress, finally failed), as the coverage object does.
"""

from __future__ import annotations

import math

from notifier.states import DeliveryStatus
from notifier.store import fan_out_later
from notifier.store.db import FLOAT, Db, as_list
from notifier.store.states import ACCEPTED, FINAL_FAILED, IN_PROGRESS, REACHED, count, counted, is_, release

MAX_POINTS = 240  # the curve is drawn at most about this many steps wide, however long the alert took
# Bucket widths in seconds: a county's alert may be reached within a second, a province's over hours.
BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
MAX_ERROR_GROUPS = 500  # distinct raw error texts read; the view folds them once contacts are masked
_REACHED_TARGETS = f"FROM alert_targets t JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = ? AND t.{REACHED}"


def bucket_for(span: float) -> float:
    """The narrowest bucket width that cuts `span` seconds into at most MAX_POINTS buckets."""
    wanted = span / MAX_POINTS
    return next((b for b in BUCKETS if b >= wanted), BUCKETS[-1] * math.ceil(wanted / BUCKETS[-1]))


def _floor(x: str) -> str:
    """The integer part of a non-negative number, alike on both back-ends (SQLite's CAST truncates, PostgreSQL's
    rounds; FLOOR is not in every SQLite build)."""
    return f"(CAST({x} AS INTEGER) - CASE WHEN CAST({x} AS INTEGER) > {x} THEN 1 ELSE 0 END)"


async def reach_curve(db: Db, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
    """(bucket seconds, [(seconds since release, cumulative reached)]) of one alert, one point per non-empty
    bucket; the release is the alert's publish time, or its schedule when later (as for time_to_reach)."""
    span = await db.fetchval(f"SELECT MAX(t.reached_at) - MAX({release('a.')}) {_REACHED_TARGETS}", alert_id)
    if span is None:
        return BUCKETS[0], []
    bucket = bucket_for(max(0.0, float(span)))
    since = db.dialect.max_of("0", f"t.reached_at - {release('a.')}")
    rows = await db.fetch(
        f"SELECT {_floor('x.q')} AS b, COUNT(*) FROM (SELECT {since} / {FLOAT} AS q {_REACHED_TARGETS}) x "
        "GROUP BY b ORDER BY b", bucket, alert_id)
    points, total = [], 0
    for r in rows:
        total += int(r[1])
        points.append((round((int(r[0]) + 1) * bucket, 3), total))  # reached by the end of the bucket
    return bucket, points


async def failure_errors(db: Db, alert_id: str) -> list[tuple[str, str, str | None, int]]:
    """(channel, final status, last error or None, deliveries) of the alert's finally failed deliveries, the most
    frequent first. Error texts are raw provider answers and may hold contacts: mask them before showing."""
    rows = await db.fetch(
        "SELECT channel, status, last_error, COUNT(*) AS n FROM deliveries "
        f"WHERE alert_id = ? AND status IN {FINAL_FAILED} AND {counted()} "
        "GROUP BY channel, status, last_error ORDER BY n DESC, channel, status LIMIT ?", alert_id, MAX_ERROR_GROUPS)
    return [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), int(r[3])) for r in rows]


async def alert_figures(db: Db, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
    """For the alert list: (targeted, reached, accepted, pending, awaiting receipt) per alert, by the coverage
    object's definitions, without the breakdowns (the list refreshes every few seconds). Pending counts the people
    of a large publish whose rows are still being added too (`fan_out_later.people_to_come`): they are not done."""
    if not alert_ids:
        return {}
    each, ids = db.dialect.each(), as_list(alert_ids)
    to_come = await fan_out_later.people_to_come(db, alert_ids)  # first: rows added meanwhile count twice, not never
    heads = {r[0]: (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in await db.fetch(
        f"SELECT alert_id, COUNT(*), {count(REACHED)}, {count(ACCEPTED)} FROM alert_targets "
        f"WHERE alert_id IN {each} GROUP BY alert_id", ids)}
    sent = is_(DeliveryStatus.SENT)
    queue = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in await db.fetch(
        f"SELECT alert_id, {count(f'status IN {IN_PROGRESS}')}, {count(sent)} FROM deliveries "
        f"WHERE alert_id IN {each} AND (status IN {IN_PROGRESS} OR {sent}) AND {counted()} GROUP BY alert_id", ids)}
    figures: dict[str, tuple[int, int, int, int, int]] = {}
    for i in alert_ids:
        in_progress, awaiting = queue.get(i, (0, 0))
        figures[i] = (*heads.get(i, (0, 0, 0)), in_progress + to_come.get(i, 0), awaiting)
    return figures
