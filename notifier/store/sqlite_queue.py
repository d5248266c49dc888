"""The delivery queue and coverage SQL for SQLite: fan-out at publish, lease-based claims, batched result writes,
sweeps (lease reclaim, expiry, fallback windows) and coverage aggregates.

Every statement is plain SQL that PostgreSQL also accepts except the random id expression; claims are fenced by
`lease_owner` (a fresh token per claim), so a worker whose lease was reclaimed cannot overwrite its successor.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import aiosqlite

from notifier.store import sqlite_receipts
from notifier.store.records import ClaimedDelivery, CoverageRows, DeliveryRow, Outcome, Targeting
from notifier.store.sqlite_fallback import activate_next

NEW_ID = "lower(hex(randomblob(16)))"
PENDING = "('queued', 'deferred', 'sending')"
FINAL_FAILED = "('failed', 'expired', 'cancelled')"


def _marks(n: int) -> str:
    return ",".join("?" * n)


async def fan_out(db: aiosqlite.Connection, alert_id: str, t: Targeting, now: float) -> int:
    """Freeze the target set and create the delivery rows; returns how many subscribers are targeted."""
    if t.from_alert is not None:
        accepted = "AND r.accepted_at IS NOT NULL" if t.only_accepted else ""
        await db.execute(
            "INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT ?, r.subscriber_id, s.region "
            f"FROM alert_targets r JOIN subscribers s ON s.id = r.subscriber_id WHERE r.alert_id = ? {accepted}",
            (alert_id, t.from_alert))
    else:
        params: list[Any] = [alert_id, t.topic, t.min_severity_rank]
        where = ""
        if t.regions:
            where += f" AND s.region IN ({_marks(len(t.regions))})"
            params += t.regions
        if t.groups:
            where += (" AND EXISTS (SELECT 1 FROM subscriber_groups g WHERE g.subscriber_id = s.id "
                      f"AND g.group_code IN ({_marks(len(t.groups))}))")
            params += t.groups
        await db.execute(
            "INSERT INTO alert_targets (alert_id, subscriber_id, region) SELECT ?, s.id, s.region "
            "FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id "
            f"WHERE sub.topic = ? AND sub.min_severity <= ? AND s.status = 'active'{where}", params)
    await db.execute(
        "INSERT INTO alert_target_groups (alert_id, subscriber_id, group_code) "
        "SELECT t.alert_id, t.subscriber_id, g.group_code FROM alert_targets t "
        "JOIN subscriber_groups g ON g.subscriber_id = t.subscriber_id WHERE t.alert_id = ?", (alert_id,))
    # One row per usable channel, ranked by the subscriber's preference; under `fallback` only the first is
    # queued and the rest wait as `skipped` until a failure (or a missing receipt) activates the next.
    await db.execute(
        "INSERT INTO deliveries (id, alert_id, subscriber_id, channel, position, status, priority, attempts, "
        f"next_attempt_at, created_at, updated_at) SELECT {NEW_ID}, alert_id, subscriber_id, channel, rank, "
        "CASE WHEN ? = 'all' OR rank = 1 THEN 'queued' ELSE 'skipped' END, ?, 0, ?, ?, ? FROM ("
        "  SELECT t.alert_id, t.subscriber_id, sc.channel, "
        "         ROW_NUMBER() OVER (PARTITION BY t.subscriber_id ORDER BY sc.position) AS rank "
        "  FROM alert_targets t "
        "  JOIN subscription_channels sc ON sc.subscriber_id = t.subscriber_id AND sc.topic = ? "
        "  JOIN contacts c ON c.subscriber_id = t.subscriber_id AND c.channel = sc.channel "
        "       AND c.verified_at IS NOT NULL AND c.disabled_at IS NULL "
        "  WHERE t.alert_id = ?) ranked",
        (t.policy, t.priority, t.first_attempt_at, now, now, t.topic, alert_id))
    rows = list(await db.execute_fetchall("SELECT COUNT(*) FROM alert_targets WHERE alert_id = ?", (alert_id,)))
    return int(rows[0][0])


async def claim(db: aiosqlite.Connection, owner: str, now: float, lease_until: float,
                limit: int) -> list[ClaimedDelivery]:
    """Lease up to `limit` due deliveries, most urgent first."""
    rows = list(await db.execute_fetchall(
        "UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_until = ?, updated_at = ? "
        "WHERE id IN (SELECT id FROM deliveries WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ? "
        "ORDER BY priority DESC, next_attempt_at LIMIT ?) RETURNING id", (owner, lease_until, now, now, limit)))
    if not rows:
        return []
    ids = [r[0] for r in rows]
    details = await db.execute_fetchall(
        "SELECT d.id, d.alert_id, d.subscriber_id, d.channel, d.position, d.attempts, d.created_at, "
        "c.address, c.secret, c.disabled_at, s.locale, s.quiet_start, s.quiet_end FROM deliveries d "
        "LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id AND c.channel = d.channel "
        f"LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id IN ({_marks(len(ids))})", ids)
    return [ClaimedDelivery(
        id=r["id"], alert_id=r["alert_id"], subscriber_id=r["subscriber_id"], channel=r["channel"],
        position=r["position"], attempts=r["attempts"],
        address=r["address"] if r["disabled_at"] is None else None, secret=r["secret"],
        locale=r["locale"] or "zh-CN", quiet_start=r["quiet_start"], quiet_end=r["quiet_end"],
        created_at=r["created_at"]) for r in details]


_FENCE = "WHERE id = ? AND lease_owner = ? AND status = 'sending'"
_RELEASE = "lease_owner = NULL, lease_until = NULL, updated_at = ?"


async def record(db: aiosqlite.Connection, owner: str, outcomes: list[Outcome], now: float) -> list[str]:
    """Write a batch of send results in one transaction; returns the ids the lease still covered.

    Outcomes for rows whose lease was reclaimed are dropped whole — the delivery row and everything that follows
    from it (reached marks, fallback activation, contact disabling) — so a worker that was presumed dead cannot
    overwrite its successor's result."""
    held = {r[0] for r in await db.execute_fetchall(
        "SELECT id FROM deliveries WHERE status = 'sending' AND lease_owner = ?", (owner,))}
    outcomes = [o for o in outcomes if o.delivery_id in held]
    by_status: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_status[o.status].append(o)
    written = 0
    if done := by_status["delivered"]:
        cur = await db.executemany(
            f"UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, sent_at = COALESCE(sent_at, ?), "
            f"delivered_at = ?, finished_at = ?, provider_message_id = COALESCE(?, provider_message_id), "
            f"last_error = NULL, {_RELEASE} {_FENCE}",
            [(now, now, now, o.provider_message_id, now, o.delivery_id, owner) for o in done])
        written += cur.rowcount
        await _mark_targets(db, [o.delivery_id for o in done], now, reached=True)
    if sent := by_status["sent"]:
        cur = await db.executemany(
            f"UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?, "
            f"provider_message_id = ?, last_error = NULL, {_RELEASE} {_FENCE}",
            [(now, o.provider_message_id, now, o.delivery_id, owner) for o in sent])
        written += cur.rowcount
        await _mark_targets(db, [o.delivery_id for o in sent], now, reached=False)
        await sqlite_receipts.apply_early_receipts(db, sent, now)
    for status in ("queued", "deferred"):
        if later := by_status[status]:
            cur = await db.executemany(
                f"UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, "
                f"last_error = COALESCE(?, last_error), {_RELEASE} {_FENCE}",
                [(status, int(o.attempted), o.next_attempt_at, o.error, now, o.delivery_id, owner) for o in later])
            written += cur.rowcount
    if failed := by_status["failed"]:
        cur = await db.executemany(
            f"UPDATE deliveries SET status = 'failed', attempts = attempts + ?, finished_at = ?, last_error = ?, "
            f"{_RELEASE} {_FENCE}",
            [(int(o.attempted), now, o.error, now, o.delivery_id, owner) for o in failed])
        written += cur.rowcount
        await activate_next(db, [o.delivery_id for o in failed if o.fall_back], now)
    if disable := [o for o in outcomes if o.disable_contact]:
        await db.executemany(
            "UPDATE contacts SET disabled_at = ?, disabled_reason = ? WHERE (subscriber_id, channel) = "
            "(SELECT subscriber_id, channel FROM deliveries WHERE id = ?)",
            [(now, o.error or "disabled by the endpoint", o.delivery_id) for o in disable])
    assert written == len(outcomes), "rows covered by the lease must all be written"  # noqa: S101 - invariant
    return [o.delivery_id for o in outcomes]


async def _mark_targets(db: aiosqlite.Connection, delivery_ids: list[str], now: float, *, reached: bool) -> None:
    reached_sql = "reached_at = COALESCE(reached_at, ?)," if reached else ""
    params = [((now, now) if reached else (now,)) + (d,) for d in delivery_ids]
    await db.executemany(
        f"UPDATE alert_targets SET {reached_sql} accepted_at = COALESCE(accepted_at, ?) "
        "WHERE (alert_id, subscriber_id) = (SELECT alert_id, subscriber_id FROM deliveries WHERE id = ?)", params)


async def extend_lease(db: aiosqlite.Connection, owner: str, until: float) -> int:
    """A worker still busy with its claim (rate-limited sends) keeps its rows: the heartbeat of a lease."""
    cur = await db.execute("UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? AND status = 'sending'",
                           (until, owner))
    return cur.rowcount


async def sweep(db: aiosqlite.Connection, now: float, max_attempts: int) -> dict[str, int]:
    """Housekeeping every worker runs: reclaim dead leases, release scheduled alerts, expire, fall back."""
    counts: dict[str, int] = {}
    # A row whose worker died mid-send is sent again, unless it has now used all its attempts (a message that
    # kills its worker every time must not loop forever).
    cur = await db.execute(
        "UPDATE deliveries SET status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'queued' END, "
        "finished_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE NULL END, attempts = attempts + 1, "
        "lease_owner = NULL, lease_until = NULL, next_attempt_at = ?, updated_at = ?, "
        "last_error = 'lease expired: the worker stopped mid-send' WHERE status = 'sending' AND lease_until < ?",
        (max_attempts, max_attempts, now, now, now, now))
    counts["reclaimed"] = cur.rowcount
    await db.execute("UPDATE alerts SET status = 'active' WHERE status = 'scheduled' AND scheduled_at <= ?", (now,))
    cur = await db.execute(
        "UPDATE deliveries SET status = 'expired', finished_at = ?, updated_at = ? "
        "WHERE status IN ('queued', 'deferred') AND alert_id IN (SELECT id FROM alerts "
        "WHERE status IN ('active', 'scheduled') AND expires_at IS NOT NULL AND expires_at <= ?)", (now, now, now))
    counts["expired"] = cur.rowcount
    await db.execute("UPDATE alerts SET status = 'expired' WHERE status IN ('active', 'scheduled') "
                     "AND expires_at IS NOT NULL AND expires_at <= ?", (now,))
    # A delivery accepted but unconfirmed for the alert's fallback window: try the next channel too.
    rows = list(await db.execute_fetchall(
        "SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "JOIN deliveries n ON n.alert_id = d.alert_id AND n.subscriber_id = d.subscriber_id "
        "AND n.position = d.position + 1 AND n.status = 'skipped' "
        "WHERE d.status = 'sent' AND a.policy = 'fallback' AND a.status = 'active' "
        "AND d.sent_at + a.fallback_after <= ?", (now,)))
    await activate_next(db, [r[0] for r in rows], now)
    counts["fallback"] = len(rows)
    return counts


async def next_due(db: aiosqlite.Connection) -> float | None:
    rows = list(await db.execute_fetchall(
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('queued', 'deferred')"))
    value = rows[0][0]
    return float(value) if value is not None else None


async def list_deliveries(db: aiosqlite.Connection, alert_id: str, limit: int, after: str | None,
                          status: str | None, channel: str | None) -> tuple[list[DeliveryRow], int]:
    where, params = "d.alert_id = ?", [alert_id]
    if status:
        where += " AND d.status = ?"
        params.append(status)
    if channel:
        where += " AND d.channel = ?"
        params.append(channel)
    total = next(iter(await db.execute_fetchall(f"SELECT COUNT(*) FROM deliveries d WHERE {where}", params)))[0]
    page_where, page_params = where, list(params)
    if after:
        page_where += " AND d.id > ?"
        page_params.append(after)
    rows = await db.execute_fetchall(
        "SELECT d.*, c.address FROM deliveries d LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id "
        f"AND c.channel = d.channel WHERE {page_where} ORDER BY d.id LIMIT ?", (*page_params, limit))
    return [DeliveryRow(
        id=r["id"], alert_id=r["alert_id"], subscriber_id=r["subscriber_id"], channel=r["channel"],
        address=r["address"], status=r["status"], attempts=r["attempts"], next_attempt_at=r["next_attempt_at"],
        provider_message_id=r["provider_message_id"], last_error=r["last_error"], created_at=r["created_at"],
        sent_at=r["sent_at"], delivered_at=r["delivered_at"], finished_at=r["finished_at"]) for r in rows], int(total)


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


PENDING_OR_UNCONFIRMED = "d.status IN ('queued', 'deferred', 'sending', 'sent')"
IS_EXPIRED = "d.status = 'expired'"
IS_CANCELLED = "d.status = 'cancelled'"
_CHANNEL_COUNTS = ", ".join(_count(c) for c in (
    "attempts > 0", "sent_at IS NOT NULL", "status = 'delivered'", f"status IN {FINAL_FAILED}",
    f"status IN {PENDING}", "status = 'sent'", "status = 'skipped'"))


async def coverage_rows(db: aiosqlite.Connection, alert_id: str) -> CoverageRows:
    """Every figure of the coverage object, aggregated in SQL."""
    head = next(iter(await db.execute_fetchall(
        "SELECT COUNT(*), COUNT(reached_at), COUNT(accepted_at) FROM alert_targets WHERE alert_id = ?",
        (alert_id,))))
    targeted, reached, accepted = int(head[0]), int(head[1]), int(head[2])
    by_channel: dict[str, dict[str, int]] = {}
    for r in await db.execute_fetchall(f"SELECT channel, {_CHANNEL_COUNTS} FROM deliveries "
                                       "WHERE alert_id = ? GROUP BY channel ORDER BY channel", (alert_id,)):
        by_channel[r[0]] = dict(zip(("attempted", "sent", "delivered", "failed", "pending", "awaiting_receipt",
                                     "skipped"), (int(v or 0) for v in r[1:]), strict=True))
    cells = [(r[0], r[1], int(r[2]), int(r[3])) for r in await db.execute_fetchall(
        "SELECT t.region, g.group_code, COUNT(*), COUNT(t.reached_at) FROM alert_targets t "
        "LEFT JOIN alert_target_groups g ON g.alert_id = t.alert_id AND g.subscriber_id = t.subscriber_id "
        "WHERE t.alert_id = ? GROUP BY t.region, g.group_code ORDER BY t.region, g.group_code", (alert_id,))]
    by_region = {r[0]: (int(r[1]), int(r[2])) for r in await db.execute_fetchall(
        "SELECT region, COUNT(*), COUNT(reached_at) FROM alert_targets WHERE alert_id = ? GROUP BY region",
        (alert_id,))}
    by_group = {r[0]: (int(r[1]), int(r[2])) for r in await db.execute_fetchall(
        "SELECT g.group_code, COUNT(*), COUNT(t.reached_at) FROM alert_target_groups g JOIN alert_targets t "
        "ON t.alert_id = g.alert_id AND t.subscriber_id = g.subscriber_id WHERE g.alert_id = ? "
        "GROUP BY g.group_code", (alert_id,))}
    return CoverageRows(targeted=targeted, reached=reached, accepted=accepted, by_channel=by_channel, cells=cells,
                        by_region=by_region, by_group=by_group,
                        reach_times=await _reach_quantiles(db, alert_id, targeted, reached),
                        unreachable=await _unreachable(db, alert_id))


async def _reach_quantiles(db: aiosqlite.Connection, alert_id: str, targeted: int, reached: int) -> list[float | None]:
    """Seconds from release until 50/90/99 % of the targeted were reached (None until that many are)."""
    out: list[float | None] = []
    for q in (0.5, 0.9, 0.99):
        k = max(1, math.ceil(q * targeted))
        if targeted == 0 or reached < k:
            out.append(None)
            continue
        rows = list(await db.execute_fetchall(
            "SELECT t.reached_at - MAX(a.created_at, COALESCE(a.scheduled_at, 0)) FROM alert_targets t "
            "JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = ? AND t.reached_at IS NOT NULL "
            "ORDER BY t.reached_at LIMIT 1 OFFSET ?", (alert_id, k - 1)))
        out.append(max(0.0, float(rows[0][0])) if rows else None)
    return out


async def _unreachable(db: aiosqlite.Connection, alert_id: str) -> dict[str, int]:
    rows = await db.execute_fetchall(
        "SELECT CASE WHEN n = 0 THEN 'no_contact' WHEN pend > 0 THEN 'pending' WHEN expd > 0 THEN 'expired' "
        "WHEN canc > 0 THEN 'cancelled' ELSE 'all_failed' END AS cause, COUNT(*) FROM ("
        "  SELECT t.subscriber_id, COUNT(d.id) AS n, "
        f"   {_count(PENDING_OR_UNCONFIRMED)} AS pend, {_count(IS_EXPIRED)} AS expd, {_count(IS_CANCELLED)} AS canc "
        "  FROM alert_targets t LEFT JOIN deliveries d ON d.alert_id = t.alert_id "
        "       AND d.subscriber_id = t.subscriber_id AND d.status <> 'skipped' "
        "  WHERE t.alert_id = ? AND t.reached_at IS NULL GROUP BY t.subscriber_id) x GROUP BY cause", (alert_id,))
    return {r[0]: int(r[1]) for r in rows}


async def queue_stats(db: aiosqlite.Connection) -> dict[str, int]:
    rows = await db.execute_fetchall("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
    return {r[0]: int(r[1]) for r in rows}


async def take_tokens(db: aiosqlite.Connection, name: str, rate: float, capacity: float, tokens: float,
                      now: float) -> float:
    """Reserve `tokens` from the shared bucket `name`; returns how long the caller must wait before using them."""
    rows = list(await db.execute_fetchall("SELECT tokens, updated_at FROM rate_buckets WHERE name = ?", (name,)))
    level = capacity if not rows else min(capacity, rows[0][0] + max(0.0, now - rows[0][1]) * rate)
    level -= tokens  # below zero is debt: this caller waits it off, the next one queues behind it
    await db.execute("INSERT INTO rate_buckets (name, tokens, updated_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
                     (name, level, now))
    return max(0.0, -level / rate)

