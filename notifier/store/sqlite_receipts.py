"""Receipts and opt-outs for SQLite: a provider's report turns a `sent` delivery into `delivered` or `failed`
(with fallback), repeats are dropped by their key, reports for unknown messages are kept and ignored."""

from __future__ import annotations

import aiosqlite

from channels.base import Receipt
from notifier.store.sqlite_queue import activate_next


async def _find(db: aiosqlite.Connection, channel: str, r: Receipt) -> tuple[str, str] | None:
    if r.address is not None:  # the provider id names a whole batch (Aliyun BizId): the number picks the row
        rows = list(await db.execute_fetchall(
            "SELECT d.id, d.status FROM deliveries d JOIN contacts c ON c.subscriber_id = d.subscriber_id "
            "AND c.channel = d.channel WHERE d.channel = ? AND d.provider_message_id = ? AND c.address = ?",
            (channel, r.provider_message_id, r.address)))
    else:
        rows = list(await db.execute_fetchall(
            "SELECT id, status FROM deliveries WHERE channel = ? AND provider_message_id = ?",
            (channel, r.provider_message_id)))
    return (rows[0][0], rows[0][1]) if len(rows) == 1 else None


async def apply_receipts(db: aiosqlite.Connection, channel: str, receipts: list[Receipt], now: float) -> dict[str, int]:
    """Apply provider reports in one transaction; returns counts by outcome."""
    counts = {"applied": 0, "duplicate": 0, "unknown": 0, "stale": 0}
    for r in receipts:
        cursor = await db.execute(
            "INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, error, outcome, received_at) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (channel, receipt_key) DO NOTHING",
            (channel, r.key, r.provider_message_id, int(r.delivered), r.error, now))
        if cursor.rowcount == 0:
            counts["duplicate"] += 1
            continue
        found = await _find(db, channel, r)
        outcome = "unknown" if found is None else ("applied" if found[1] == "sent" else "stale")
        if found is not None and outcome == "applied":
            await _settle(db, found[0], r, now)
        await db.execute("UPDATE receipts SET outcome = ?, delivery_id = ? WHERE channel = ? AND receipt_key = ?",
                         (outcome, found[0] if found else None, channel, r.key))
        counts[outcome] += 1
    return counts


async def _settle(db: aiosqlite.Connection, delivery_id: str, r: Receipt, now: float) -> None:
    when = min(r.occurred_at, now) if r.occurred_at else now
    if r.delivered:
        await db.execute("UPDATE deliveries SET status = 'delivered', delivered_at = ?, finished_at = ?, "
                         "updated_at = ? WHERE id = ? AND status = 'sent'", (when, now, now, delivery_id))
        await db.execute(
            "UPDATE alert_targets SET reached_at = COALESCE(reached_at, ?) WHERE (alert_id, subscriber_id) = "
            "(SELECT alert_id, subscriber_id FROM deliveries WHERE id = ?)", (when, delivery_id))
    else:
        await db.execute("UPDATE deliveries SET status = 'failed', finished_at = ?, updated_at = ?, last_error = ? "
                         "WHERE id = ? AND status = 'sent'",
                         (now, now, f"receipt: {r.error or 'failed'}", delivery_id))
        await activate_next(db, [delivery_id], now)


async def disable_contacts(db: aiosqlite.Connection, channel: str, address: str, reason: str, now: float) -> int:
    """Stop using an address on a channel (WeChat unfollow, SMS 退订); returns how many subscribers it touched."""
    cursor = await db.execute(
        "UPDATE contacts SET disabled_at = ?, disabled_reason = ? WHERE channel = ? AND address = ? "
        "AND disabled_at IS NULL", (now, reason, channel, address))
    return cursor.rowcount
