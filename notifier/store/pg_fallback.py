"""Fallback activation for PostgreSQL, shared by result recording, sweeps and receipts: the next channel of a
subscriber whose current one failed (or stayed silent) is queued, where the alert's policy is `fallback` and it is
still live. One statement for the whole batch (`= ANY`), where SQLite runs one per delivery."""

from __future__ import annotations

from notifier.store.pg_base import Conn


async def activate_next(c: Conn, delivery_ids: list[str], now: float) -> None:
    """Queue the next channel of each given delivery's subscriber, where the alert's policy is fallback."""
    if not delivery_ids:
        return
    await c.execute(
        "UPDATE deliveries SET status = 'queued', next_attempt_at = $1, updated_at = $1 WHERE id IN ("
        "SELECT n.id FROM deliveries d JOIN deliveries n ON n.alert_id = d.alert_id "
        "AND n.subscriber_id = d.subscriber_id AND n.position = d.position + 1 "
        "JOIN alerts a ON a.id = d.alert_id WHERE d.id = ANY($2::text[]) AND n.status = 'skipped' "
        "AND a.policy = 'fallback' AND a.status IN ('active', 'scheduled'))", now, delivery_ids)
