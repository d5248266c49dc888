"""The delivery queue and coverage SQL for PostgreSQL: fan-out at publish, lease-based claims, batched result
writes, sweeps (lease reclaim, expiry, fallback windows) and coverage aggregates.

The statements are those of `sqlite_queue` with three differences that make many workers on many hosts safe:
claims pick their rows with `FOR UPDATE SKIP LOCKED` (two claimers never wait for, nor take, the same row);
`record` locks the rows its lease still covers (`FOR UPDATE`) before writing, so a sweep on another host cannot
reclaim them half-way; and each batch of results is one statement over `unnest` arrays (one round trip with a
row count, where SQLite uses executemany). The shared token bucket is one `INSERT … ON CONFLICT DO UPDATE …
RETURNING`, which locks its row.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from notifier.store import pg_receipts
from notifier.store.pg_base import Args, Conn, rowcount
from notifier.store.pg_fallback import activate_next
from notifier.store.records import ClaimedDelivery, CoverageRows, DeliveryRow, Outcome, Targeting
from notifier.store.sqlite_queue import _CHANNEL_COUNTS, IS_CANCELLED, IS_EXPIRED, PENDING_OR_UNCONFIRMED, _count

NEW_ID = "md5(random()::text || clock_timestamp()::text)"


async def fan_out(c: Conn, alert_id: str, t: Targeting, now: float) -> int:
    """Freeze the target set and create the delivery rows; returns how many subscribers are targeted."""
    if t.from_alert is not None:
        accepted = "AND r.accepted_at IS NOT NULL" if t.only_accepted else ""
        await c.execute(
            "INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT $1::text, r.subscriber_id, s.region "
            f"FROM alert_targets r JOIN subscribers s ON s.id = r.subscriber_id WHERE r.alert_id = $2 {accepted}",
            alert_id, t.from_alert)
    else:
        args = Args(alert_id, t.topic, t.min_severity_rank)
        where = ""
        if t.regions:
            where += f" AND s.region = ANY({args(t.regions)}::text[])"
        if t.groups:
            where += (" AND EXISTS (SELECT 1 FROM subscriber_groups g WHERE g.subscriber_id = s.id "
                      f"AND g.group_code = ANY({args(t.groups)}::text[]))")
        await c.execute(
            "INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT $1::text, s.id, s.region "
            "FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id "
            f"WHERE sub.topic = $2 AND sub.min_severity <= $3 AND s.status = 'active'{where}", *args.values)
    await c.execute(
        "INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) "
        "SELECT t.alert_id, t.subscriber_id, g.group_code FROM alert_targets t "
        "JOIN subscriber_groups g ON g.subscriber_id = t.subscriber_id WHERE t.alert_id = $1", alert_id)
    # One row per usable channel, ranked by the subscriber's preference; under `fallback` only the first is
    # queued and the rest wait as `skipped` until a failure (or a missing receipt) activates the next.
    await c.execute(
        "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, attempts, "
        f"next_attempt_at, created_at, updated_at) SELECT {NEW_ID}, alert_id, subscriber_id, channel, rank, "
        "CASE WHEN $1::text = 'all' OR rank = 1 THEN 'queued' ELSE 'skipped' END, $2::integer, 0, $3::float8, "
        "$4::float8, $4::float8 FROM ("
        "  SELECT t.alert_id, t.subscriber_id, sc.channel, "
        "         ROW_NUMBER() OVER (PARTITION BY t.subscriber_id ORDER BY sc.position) AS rank "
        "  FROM alert_targets t "
        "  JOIN subscription_channels sc ON sc.subscriber_id = t.subscriber_id AND sc.topic = $5 "
        "  JOIN contacts c ON c.subscriber_id = t.subscriber_id AND c.channel = sc.channel "
        "       AND c.verified_at IS NOT NULL AND c.disabled_at IS NULL "
        "  WHERE t.alert_id = $6) ranked",
        t.policy, t.priority, t.first_attempt_at, now, t.topic, alert_id)
    return int(await c.fetchval("SELECT COUNT(*) FROM alert_targets WHERE alert_id = $1", alert_id))


async def claim(c: Conn, owner: str, now: float, lease_until: float, limit: int) -> list[ClaimedDelivery]:
    """Lease up to `limit` due deliveries, most urgent first; rows another claimer holds are skipped, not waited
    for, so concurrent claims never return one delivery twice."""
    ids = [r[0] for r in await c.fetch(
        "UPDATE deliveries SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 "
        "WHERE id IN (SELECT id FROM deliveries WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3 "
        "ORDER BY priority DESC, next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id",
        owner, lease_until, now, limit)]
    if not ids:
        return []
    details = await c.fetch(
        "SELECT d.id, d.alert_id, d.subscriber_id, d.channel, d.position, d.attempts, d.created_at, "
        "c.address, c.secret, c.disabled_at, s.locale, s.quiet_start, s.quiet_end FROM deliveries d "
        "LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id AND c.channel = d.channel "
        "LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = ANY($1::text[])", ids)
    return [ClaimedDelivery(
        id=r["id"], alert_id=r["alert_id"], subscriber_id=r["subscriber_id"], channel=r["channel"],
        position=r["position"], attempts=r["attempts"],
        address=r["address"] if r["disabled_at"] is None else None, secret=r["secret"],
        locale=r["locale"] or "zh-CN", quiet_start=r["quiet_start"], quiet_end=r["quiet_end"],
        created_at=r["created_at"]) for r in details]


# `u` is the unnest of the batch; $1 is now, $2 the owner: the lease fence.
_FENCE = "WHERE d.id = u.id AND d.lease_owner = $2 AND d.status = 'sending'"
_RELEASE = "lease_owner = NULL, lease_until = NULL, updated_at = $1"


async def record(c: Conn, owner: str, outcomes: list[Outcome], now: float) -> list[str]:
    """Write a batch of send results in one transaction; returns the ids the lease still covered.

    The covered rows are locked first, so a concurrent sweep cannot reclaim them mid-write; outcomes for rows
    whose lease was already reclaimed are dropped whole, as in SQLite."""
    held = {r[0] for r in await c.fetch(
        "SELECT id FROM deliveries WHERE id = ANY($1::text[]) AND status = 'sending' AND lease_owner = $2 "
        "FOR UPDATE", [o.delivery_id for o in outcomes], owner)}
    outcomes = [o for o in outcomes if o.delivery_id in held]
    by_status: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_status[o.status].append(o)
    written = await _write_sent(c, owner, by_status["delivered"], by_status["sent"], now)
    written += await _write_later(c, owner, by_status["queued"] + by_status["deferred"], now)
    if failed := by_status["failed"]:
        written += rowcount(await c.execute(
            f"UPDATE deliveries d SET status = 'failed', attempts = d.attempts + u.tried, finished_at = $1, "
            f"last_error = u.error, {_RELEASE} FROM unnest($3::text[], $4::integer[], $5::text[]) "
            f"AS u(id, tried, error) {_FENCE}",
            now, owner, [o.delivery_id for o in failed], [int(o.attempted) for o in failed],
            [o.error for o in failed]))
        await activate_next(c, [o.delivery_id for o in failed if o.fall_back], now)
    if disable := [o for o in outcomes if o.disable_contact]:
        await c.execute(
            "UPDATE contacts c SET disabled_at = $1, disabled_reason = u.reason FROM unnest($2::text[], $3::text[]) "
            "AS u(id, reason) JOIN deliveries d ON d.id = u.id "
            "WHERE c.subscriber_id = d.subscriber_id AND c.channel = d.channel",
            now, [o.delivery_id for o in disable], [o.error or "disabled by the endpoint" for o in disable])
    assert written == len(outcomes), "rows covered by the lease must all be written"  # noqa: S101 - invariant
    return [o.delivery_id for o in outcomes]


async def _write_sent(c: Conn, owner: str, done: list[Outcome], sent: list[Outcome], now: float) -> int:
    written = 0
    if done:
        written += rowcount(await c.execute(
            "UPDATE deliveries d SET status = 'delivered', attempts = d.attempts + 1, "
            "sent_at = COALESCE(d.sent_at, $1), delivered_at = $1, finished_at = $1, "
            "provider_message_id = COALESCE(u.pmid, d.provider_message_id), last_error = NULL, "
            f"{_RELEASE} FROM unnest($3::text[], $4::text[]) AS u(id, pmid) {_FENCE}",
            now, owner, [o.delivery_id for o in done], [o.provider_message_id for o in done]))
        await _mark_targets(c, [o.delivery_id for o in done], now, reached=True)
    if sent:
        written += rowcount(await c.execute(
            "UPDATE deliveries d SET status = 'sent', attempts = d.attempts + 1, sent_at = $1, "
            f"provider_message_id = u.pmid, last_error = NULL, {_RELEASE} "
            f"FROM unnest($3::text[], $4::text[]) AS u(id, pmid) {_FENCE}",
            now, owner, [o.delivery_id for o in sent], [o.provider_message_id for o in sent]))
        await _mark_targets(c, [o.delivery_id for o in sent], now, reached=False)
        await pg_receipts.apply_early_receipts(c, sent, now)
    return written


async def _write_later(c: Conn, owner: str, later: list[Outcome], now: float) -> int:
    """Retries and quiet-hours deferrals: back to the queue at their next attempt time."""
    if not later:
        return 0
    return rowcount(await c.execute(
        "UPDATE deliveries d SET status = u.status, attempts = d.attempts + u.tried, next_attempt_at = u.next_at, "
        f"last_error = COALESCE(u.error, d.last_error), {_RELEASE} FROM unnest($3::text[], $4::text[], "
        f"$5::integer[], $6::float8[], $7::text[]) AS u(id, status, tried, next_at, error) {_FENCE}",
        now, owner, [o.delivery_id for o in later], [o.status for o in later], [int(o.attempted) for o in later],
        [o.next_attempt_at for o in later], [o.error for o in later]))


async def _mark_targets(c: Conn, delivery_ids: list[str], now: float, *, reached: bool) -> None:
    reached_sql = "reached_at = COALESCE(t.reached_at, $1)," if reached else ""
    await c.execute(
        f"UPDATE alert_targets t SET {reached_sql} accepted_at = COALESCE(t.accepted_at, $1) FROM deliveries d "
        "WHERE d.id = ANY($2::text[]) AND t.alert_id = d.alert_id AND t.subscriber_id = d.subscriber_id",
        now, delivery_ids)


async def extend_lease(c: Conn, owner: str, until: float) -> int:
    """A worker still busy with its claim (rate-limited sends) keeps its rows: the heartbeat of a lease."""
    return rowcount(await c.execute(
        "UPDATE deliveries SET lease_until = $1 WHERE lease_owner = $2 AND status = 'sending'", until, owner))


async def sweep(c: Conn, now: float, max_attempts: int) -> dict[str, int]:
    """Housekeeping every worker runs: reclaim dead leases, release scheduled alerts, expire, fall back."""
    counts: dict[str, int] = {}
    # Rows a live worker is recording are locked by it: skip them rather than wait (their lease is being settled).
    counts["reclaimed"] = rowcount(await c.execute(
        "UPDATE deliveries SET status = CASE WHEN attempts + 1 >= $1 THEN 'failed' ELSE 'queued' END, "
        "finished_at = CASE WHEN attempts + 1 >= $1 THEN $2 ELSE NULL END, attempts = attempts + 1, "
        "lease_owner = NULL, lease_until = NULL, next_attempt_at = $2, updated_at = $2, "
        "last_error = 'lease expired: the worker stopped mid-send' WHERE id IN (SELECT id FROM deliveries "
        "WHERE status = 'sending' AND lease_until < $2 FOR UPDATE SKIP LOCKED)", max_attempts, now))
    await c.execute("UPDATE alerts SET status = 'active' WHERE status = 'scheduled' AND scheduled_at <= $1", now)
    counts["expired"] = rowcount(await c.execute(
        "UPDATE deliveries SET status = 'expired', finished_at = $1, updated_at = $1 "
        "WHERE status IN ('queued', 'deferred') AND alert_id IN (SELECT id FROM alerts "
        "WHERE status IN ('active', 'scheduled') AND expires_at IS NOT NULL AND expires_at <= $1)", now))
    await c.execute("UPDATE alerts SET status = 'expired' WHERE status IN ('active', 'scheduled') "
                    "AND expires_at IS NOT NULL AND expires_at <= $1", now)
    # A delivery accepted but unconfirmed for the alert's fallback window: try the next channel too.
    rows = await c.fetch(
        "SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "JOIN deliveries n ON n.alert_id = d.alert_id AND n.subscriber_id = d.subscriber_id "
        "AND n.position = d.position + 1 AND n.status = 'skipped' "
        "WHERE d.status = 'sent' AND a.policy = 'fallback' AND a.status = 'active' "
        "AND d.sent_at + a.fallback_after <= $1", now)
    await activate_next(c, [r[0] for r in rows], now)
    counts["fallback"] = len(rows)
    return counts


async def next_due(c: Conn) -> float | None:
    value = await c.fetchval("SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('queued', 'deferred')")
    return float(value) if value is not None else None


async def list_deliveries(c: Conn, alert_id: str, limit: int, after: str | None,
                          status: str | None, channel: str | None) -> tuple[list[DeliveryRow], int]:
    args = Args(alert_id)
    where = "d.alert_id = $1"
    if status:
        where += f" AND d.status = {args(status)}"
    if channel:
        where += f" AND d.channel = {args(channel)}"
    total = await c.fetchval(f"SELECT COUNT(*) FROM deliveries d WHERE {where}", *args.values)
    if after:
        where += f" AND d.id > {args(after)}"
    rows = await c.fetch(
        "SELECT d.*, c.address FROM deliveries d LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id "
        f"AND c.channel = d.channel WHERE {where} ORDER BY d.id LIMIT {args(limit)}", *args.values)
    return [DeliveryRow(
        id=r["id"], alert_id=r["alert_id"], subscriber_id=r["subscriber_id"], channel=r["channel"],
        address=r["address"], status=r["status"], attempts=r["attempts"], next_attempt_at=r["next_attempt_at"],
        provider_message_id=r["provider_message_id"], last_error=r["last_error"], created_at=r["created_at"],
        sent_at=r["sent_at"], delivered_at=r["delivered_at"], finished_at=r["finished_at"]) for r in rows], int(total)


async def coverage_rows(c: Conn, alert_id: str) -> CoverageRows:
    """Every figure of the coverage object, aggregated in SQL."""
    head = await c.fetchrow(
        "SELECT COUNT(*), COUNT(reached_at), COUNT(accepted_at) FROM alert_targets WHERE alert_id = $1", alert_id)
    targeted, reached, accepted = int(head[0]), int(head[1]), int(head[2])
    by_channel: dict[str, dict[str, int]] = {}
    for r in await c.fetch(f"SELECT channel, {_CHANNEL_COUNTS} FROM deliveries "
                           "WHERE alert_id = $1 GROUP BY channel ORDER BY channel", alert_id):
        by_channel[r[0]] = dict(zip(("attempted", "sent", "delivered", "failed", "pending", "awaiting_receipt",
                                     "skipped"), (int(v or 0) for v in r[1:]), strict=True))
    cells = [(r[0], r[1], int(r[2]), int(r[3])) for r in await c.fetch(
        "SELECT t.region, g.group_code, COUNT(*), COUNT(t.reached_at) FROM alert_targets t "
        "LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id AND g.subscriber_id = t.subscriber_id "
        "WHERE t.alert_id = $1 GROUP BY t.region, g.group_code ORDER BY t.region, g.group_code NULLS FIRST",
        alert_id)]
    by_region = {r[0]: (int(r[1]), int(r[2])) for r in await c.fetch(
        "SELECT region, COUNT(*), COUNT(reached_at) FROM alert_targets WHERE alert_id = $1 GROUP BY region",
        alert_id)}
    by_group = {r[0]: (int(r[1]), int(r[2])) for r in await c.fetch(
        "SELECT g.group_code, COUNT(*), COUNT(t.reached_at) FROM alert_target_groups g JOIN alert_targets t "
        "ON t.alert_id = g.alert_id AND t.subscriber_id = g.subscriber_id WHERE g.alert_id = $1 "
        "GROUP BY g.group_code", alert_id)}
    return CoverageRows(targeted=targeted, reached=reached, accepted=accepted, by_channel=by_channel, cells=cells,
                        by_region=by_region, by_group=by_group,
                        reach_times=await _reach_quantiles(c, alert_id, targeted, reached),
                        unreachable=await _unreachable(c, alert_id))


async def _reach_quantiles(c: Conn, alert_id: str, targeted: int, reached: int) -> list[float | None]:
    """Seconds from release until 50/90/99 % of the targeted were reached (None until that many are)."""
    out: list[float | None] = []
    for q in (0.5, 0.9, 0.99):
        k = max(1, math.ceil(q * targeted))
        if targeted == 0 or reached < k:
            out.append(None)
            continue
        value = await c.fetchval(
            "SELECT t.reached_at - GREATEST(a.created_at, COALESCE(a.scheduled_at, 0)) FROM alert_targets t "
            "JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = $1 AND t.reached_at IS NOT NULL "
            "ORDER BY t.reached_at LIMIT 1 OFFSET $2", alert_id, k - 1)
        out.append(max(0.0, float(value)) if value is not None else None)
    return out


async def _unreachable(c: Conn, alert_id: str) -> dict[str, int]:
    rows = await c.fetch(
        "SELECT CASE WHEN n = 0 THEN 'no_contact' WHEN pend > 0 THEN 'pending' WHEN expd > 0 THEN 'expired' "
        "WHEN canc > 0 THEN 'cancelled' ELSE 'all_failed' END AS cause, COUNT(*) FROM ("
        "  SELECT t.subscriber_id, COUNT(d.id) AS n, "
        f"   {_count(PENDING_OR_UNCONFIRMED)} AS pend, {_count(IS_EXPIRED)} AS expd, {_count(IS_CANCELLED)} AS canc "
        "  FROM alert_targets t LEFT JOIN deliveries d ON d.alert_id = t.alert_id "
        "       AND d.subscriber_id = t.subscriber_id AND d.status <> 'skipped' "
        "  WHERE t.alert_id = $1 AND t.reached_at IS NULL GROUP BY t.subscriber_id) x GROUP BY cause", alert_id)
    return {r[0]: int(r[1]) for r in rows}


async def queue_stats(c: Conn) -> dict[str, int]:
    rows = await c.fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
    return {r[0]: int(r[1]) for r in rows}


async def take_tokens(c: Conn, name: str, rate: float, capacity: float, tokens: float, now: float) -> float:
    """Reserve `tokens` from the shared bucket `name`; returns how long the caller must wait before using them.
    One upsert: the conflicting row is locked, so concurrent takers on any host queue behind each other."""
    level: Any = await c.fetchval(
        "INSERT INTO rate_buckets AS b (name, tokens, updated_at) VALUES ($1, $2::float8 - $3::float8, $4) "
        "ON CONFLICT (name) DO UPDATE SET tokens = LEAST($2::float8, b.tokens + GREATEST(0, $4 - b.updated_at) "
        "* $5::float8) - $3::float8, updated_at = $4 RETURNING tokens", name, capacity, tokens, now, rate)
    return max(0.0, -float(level) / rate)
