"""Receipts and opt-outs for PostgreSQL: a provider's report turns a `sent` delivery into `delivered` or `failed`
(with fallback), repeats are dropped by their key, reports for unknown messages are kept and ignored. The same
statements as `sqlite_receipts`."""

from __future__ import annotations

from channels.base import Receipt, receipt_match_key
from notifier.store.pg_base import Conn, rowcount
from notifier.store.pg_fallback import activate_next
from notifier.store.records import Outcome


async def _find(c: Conn, channel: str, r: Receipt) -> list[tuple[str, str]]:
    """(id, status) of the deliveries a report speaks of (several when one number is shared in one batch)."""
    if r.address is not None:  # the provider id names a whole batch (Aliyun BizId): the number picks the row
        rows = await c.fetch(
            "SELECT d.id, d.status FROM deliveries d JOIN contacts c ON c.subscriber_id = d.subscriber_id "
            "AND c.channel = d.channel WHERE d.channel = $1 AND d.provider_message_id = $2 AND c.address = $3",
            channel, r.provider_message_id, r.address)
    else:
        rows = await c.fetch("SELECT id, status FROM deliveries WHERE channel = $1 AND provider_message_id = $2",
                             channel, r.provider_message_id)
    return [(row[0], row[1]) for row in rows]


async def apply_receipts(c: Conn, channel: str, receipts: list[Receipt], now: float) -> dict[str, int]:
    """Apply provider reports in one transaction; returns counts by outcome."""
    counts = {"applied": 0, "duplicate": 0, "unknown": 0, "stale": 0}
    for r in receipts:
        match = receipt_match_key(r.provider_message_id, r.address) if r.address else None
        status = await c.execute(
            "INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, error, match_key, outcome, "
            "received_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) ON CONFLICT (channel, receipt_key) "
            "DO NOTHING", channel, r.key, r.provider_message_id, int(r.delivered), r.error, match, now)
        if rowcount(status) == 0:
            counts["duplicate"] += 1
            continue
        found = await _find(c, channel, r)
        waiting = [delivery_id for delivery_id, state in found if state == "sent"]
        outcome = "unknown" if not found else ("applied" if waiting else "stale")
        for delivery_id in waiting:
            await _settle(c, delivery_id, r, now)
        named = waiting[0] if waiting else (found[0][0] if found else None)
        await c.execute("UPDATE receipts SET outcome = $1, delivery_id = $2 WHERE channel = $3 AND receipt_key = $4",
                        outcome, named, channel, r.key)
        counts[outcome] += 1
    return counts


async def apply_early_receipts(c: Conn, sent: list[Outcome], now: float) -> int:
    """Reports that arrived before their send was recorded were kept as unknown; apply them now."""
    applied = 0
    ids = [o.provider_message_id for o in sent if o.provider_message_id is not None]
    # One indexed query for the whole batch: the usual case, no early report at all, stops here.
    named = {r[0] for r in await c.fetch("SELECT DISTINCT provider_message_id FROM receipts "
                                         "WHERE outcome = 'unknown' AND provider_message_id = ANY($1::text[])", ids)}
    for o in sent:
        if o.provider_message_id is None or o.provider_message_id not in named:
            continue
        rows = await c.fetch(
            "SELECT r.channel, r.receipt_key, r.delivered, r.error, r.received_at FROM receipts r "
            "JOIN deliveries d ON d.id = $1 AND d.channel = r.channel WHERE r.outcome = 'unknown' "
            "AND r.provider_message_id = $2 AND (r.match_key IS NULL OR r.match_key = $3::text) "
            "ORDER BY r.received_at LIMIT 1", o.delivery_id, o.provider_message_id, o.match_key)
        for channel, key, delivered, error, received_at in rows:
            receipt = Receipt(provider_message_id=o.provider_message_id, delivered=bool(delivered), key=key,
                              error=error, occurred_at=received_at)
            await _settle(c, o.delivery_id, receipt, now)
            await c.execute("UPDATE receipts SET outcome = 'applied', delivery_id = $1 "
                            "WHERE channel = $2 AND receipt_key = $3", o.delivery_id, channel, key)
            applied += 1
    return applied


async def _settle(c: Conn, delivery_id: str, r: Receipt, now: float) -> None:
    when = min(r.occurred_at, now) if r.occurred_at else now
    if r.delivered:
        await c.execute("UPDATE deliveries SET status = 'delivered', delivered_at = $1, finished_at = $2, "
                        "updated_at = $2 WHERE id = $3 AND status = 'sent'", when, now, delivery_id)
        await c.execute(
            "UPDATE alert_targets t SET reached_at = COALESCE(t.reached_at, $1) FROM deliveries d "
            "WHERE d.id = $2 AND t.alert_id = d.alert_id AND t.subscriber_id = d.subscriber_id", when, delivery_id)
    else:
        await c.execute("UPDATE deliveries SET status = 'failed', finished_at = $1, updated_at = $1, "
                        "last_error = $2 WHERE id = $3 AND status = 'sent'",
                        now, f"receipt: {r.error or 'failed'}", delivery_id)
        await activate_next(c, [delivery_id], now)


async def disable_contacts(c: Conn, channel: str, address: str, reason: str, now: float) -> int:
    """Stop using an address on a channel (WeChat unfollow, SMS 退订); returns how many subscribers it touched."""
    return rowcount(await c.execute(
        "UPDATE contacts SET disabled_at = $1, disabled_reason = $2 WHERE channel = $3 AND address = $4 "
        "AND disabled_at IS NULL", now, reason, channel, address))
