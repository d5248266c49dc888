"""Read-only SQL the admin dashboard needs beyond the coverage object, for PostgreSQL: the functions of
`sqlite_admin` (reach-over-time curve, final failures grouped by provider error, the alert list's quick figures)
with the same results, on a pooled connection."""

from __future__ import annotations

from notifier.store.pg_base import Conn
from notifier.store.sqlite_admin import BUCKETS, MAX_ERROR_GROUPS, bucket_for
from notifier.store.sqlite_queue import FINAL_FAILED, PENDING

_RELEASE = "GREATEST(a.created_at, COALESCE(a.scheduled_at, 0))"


async def reach_curve(c: Conn, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
    """(bucket seconds, [(seconds since release, cumulative reached)]) of one alert, one point per non-empty
    bucket (as `sqlite_admin.reach_curve`)."""
    span = await c.fetchval(
        f"SELECT MAX(t.reached_at) - MAX({_RELEASE}) FROM alert_targets t "
        "JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = $1 AND t.reached_at IS NOT NULL", alert_id)
    if span is None:
        return BUCKETS[0], []
    bucket = bucket_for(max(0.0, float(span)))
    rows = await c.fetch(
        f"SELECT FLOOR(GREATEST(0, t.reached_at - {_RELEASE}) / $1::float8)::bigint AS b, COUNT(*) "
        "FROM alert_targets t JOIN alerts a ON a.id = t.alert_id "
        "WHERE t.alert_id = $2 AND t.reached_at IS NOT NULL GROUP BY b ORDER BY b", bucket, alert_id)
    points, total = [], 0
    for index, count in rows:
        total += int(count)
        points.append((round((int(index) + 1) * bucket, 3), total))  # reached by the end of the bucket
    return bucket, points


async def failure_errors(c: Conn, alert_id: str) -> list[tuple[str, str, str | None, int]]:
    """(channel, final status, last error or None, deliveries) of the alert's finally failed deliveries, the most
    frequent first. Error texts are raw provider answers and may hold contacts: mask them before showing."""
    rows = await c.fetch(
        "SELECT channel, status, last_error, COUNT(*) AS n FROM deliveries "
        f"WHERE alert_id = $1 AND status IN {FINAL_FAILED} "
        "GROUP BY channel, status, last_error ORDER BY n DESC, channel, status LIMIT $2", alert_id, MAX_ERROR_GROUPS)
    return [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), int(r[3])) for r in rows]


async def alert_figures(c: Conn, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
    """For the alert list: (targeted, reached, accepted, pending, awaiting receipt) per alert."""
    if not alert_ids:
        return {}
    heads = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in await c.fetch(
        "SELECT alert_id, COUNT(*), COUNT(reached_at), COUNT(accepted_at) FROM alert_targets "
        "WHERE alert_id = ANY($1::text[]) GROUP BY alert_id", alert_ids)}
    queue = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in await c.fetch(
        f"SELECT alert_id, SUM(CASE WHEN status IN {PENDING} THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) FROM deliveries WHERE alert_id = ANY($1::text[]) "
        f"AND (status IN {PENDING} OR status = 'sent') GROUP BY alert_id", alert_ids)}
    return {i: (*heads.get(i, (0, 0, 0)), *queue.get(i, (0, 0))) for i in alert_ids}
