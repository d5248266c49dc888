"""Self-service sign-up for PostgreSQL: consent records, open verifications, contact verification and activation,
and the anti-abuse counters (migration 0004). The same steps as `sqlite_verification`; where SQLite's
`BEGIN IMMEDIATE` serialises every writer, here the rows a step reads and then changes are locked (`FOR UPDATE`,
and a transaction-scoped advisory lock per rate-limit key), so a code check and its attempt counter, or a limit
check and its counted event, stay one atomic step across workers.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from notifier.store.pg_base import Conn, rowcount
from notifier.store.pg_subscribers import INSERT_SUBSCRIPTION_CHANNEL
from notifier.store.sqlite_verification import EXPIRED, LOCKED, MISSING, VERIFIED, WRONG, wait_for


async def put_consent(c: Conn, subscriber_id: str, version: str, given_at: float) -> None:
    await c.execute("INSERT INTO consents (subscriber_id, version, given_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (subscriber_id) DO UPDATE SET version = excluded.version, "
                    "given_at = excluded.given_at", subscriber_id, version, given_at)


async def put_verification(c: Conn, subscriber_id: str, channel: str, secret_hash: str, expires_at: float,
                           now: float) -> None:
    """Open (or replace, with a fresh attempt count) the verification of one subscriber × channel."""
    await c.execute(
        "INSERT INTO verifications (subscriber_id, channel, secret_hash, expires_at, attempts, created_at) "
        "VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (subscriber_id, channel) DO UPDATE SET "
        "secret_hash = excluded.secret_hash, expires_at = excluded.expires_at, attempts = 0, "
        "created_at = excluded.created_at", subscriber_id, channel, secret_hash, expires_at, now)


async def check_code(c: Conn, subscriber_id: str, channel: str, secret_hash: str, now: float,
                     max_attempts: int) -> str:
    """Compare a code's hash with the open verification; a match verifies the contact, a miss counts."""
    row = await c.fetchrow(
        "SELECT secret_hash, expires_at, attempts FROM verifications WHERE subscriber_id = $1 AND channel = $2 "
        "FOR UPDATE", subscriber_id, channel)
    if row is None:
        return MISSING
    stored, expires_at, attempts = row[0], row[1], row[2]
    if attempts >= max_attempts:
        return LOCKED
    if expires_at <= now:
        return EXPIRED
    if hmac.compare_digest(str(stored).encode(), secret_hash.encode()):
        await c.execute("DELETE FROM verifications WHERE subscriber_id = $1 AND channel = $2", subscriber_id, channel)
        return VERIFIED if await verify_contact(c, subscriber_id, channel, now) else MISSING
    await c.execute("UPDATE verifications SET attempts = attempts + 1 WHERE subscriber_id = $1 AND channel = $2",
                    subscriber_id, channel)
    return LOCKED if attempts + 1 >= max_attempts else WRONG


async def verify_contact(c: Conn, subscriber_id: str, channel: str, now: float) -> bool:
    """Mark the contact verified and a pending subscriber active; False when there is no such contact."""
    status = await c.execute("UPDATE contacts SET verified_at = COALESCE(verified_at, $1) "
                             "WHERE subscriber_id = $2 AND channel = $3", now, subscriber_id, channel)
    if rowcount(status) == 0:
        return False
    await c.execute("UPDATE subscribers SET status = 'active', updated_at = $1 WHERE id = $2 AND status = 'pending'",
                    now, subscriber_id)
    return True


async def bind_by_reference(c: Conn, channel: str, secret_hash: str, address: str, order: Sequence[str],
                            now: float) -> str | None:
    """Use an open, unexpired verification found by its hash (see `sqlite_verification.bind_by_reference`)."""
    found = await c.fetchval(
        "SELECT subscriber_id FROM verifications WHERE channel = $1 AND secret_hash = $2 AND expires_at > $3 "
        "LIMIT 1 FOR UPDATE", channel, secret_hash, now)
    if found is None:
        return None
    subscriber_id = str(found)
    await c.execute("DELETE FROM verifications WHERE subscriber_id = $1 AND channel = $2", subscriber_id, channel)
    await c.execute(
        "INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) VALUES ($1, $2, $3, NULL, $4) "
        "ON CONFLICT (subscriber_id, channel) DO UPDATE SET address = excluded.address, "
        "verified_at = excluded.verified_at, disabled_at = NULL, disabled_reason = NULL",
        subscriber_id, channel, address, now)
    await _add_channel(c, subscriber_id, channel, order)
    await verify_contact(c, subscriber_id, channel, now)
    return subscriber_id


async def _add_channel(c: Conn, subscriber_id: str, channel: str, order: Sequence[str]) -> None:
    current: dict[str, list[str]] = {}
    for row in await c.fetch("SELECT topic FROM subscriptions WHERE subscriber_id = $1", subscriber_id):
        current[row[0]] = []
    for row in await c.fetch("SELECT topic, channel FROM subscription_channels WHERE subscriber_id = $1 "
                             "ORDER BY topic, position", subscriber_id):
        current[row[0]].append(row[1])

    def rank(kind: str) -> int:
        return order.index(kind) if kind in order else len(order)

    for topic, channels in current.items():
        if channel in channels:
            continue
        ranked = sorted([*channels, channel], key=rank)  # stable: channels outside `order` keep their order
        await c.execute("DELETE FROM subscription_channels WHERE subscriber_id = $1 AND topic = $2",
                        subscriber_id, topic)
        await c.executemany(INSERT_SUBSCRIPTION_CHANNEL,
                            [(subscriber_id, topic, kind, pos) for pos, kind in enumerate(ranked)])


async def contact_states(c: Conn, subscriber_id: str) -> dict[str, float | None]:
    """channel → verified_at (None: not yet verified) of one subscriber's contacts."""
    rows = await c.fetch("SELECT channel, verified_at FROM contacts WHERE subscriber_id = $1", subscriber_id)
    return {str(r[0]): r[1] for r in rows}


async def take_rate_limit(c: Conn, scope: str, key_hash: str, now: float,
                          windows: Sequence[tuple[float, int]]) -> float | None:
    """Count one event for `key_hash` if every window allows it (None), else the seconds to wait (nothing
    counted). The key's advisory lock makes check-then-insert atomic across workers (no row to lock yet)."""
    await c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{scope}:{key_hash}")
    longest = max(seconds for seconds, _ in windows)
    await c.execute("DELETE FROM rate_events WHERE scope = $1 AND key_hash = $2 AND at <= $3",
                    scope, key_hash, now - longest)
    rows = await c.fetch("SELECT at FROM rate_events WHERE scope = $1 AND key_hash = $2 ORDER BY at DESC",
                         scope, key_hash)
    wait = wait_for([float(r[0]) for r in rows], now, windows)
    if wait > 0:
        return wait
    await c.execute("INSERT INTO rate_events (scope, key_hash, at) VALUES ($1, $2, $3)", scope, key_hash, now)
    return None


async def purge_unverified(c: Conn, before: float) -> int:
    """Delete stale pending subscribers (with their contacts, consent and verifications), expired verifications
    and old counted events. Returns subscribers deleted."""
    deleted = rowcount(await c.execute("DELETE FROM subscribers WHERE status = 'pending' AND created_at < $1", before))
    await c.execute("DELETE FROM verifications WHERE expires_at < $1", before)
    await c.execute("DELETE FROM rate_events WHERE at < $1", before)
    return deleted
