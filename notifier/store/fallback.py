"""Fallback activation, the one rule shared by result recording, sweeps and receipts: when a subscriber's current
channel failed (or stayed silent past the alert's `fallback_after`), their next channel — the `skipped` delivery one
position down — is queued now, where the alert's policy is `fallback` and the alert is still live."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.states import DeliveryStatus
from notifier.store.db import Db, as_list
from notifier.store.states import LIVE_ALERT, is_


async def activate_next(db: Db, delivery_ids: Sequence[str], now: float) -> int:
    """Queue the next channel of each given delivery's subscriber; returns how many were queued."""
    if not delivery_ids:
        return 0
    return await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.QUEUED}', next_attempt_at = ?, updated_at = ? WHERE id IN ("
        "SELECT n.id FROM deliveries d JOIN deliveries n ON n.alert_id = d.alert_id "
        "AND n.subscriber_id = d.subscriber_id AND n.position = d.position + 1 "
        f"JOIN alerts a ON a.id = d.alert_id WHERE d.id IN {db.dialect.each()} AND {is_(DeliveryStatus.SKIPPED, 'n.')} "
        f"AND a.policy = 'fallback' AND a.status IN {LIVE_ALERT})", now, now, as_list(delivery_ids))


async def activate_silent(db: Db, now: float) -> int:
    """A delivery accepted but unconfirmed for its alert's fallback window: try the subscriber's next channel too
    (the accepted one may still confirm; whichever reaches first counts)."""
    rows = await db.fetch(
        "SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "JOIN deliveries n ON n.alert_id = d.alert_id AND n.subscriber_id = d.subscriber_id "
        f"AND n.position = d.position + 1 AND {is_(DeliveryStatus.SKIPPED, 'n.')} "
        f"WHERE {is_(DeliveryStatus.SENT, 'd.')} AND a.policy = 'fallback' AND a.status IN {LIVE_ALERT} "
        "AND d.sent_at + a.fallback_after <= ?", now)
    return await activate_next(db, [r[0] for r in rows], now)
