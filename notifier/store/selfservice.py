"""A subscriber's own requests: unsubscribe, replace their subscriptions, see what is held about them, and be
forgotten.

Forgetting deletes the subscriber row and every row that names the subscriber by a contact or by its choices
(contacts, subscriber_groups, subscriptions, subscription_channels, consents, verifications) — explicitly, child
tables first, rather than by ON DELETE CASCADE alone, so that a connection opened without foreign keys enforced
(a maintenance shell) cannot leave a contact behind. Pending deliveries are cancelled (they keep only ids and
statuses, never an address), receipts of its deliveries that name its number (a keyed digest in `match_key` and the
key) are deleted, and the frozen
target sets of past alerts (alert_targets, alert_target_groups: ids, region and group codes, no contact) stay, so
that coverage figures do not change.

The bytes are the back-end's business, after the transaction (`Backend.after_erasure`): SQLite zeroes deleted
cells (`secure_delete`) and then checkpoints and truncates its WAL; PostgreSQL keeps dead tuples until VACUUM and
WAL segments until recycled — what an operator must do is in docs/erasure.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.store import assisted, receipts, subscribers
from notifier.store.db import Db, Row
from notifier.store.states import persons_deliveries

# Every table naming a subscriber, children before parents (`forget` deletes in this order).
_PERSONAL_TABLES = ("subscription_channels", "subscriptions", "subscriber_groups", "contacts", "consents",
                    "verifications")
HELD_DELIVERIES = 1000  # the newest deliveries shown to a subscriber asking what is held


async def delete_subscriptions(db: Db, subscriber_id: str, topic: str | None) -> int:
    """Remove one subscription (or all when `topic` is None); returns how many went. Their channels cascade."""
    if topic is None:
        return await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ?", subscriber_id)
    return await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ? AND topic = ?", subscriber_id, topic)


async def replace_subscriptions(db: Db, subscriber_id: str, subscriptions: Sequence[tuple[str, list[str], int]],
                                now: float) -> bool:
    """Make the subscriber's subscriptions exactly `subscriptions` (topic, channels, min rank); False if unknown."""
    if not await subscribers.lock(db, subscriber_id):
        return False
    await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ?", subscriber_id)
    await subscribers.insert_subscriptions(db, [(subscriber_id, topic, channels, rank, now)
                                                for topic, channels, rank in subscriptions])
    return True


async def forget(db: Db, subscriber_id: str, now: float) -> bool:
    """Delete the subscriber and everything naming it by contact; cancel its pending deliveries. False when there
    was no such subscriber."""
    await subscribers.cancel_waiting(db, subscriber_id, now)
    await assisted.forget_proxy(db, subscriber_id, now)  # a proxy's people (their labels) go with it
    items, joined = persons_deliveries("?")
    await db.execute("DELETE FROM receipts WHERE match_key IS NOT NULL AND delivery_id IN "
                     f"(SELECT d.id FROM {items} WHERE {joined})", subscriber_id)
    # Reports still waiting to be applied name their numbers (`receipts.store_reports`; only a phone's reports do).
    await receipts.forget_numbers(db, [r[0] for r in await db.fetch(
        "SELECT address FROM contacts WHERE subscriber_id = ? AND channel IN ('sms', 'voice')", subscriber_id)])
    for table in _PERSONAL_TABLES:
        await db.execute(f"DELETE FROM {table} WHERE subscriber_id = ?", subscriber_id)
    return await db.execute("DELETE FROM subscribers WHERE id = ?", subscriber_id) > 0


def _plain(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in row.keys()}


async def held(db: Db, subscriber_id: str) -> dict[str, Any]:
    """What the store holds about a subscriber beyond its record: contact states, consent, deliveries."""
    contacts = [_plain(r) for r in await db.fetch(
        "SELECT channel, verified_at, disabled_at, disabled_reason FROM contacts WHERE subscriber_id = ? "
        "ORDER BY channel", subscriber_id)]
    consent = await db.fetchrow("SELECT version, given_at FROM consents WHERE subscriber_id = ?", subscriber_id)
    items, joined = persons_deliveries("?", a="a")
    deliveries = [_plain(r) for r in await db.fetch(
        "SELECT d.id, d.alert_id, a.topic, a.headline, d.channel, d.status, d.attempts, d.created_at, d.sent_at, "
        f"d.delivered_at, d.finished_at FROM {items} WHERE {joined} ORDER BY d.created_at DESC, d.id LIMIT ?",
        subscriber_id, HELD_DELIVERIES)]
    return {"contacts": contacts, "consent": None if consent is None else _plain(consent), "deliveries": deliveries}
