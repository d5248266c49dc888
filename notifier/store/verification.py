"""Self-service sign-up: consent records, open verifications (SMS codes, WeChat scene references), contact
verification and activation, and the anti-abuse counters (migration 0004).

Every function runs inside the caller's transaction. A code check and its attempt counter, or a limit check and
its counted event, are one atomic step across workers: the rows a step reads and then changes are locked first
(`for_update`; SQLite's BEGIN IMMEDIATE already excludes every other writer), and a rate-limit key with no row
yet to lock is serialised by `lock_key`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from notifier.store import selfservice, subscribers
from notifier.store.db import INT, Db, lock_key
from subscriptions.models import SubscriberStatus

# What a code check can come to.
VERIFIED, WRONG, LOCKED, EXPIRED, MISSING = "verified", "wrong", "locked", "expired", "missing"
ACTIVE, PENDING = SubscriberStatus.ACTIVE, SubscriberStatus.PENDING


async def put_consent(db: Db, subscriber_id: str, version: str, given_at: float) -> None:
    await db.execute("INSERT INTO consents (subscriber_id, version, given_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (subscriber_id) DO UPDATE SET version = excluded.version, "
                     "given_at = excluded.given_at", subscriber_id, version, given_at)


async def put_verification(db: Db, subscriber_id: str, channel: str, secret_hash: str, expires_at: float,
                           now: float) -> None:
    """Open (or replace, with a fresh attempt count) the verification of one subscriber × channel."""
    await db.execute(
        "INSERT INTO verifications (subscriber_id, channel, secret_hash, expires_at, attempts, created_at) "
        "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (subscriber_id, channel) DO UPDATE SET "
        "secret_hash = excluded.secret_hash, expires_at = excluded.expires_at, attempts = 0, "
        "created_at = excluded.created_at", subscriber_id, channel, secret_hash, expires_at, now)


async def check_code(db: Db, subscriber_id: str, channel: str, secret_hash: str, now: float,
                     max_attempts: int, verifies: bool = True) -> tuple[str, str]:
    """Compare a code's hash with the open verification; a miss counts, a match closes it and (`verifies`: a
    sign-up's code) verifies the contact of that channel. Returns the outcome and the subscriber who holds the
    contact now (another one when the sign-up was merged into it)."""
    row = await db.fetchrow("SELECT secret_hash, expires_at, attempts FROM verifications WHERE subscriber_id = ? "
                            f"AND channel = ?{db.dialect.for_update}", subscriber_id, channel)
    if row is None:
        return MISSING, subscriber_id
    stored, expires_at, attempts = str(row[0]), float(row[1]), int(row[2])
    if attempts >= max_attempts:
        return LOCKED, subscriber_id
    if expires_at <= now:
        return EXPIRED, subscriber_id
    if hmac.compare_digest(stored.encode(), secret_hash.encode()):
        await _close(db, subscriber_id, channel)
        if not verifies:
            return VERIFIED, subscriber_id
        holder = await verify_contact(db, subscriber_id, channel, now)
        return (VERIFIED, holder) if holder is not None else (MISSING, subscriber_id)
    await db.execute("UPDATE verifications SET attempts = attempts + 1 WHERE subscriber_id = ? AND channel = ?",
                     subscriber_id, channel)
    return LOCKED if attempts + 1 >= max_attempts else WRONG, subscriber_id


async def _close(db: Db, subscriber_id: str, channel: str) -> None:
    """A verification is used once."""
    await db.execute("DELETE FROM verifications WHERE subscriber_id = ? AND channel = ?", subscriber_id, channel)


async def verify_contact(db: Db, subscriber_id: str, channel: str, now: float) -> str | None:
    """Mark the contact verified and a pending subscriber active — or, when an active subscriber already holds
    that contact verified, merge the sign-up into them (`_merge_repeat`). Returns the subscriber who holds the
    verified contact now; None when there is no such contact."""
    if await db.execute("UPDATE contacts SET verified_at = COALESCE(verified_at, ?) "
                        "WHERE subscriber_id = ? AND channel = ?", now, subscriber_id, channel) == 0:
        return None
    status = await db.fetchval("SELECT status FROM subscribers WHERE id = ?", subscriber_id)
    holder = await _holder(db, subscriber_id, channel) if status == PENDING else None
    if holder is not None:
        await _merge_repeat(db, subscriber_id, holder, now)
        return holder
    await db.execute(f"UPDATE subscribers SET status = '{ACTIVE}', updated_at = ? WHERE id = ? "
                     f"AND status = '{PENDING}'", now, subscriber_id)
    return subscriber_id


async def _holder(db: Db, subscriber_id: str, channel: str) -> str | None:
    """The active subscriber (the oldest, if several) that holds this subscriber's `channel` contact verified and
    enabled: whom a repeat sign-up with that contact belongs to."""
    found = await db.fetchval(
        "SELECT o.subscriber_id FROM contacts c JOIN contacts o ON o.channel = c.channel AND o.address = c.address "
        "AND o.subscriber_id <> c.subscriber_id JOIN subscribers s ON s.id = o.subscriber_id "
        "WHERE c.subscriber_id = ? AND c.channel = ? AND o.verified_at IS NOT NULL AND o.disabled_at IS NULL "
        f"AND s.status = '{ACTIVE}' ORDER BY s.created_at, s.id LIMIT 1", subscriber_id, channel)
    return None if found is None else str(found)


async def _merge_repeat(db: Db, signup: str, holder: str, now: float) -> None:
    """A repeat sign-up, its contact just proven, joins the subscriber who holds it instead of becoming a second
    one: topics the holder lacks are added (with the sign-up's channels), contacts and open verifications for
    channels the holder lacks move over; what the holder already set (region, groups, language, quiet hours,
    existing topics, consent) stays — changes are made on /manage. The sign-up itself is then deleted."""
    await db.execute(
        "INSERT INTO subscriptions (subscriber_id, topic, min_severity, created_at) SELECT ?, topic, min_severity, ? "
        "FROM subscriptions WHERE subscriber_id = ? AND topic NOT IN "
        "(SELECT topic FROM subscriptions WHERE subscriber_id = ?)", holder, now, signup, holder)
    await db.execute(
        "INSERT INTO subscription_channels (subscriber_id, topic, channel, position) "
        "SELECT ?, topic, channel, position FROM subscription_channels WHERE subscriber_id = ? AND topic NOT IN "
        "(SELECT topic FROM subscription_channels WHERE subscriber_id = ?)", holder, signup, holder)
    for table in ("verifications", "contacts"):
        await db.execute(
            f"UPDATE {table} SET subscriber_id = ? WHERE subscriber_id = ? AND channel NOT IN "
            "(SELECT channel FROM contacts WHERE subscriber_id = ? UNION "
            "SELECT channel FROM verifications WHERE subscriber_id = ?)", holder, signup, holder, holder)
    await db.execute("UPDATE subscribers SET updated_at = ? WHERE id = ?", now, holder)
    await selfservice.forget(db, signup, now)


async def bind_by_reference(db: Db, channel: str, secret_hash: str, address: str, order: Sequence[str],
                            now: float) -> str | None:
    """Use an open, unexpired verification found by its hash: `address` becomes the subscriber's verified contact
    on `channel`, the channel joins each of their subscriptions (ranked by `order`), and they become active.
    Returns the subscriber id, or None when no open verification has that hash."""
    found = await db.fetchval("SELECT subscriber_id FROM verifications WHERE channel = ? AND secret_hash = ? "
                              f"AND expires_at > ? LIMIT 1{db.dialect.for_update}", channel, secret_hash, now)
    if found is None:
        return None
    subscriber_id = str(found)
    await _close(db, subscriber_id, channel)
    await db.execute(
        "INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) VALUES (?, ?, ?, NULL, ?) "
        "ON CONFLICT (subscriber_id, channel) DO UPDATE SET address = excluded.address, "
        "verified_at = excluded.verified_at, disabled_at = NULL, disabled_reason = NULL",
        subscriber_id, channel, address, now)
    await _add_channel(db, subscriber_id, channel, order)
    return await verify_contact(db, subscriber_id, channel, now)


async def _add_channel(db: Db, subscriber_id: str, channel: str, order: Sequence[str]) -> None:
    """Add `channel` to each of the subscriber's subscriptions that lacks it, ranked by `order`."""
    current: dict[str, list[str]] = {}
    for row in await db.fetch("SELECT topic FROM subscriptions WHERE subscriber_id = ?", subscriber_id):
        current[row[0]] = []
    for row in await db.fetch("SELECT topic, channel FROM subscription_channels WHERE subscriber_id = ? "
                              "ORDER BY topic, position", subscriber_id):
        current[row[0]].append(row[1])

    def rank(kind: str) -> int:
        return order.index(kind) if kind in order else len(order)

    for topic, channels in current.items():
        if channel not in channels:
            # sorted() is stable: channels outside `order` keep their order
            await subscribers.set_channels(db, subscriber_id, topic, sorted([*channels, channel], key=rank))


async def subscriber_by_contact(db: Db, channel: str, address: str) -> str | None:
    """The active subscriber whose verified contact on `channel` is `address` (the newest, should two share it),
    or None. A contact stopped by a TD reply still proves who its owner is."""
    found = await db.fetchval(
        "SELECT s.id FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id WHERE c.channel = ? "
        f"AND c.address = ? AND c.verified_at IS NOT NULL AND s.status = '{ACTIVE}' "
        "ORDER BY s.created_at DESC, s.id LIMIT 1", channel, address)
    return None if found is None else str(found)


async def contact_states(db: Db, subscriber_id: str) -> dict[str, float | None]:
    """channel → verified_at (None: not yet verified) of one subscriber's contacts."""
    rows = await db.fetch("SELECT channel, verified_at FROM contacts WHERE subscriber_id = ?", subscriber_id)
    return {str(r[0]): None if r[1] is None else float(r[1]) for r in rows}


Windows = Sequence[tuple[float, int]]  # (window seconds, most events in it)


@dataclass(frozen=True, slots=True)
class Limit:
    """One counted key: `count` more events for `key_hash` in `scope`, allowed while every window has room."""

    scope: str
    key_hash: str
    windows: Windows
    count: int = 1


async def take_limits(db: Db, limits: Sequence[Limit], now: float) -> tuple[str, float] | None:
    """Count every limit's events if every window of every limit has room (None); else (scope, seconds to wait)
    of the first that has none, and nothing is counted. The keys are locked first, in one order (two requests
    sharing keys cannot deadlock): check-then-insert has no row to lock yet."""
    for key in sorted({f"{limit.scope}:{limit.key_hash}" for limit in limits}):
        await lock_key(db, key)
    for limit in limits:
        longest = max(seconds for seconds, _ in limit.windows)
        await db.execute("DELETE FROM rate_events WHERE scope = ? AND key_hash = ? AND at <= ?",
                         limit.scope, limit.key_hash, now - longest)
        wait = await _wait(db, limit, now)
        if wait > 0:
            return limit.scope, wait
    await db.executemany("INSERT INTO rate_events (scope, key_hash, at) VALUES (?, ?, ?)",
                         [(limit.scope, limit.key_hash, now) for limit in limits for _ in range(limit.count)])
    return None


async def _wait(db: Db, limit: Limit, now: float) -> float:
    """Seconds until `limit.count` more events fit every window of the limit; 0 when they fit now."""
    wait = 0.0
    for seconds, most in limit.windows:
        if limit.count > most:
            return seconds
        # The (most - count + 1)-th newest event inside the window has to leave it before `count` more fit.
        at = await db.fetchval("SELECT at FROM rate_events WHERE scope = ? AND key_hash = ? AND at > ? "
                               f"ORDER BY at DESC LIMIT 1 OFFSET {INT}", limit.scope, limit.key_hash,
                               now - seconds, most - limit.count)
        if at is not None:
            wait = max(wait, float(at) + seconds - now)
    return wait


async def recent_events(db: Db, scope: str, key_hash: str, since: float) -> list[float]:
    """The times of `key_hash`'s events in `scope` after `since`, newest first."""
    rows = await db.fetch("SELECT at FROM rate_events WHERE scope = ? AND key_hash = ? AND at > ? ORDER BY at DESC",
                          scope, key_hash, since)
    return [float(r[0]) for r in rows]


async def add_event(db: Db, scope: str, key_hash: str, now: float) -> None:
    await db.execute("INSERT INTO rate_events (scope, key_hash, at) VALUES (?, ?, ?)", scope, key_hash, now)


async def purge_unverified(db: Db, before: float) -> int:
    """Delete pending subscribers created before `before` (their contacts, consent and verifications go with
    them), verifications that expired before it, counted events and dashboard sessions older than it. Returns
    subscribers deleted."""
    deleted = await db.execute(f"DELETE FROM subscribers WHERE status = '{PENDING}' AND created_at < ?", before)
    await db.execute("DELETE FROM verifications WHERE expires_at < ?", before)
    await db.execute("DELETE FROM rate_events WHERE at < ?", before)
    # Dashboard sessions unused for a day ended long ago (30 minutes idle): rows nobody can use any more.
    await db.execute("DELETE FROM admin_sessions WHERE seen_at < ?", before)
    return deleted
