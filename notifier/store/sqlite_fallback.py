"""Fallback activation, shared by result recording, sweeps and receipts: the next channel of a subscriber whose
current one failed (or stayed silent) is queued, where the alert's policy is `fallback` and it is still live."""

from __future__ import annotations

import aiosqlite


async def activate_next(db: aiosqlite.Connection, delivery_ids: list[str], now: float) -> None:
    """Queue the next channel of each given delivery's subscriber, where the alert's policy is fallback."""
    if not delivery_ids:
        return
    await db.executemany(
        "UPDATE deliveries SET status = 'queued', next_attempt_at = ?, updated_at = ? WHERE id = ("
        "SELECT n.id FROM deliveries d JOIN deliveries n ON n.alert_id = d.alert_id "
        "AND n.subscriber_id = d.subscriber_id AND n.position = d.position + 1 "
        "JOIN alerts a ON a.id = d.alert_id WHERE d.id = ? AND n.status = 'skipped' AND a.policy = 'fallback' "
        "AND a.status IN ('active', 'scheduled'))", [(now, now, d) for d in delivery_ids])
