"""A subscriber's own requests, for PostgreSQL: unsubscribe, replace subscriptions, see what is held, be forgotten.

The same rows go as in `sqlite_selfservice` (see its docstring). The bytes: PostgreSQL has no `secure_delete`;
a deleted row stays in its heap page as a dead tuple until VACUUM reclaims the space (autovacuum does, soon after
a delete), and in WAL segments until they are recycled. VACUUM cannot run inside a transaction, so `forget` does
not run it; an operator who must guarantee erasure of the bytes runs `VACUUM` on contacts (and keeps WAL archives
and backups under the same retention rule). Functions taking `c` run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.store.pg_base import Conn, rowcount
from notifier.store.pg_subscribers import INSERT_SUBSCRIPTION, INSERT_SUBSCRIPTION_CHANNEL


async def delete_subscriptions(c: Conn, subscriber_id: str, topic: str | None) -> int:
    """Remove one subscription (or all when `topic` is None); returns how many went. Their channels cascade."""
    if topic is None:
        return rowcount(await c.execute("DELETE FROM subscriptions WHERE subscriber_id = $1", subscriber_id))
    return rowcount(await c.execute("DELETE FROM subscriptions WHERE subscriber_id = $1 AND topic = $2",
                                    subscriber_id, topic))


async def replace_subscriptions(c: Conn, subscriber_id: str, subscriptions: Sequence[tuple[str, list[str], int]],
                                now: float) -> bool:
    """Make the subscriber's subscriptions exactly `subscriptions` (topic, channels, min rank); False if unknown."""
    if await c.fetchval("SELECT 1 FROM subscribers WHERE id = $1", subscriber_id) is None:
        return False
    await c.execute("DELETE FROM subscriptions WHERE subscriber_id = $1", subscriber_id)
    await c.executemany(INSERT_SUBSCRIPTION, [(subscriber_id, topic, rank, now) for topic, _, rank in subscriptions])
    await c.executemany(INSERT_SUBSCRIPTION_CHANNEL, [(subscriber_id, topic, ch, pos)
                                                      for topic, channels, _ in subscriptions
                                                      for pos, ch in enumerate(channels)])
    return True


async def forget(c: Conn, subscriber_id: str, now: float) -> bool:
    """Delete the subscriber and everything naming it by contact; cancel its pending deliveries."""
    await c.execute(
        "UPDATE deliveries SET status = 'cancelled', finished_at = $1, updated_at = $1, lease_owner = NULL, "
        "lease_until = NULL, last_error = 'subscriber deleted' WHERE subscriber_id = $2 "
        "AND status IN ('queued', 'deferred')", now, subscriber_id)
    await c.execute("UPDATE receipts SET match_key = NULL WHERE delivery_id IN "
                    "(SELECT id FROM deliveries WHERE subscriber_id = $1)", subscriber_id)
    for table in ("subscription_channels", "subscriptions", "subscriber_groups", "contacts"):
        await c.execute(f"DELETE FROM {table} WHERE subscriber_id = $1", subscriber_id)
    return rowcount(await c.execute("DELETE FROM subscribers WHERE id = $1", subscriber_id)) > 0


async def held(c: Conn, subscriber_id: str) -> dict[str, Any]:
    """What the store holds about a subscriber beyond its record: contact states, consent, deliveries."""
    contacts = [dict(r) for r in await c.fetch(
        "SELECT channel, verified_at, disabled_at, disabled_reason FROM contacts WHERE subscriber_id = $1 "
        "ORDER BY channel", subscriber_id)]
    consent = [dict(r) for r in await c.fetch(
        "SELECT version, given_at FROM consents WHERE subscriber_id = $1", subscriber_id)]
    deliveries = [dict(r) for r in await c.fetch(
        "SELECT d.id, d.alert_id, a.topic, a.headline, d.channel, d.status, d.attempts, d.created_at, d.sent_at, "
        "d.delivered_at, d.finished_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE d.subscriber_id = $1 ORDER BY d.created_at DESC, d.id LIMIT 1000", subscriber_id)]
    return {"contacts": contacts, "consent": consent[0] if consent else None, "deliveries": deliveries}
