"""A subscriber's own requests, for SQLite: unsubscribe, replace subscriptions, see what is held, and be forgotten.

Forgetting deletes the subscriber row; every table that names the subscriber by a contact or by its choices
(contacts, subscriber_groups, subscriptions, subscription_channels, consents, verifications) goes with it by
ON DELETE CASCADE. Pending deliveries are cancelled (they keep only ids and statuses, never an address), receipts
of its deliveries lose their number digest (match_key), and the frozen target sets of past alerts (alert_targets,
alert_target_groups: ids, region and group codes, no contact) stay, so that coverage figures do not change.

The bytes then go too: every connection runs with `PRAGMA secure_delete = ON` (deleted cells and freed pages are
zeroed), and `checkpoint` copies the WAL into the database and truncates it (`wal_checkpoint(TRUNCATE)`), so that
neither `notifier.db` nor `notifier.db-wal` keeps a copy of a deleted number. SQLite only: these pragmas are this
back-end's business; PostgreSQL has its own (VACUUM) story.

Functions taking `db` run inside the caller's write transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiosqlite

PENDING = ("queued", "deferred")
_CHECKPOINT_TRIES = 20


async def delete_subscriptions(db: aiosqlite.Connection, subscriber_id: str, topic: str | None) -> int:
    """Remove one subscription (or all when `topic` is None); returns how many went. Their channels cascade."""
    if topic is None:
        cursor = await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ?", (subscriber_id,))
    else:
        cursor = await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ? AND topic = ?",
                                  (subscriber_id, topic))
    return cursor.rowcount


async def replace_subscriptions(db: aiosqlite.Connection, subscriber_id: str,
                                subscriptions: Sequence[tuple[str, list[str], int]], now: float) -> bool:
    """Make the subscriber's subscriptions exactly `subscriptions` (topic, channels, min rank); False if unknown."""
    if not list(await db.execute_fetchall("SELECT 1 FROM subscribers WHERE id = ?", (subscriber_id,))):
        return False
    await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ?", (subscriber_id,))
    await db.executemany("INSERT INTO subscriptions VALUES (?, ?, ?, ?)",
                         [(subscriber_id, topic, rank, now) for topic, _, rank in subscriptions])
    await db.executemany("INSERT INTO subscription_channels VALUES (?, ?, ?, ?)",
                         [(subscriber_id, topic, ch, pos) for topic, channels, _ in subscriptions
                          for pos, ch in enumerate(channels)])
    return True


async def forget(db: aiosqlite.Connection, subscriber_id: str, now: float) -> bool:
    """Delete the subscriber and everything naming it by contact; cancel its pending deliveries."""
    await db.execute(
        "UPDATE deliveries SET status = 'cancelled', finished_at = ?, updated_at = ?, lease_owner = NULL, "
        "lease_until = NULL, last_error = 'subscriber deleted' WHERE subscriber_id = ? AND status IN (?, ?)",
        (now, now, subscriber_id, *PENDING))
    await db.execute("UPDATE receipts SET match_key = NULL WHERE delivery_id IN "
                     "(SELECT id FROM deliveries WHERE subscriber_id = ?)", (subscriber_id,))
    # Children first, explicitly, rather than relying on CASCADE alone: a connection opened without
    # foreign_keys=ON (a maintenance shell) must not leave a contact behind.
    for table in ("subscription_channels", "subscriptions", "subscriber_groups", "contacts"):
        await db.execute(f"DELETE FROM {table} WHERE subscriber_id = ?", (subscriber_id,))
    cursor = await db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
    return cursor.rowcount > 0


async def checkpoint(db: aiosqlite.Connection) -> bool:
    """Copy the WAL into the database and truncate it to zero bytes; True when it was fully truncated.
    Retried briefly while a reader holds an old snapshot (the checkpoint cannot pass it)."""
    for _ in range(_CHECKPOINT_TRIES):
        rows = list(await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
        if rows and rows[0][0] == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def held(reader: aiosqlite.Connection, subscriber_id: str) -> dict[str, Any]:
    """What the store holds about a subscriber beyond its record: contact states, consent, deliveries."""
    contacts = [dict(r) for r in await reader.execute_fetchall(
        "SELECT channel, verified_at, disabled_at, disabled_reason FROM contacts WHERE subscriber_id = ? "
        "ORDER BY channel", (subscriber_id,))]
    consent = [dict(r) for r in await reader.execute_fetchall(
        "SELECT version, given_at FROM consents WHERE subscriber_id = ?", (subscriber_id,))]
    deliveries = [dict(r) for r in await reader.execute_fetchall(
        "SELECT d.id, d.alert_id, a.topic, a.headline, d.channel, d.status, d.attempts, d.created_at, d.sent_at, "
        "d.delivered_at, d.finished_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE d.subscriber_id = ? ORDER BY d.created_at DESC, d.id LIMIT 1000", (subscriber_id,))]
    return {"contacts": contacts, "consent": consent[0] if consent else None, "deliveries": deliveries}
