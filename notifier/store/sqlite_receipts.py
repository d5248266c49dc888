"""Receipts and opt-outs for SQLite: a provider's report turns a `sent` delivery into `delivered` or `failed`
(with fallback), repeats are dropped by their key, reports for unknown messages are kept and ignored."""

from __future__ import annotations

import aiosqlite

from channels.base import Receipt, receipt_match_key
from notifier.store.records import Outcome
from notifier.store.sqlite_fallback import activate_next


async def _find(db: aiosqlite.Connection, channel: str, r: Receipt) -> list[tuple[str, str]]:
    """(id, status) of the deliveries a report speaks of: one, or several when one number is the contact of
    several subscribers in the same batch (a family sharing a phone) — the report is true for each of them."""
    if r.address is not None:  # the provider id names a whole batch (Aliyun BizId): the number picks the row
        rows = await db.execute_fetchall(
            "SELECT d.id, d.status FROM deliveries d JOIN contacts c ON c.subscriber_id = d.subscriber_id "
            "AND c.channel = d.channel WHERE d.channel = ? AND d.provider_message_id = ? AND c.address = ?",
            (channel, r.provider_message_id, r.address))
    else:
        rows = await db.execute_fetchall(
            "SELECT id, status FROM deliveries WHERE channel = ? AND provider_message_id = ?",
            (channel, r.provider_message_id))
    return [(row[0], row[1]) for row in rows]


async def apply_receipts(db: aiosqlite.Connection, channel: str, receipts: list[Receipt], now: float) -> dict[str, int]:
    """Apply provider reports in one transaction; returns counts by outcome."""
    counts = {"applied": 0, "duplicate": 0, "unknown": 0, "stale": 0}
    for r in receipts:
        match = receipt_match_key(r.provider_message_id, r.address) if r.address else None
        cursor = await db.execute(
            "INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, error, match_key, outcome, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (channel, receipt_key) DO NOTHING",
            (channel, r.key, r.provider_message_id, int(r.delivered), r.error, match, now))
        if cursor.rowcount == 0:
            counts["duplicate"] += 1
            continue
        found = await _find(db, channel, r)
        waiting = [delivery_id for delivery_id, status in found if status == "sent"]
        outcome = "unknown" if not found else ("applied" if waiting else "stale")
        for delivery_id in waiting:
            await _settle(db, delivery_id, r, now)
        named = waiting[0] if waiting else (found[0][0] if found else None)
        await db.execute("UPDATE receipts SET outcome = ?, delivery_id = ? WHERE channel = ? AND receipt_key = ?",
                         (outcome, named, channel, r.key))
        counts[outcome] += 1
    return counts


async def _with_early_reports(db: aiosqlite.Connection, sent: list[Outcome]) -> list[tuple[Outcome, str]]:
    """The outcomes some unmatched report names: one indexed query per 500 sends, so that the usual case (no early
    report at all) costs the hot path one query per batch instead of one per delivery."""
    by_id = {o.provider_message_id: o for o in sent if o.provider_message_id is not None}
    ids = list(by_id)
    named: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        rows = await db.execute_fetchall(
            f"SELECT DISTINCT provider_message_id FROM receipts WHERE outcome = 'unknown' "
            f"AND provider_message_id IN ({','.join('?' * len(part))})", part)
        named.update(r[0] for r in rows)
    return [(o, o.provider_message_id) for o in sent if o.provider_message_id in named]


async def apply_early_receipts(db: aiosqlite.Connection, sent: list[Outcome], now: float) -> int:
    """Reports that arrived before their send was recorded (a fast provider, a large batch still being sent)
    were kept as unknown; now that the provider ids are stored, apply them. Returns how many were applied."""
    applied = 0
    for o, provider_message_id in await _with_early_reports(db, sent):
        rows = list(await db.execute_fetchall(
            "SELECT r.channel, r.receipt_key, r.delivered, r.error, r.received_at FROM receipts r "
            "JOIN deliveries d ON d.id = ? AND d.channel = r.channel WHERE r.outcome = 'unknown' "
            "AND r.provider_message_id = ? AND (r.match_key IS NULL OR r.match_key = ?) ORDER BY r.received_at",
            (o.delivery_id, provider_message_id, o.match_key)))
        for channel, key, delivered, error, received_at in rows[:1]:
            receipt = Receipt(provider_message_id=provider_message_id, delivered=bool(delivered), key=key,
                              error=error, occurred_at=received_at)
            await _settle(db, o.delivery_id, receipt, now)
            await db.execute("UPDATE receipts SET outcome = 'applied', delivery_id = ? "
                             "WHERE channel = ? AND receipt_key = ?", (o.delivery_id, channel, key))
            applied += 1
    return applied


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
