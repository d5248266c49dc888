"""Subscribers: who they are, their groups, contacts and subscriptions (and a proxy's assisted people) — created
one at a time or imported in bulk (one insert path for both), read back (hydrated in four queries whatever the page
size, five when proxies are among them), edited and deleted.

A bulk import runs every batch inside the one transaction the store opens for it, so the import is stored whole
or not at all (a crash before COMMIT leaves nothing: SQLite discards uncommitted WAL frames on the next open,
PostgreSQL rolls the transaction back).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from notifier.states import DeliveryStatus
from notifier.store import assisted
from notifier.store.db import Db, Row, as_list
from notifier.store.records import SubscriberRecord
from notifier.store.states import WAITING, persons_deliveries
from subscriptions.models import PROXY_ROLE, SubscriberStatus

Batch = Sequence[tuple[SubscriberRecord, dict[str, str]]]  # each subscriber with its contacts' secrets
# The tables an import fills and a fan-out reads; after this many people at once (subscribers, or a proxy's list:
# `assisted.TABLES`) their planner statistics are brought up to date (`Backend.after_bulk_load`).
PEOPLE_TABLES = ("subscribers", "contacts", "subscriptions", "subscription_channels", "subscriber_groups")
BULK_LOAD = 10_000

_INSERT_SUBSCRIBER = (
    "INSERT INTO subscribers (id, region, locale, quiet_start, quiet_end, status, consent_source, consent_at, "
    "created_at, updated_at, role) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_GROUP = "INSERT INTO subscriber_groups (subscriber_id, group_code) VALUES (?, ?)"
_INSERT_CONTACT = ("INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) "
                   "VALUES (?, ?, ?, ?, ?)")
_INSERT_SUBSCRIPTION = ("INSERT INTO subscriptions (subscriber_id, topic, min_severity, created_at) "
                        "VALUES (?, ?, ?, ?)")
_INSERT_CHANNEL = ("INSERT INTO subscription_channels (subscriber_id, topic, channel, position) "
                   "VALUES (?, ?, ?, ?)")
# What an admin may change on the subscriber row itself (contacts and groups are replaced whole).
_EDITABLE = ("region", "locale", "quiet_start", "quiet_end")


# ---------------------------------------------------------------- writing


async def insert_batch(db: Db, batch: Batch) -> None:
    """One batch of subscribers with their groups, contacts (verified when active) and subscriptions."""
    if not batch:
        return
    records = [r for r, _ in batch]
    await db.executemany(_INSERT_SUBSCRIBER, [
        (r.id, r.region, r.locale, r.quiet_start, r.quiet_end, r.status, r.consent_source, r.consent_at,
         r.created_at, r.created_at, r.role) for r in records])
    await db.executemany(_INSERT_GROUP, [(r.id, g) for r in records for g in r.groups])
    await db.executemany(_INSERT_CONTACT, [
        (r.id, kind, address, secrets.get(kind), r.created_at if r.status == SubscriberStatus.ACTIVE else None)
        for r, secrets in batch for kind, address in r.contacts.items()])
    await insert_subscriptions(db, [(r.id, topic, channels, rank, r.created_at)
                                    for r in records for topic, channels, rank in r.subscriptions])
    for r in records:
        await assisted.add(db, r.id, r.assists, r.created_at)  # proxies only: nothing for everyone else


async def insert_batches(db: Db, batches: AsyncIterable[Batch]) -> int:
    """Every batch, in the caller's transaction; returns how many subscribers were inserted."""
    stored = 0
    async for batch in batches:
        await insert_batch(db, batch)
        stored += len(batch)
    return stored


async def create(db: Db, record: SubscriberRecord, secrets: dict[str, str]) -> None:
    await insert_batch(db, [(record, secrets)])


async def insert_subscriptions(db: Db, rows: Iterable[tuple[str, str, Sequence[str], int, float]]) -> None:
    """New subscriptions (subscriber id, topic, channels in order of preference, minimum severity rank, time)."""
    rows = list(rows)
    await db.executemany(_INSERT_SUBSCRIPTION, [(s, topic, rank, at) for s, topic, _, rank, at in rows])
    await db.executemany(_INSERT_CHANNEL, [(s, topic, channel, position) for s, topic, channels, _, _ in rows
                                           for position, channel in enumerate(channels)])


async def set_channels(db: Db, subscriber_id: str, topic: str, channels: Sequence[str]) -> None:
    """Replace the channels of one subscription, in order of preference."""
    await db.execute("DELETE FROM subscription_channels WHERE subscriber_id = ? AND topic = ?", subscriber_id, topic)
    await db.executemany(_INSERT_CHANNEL, [(subscriber_id, topic, channel, position)
                                           for position, channel in enumerate(channels)])


async def lock(db: Db, subscriber_id: str) -> bool:
    """Lock the subscriber's row until the transaction ends (edits of one subscriber go one at a time, and a
    concurrent delete waits); False when there is no such subscriber."""
    return await db.fetchval(f"SELECT 1 FROM subscribers WHERE id = ?{db.dialect.for_update}",
                             subscriber_id) is not None


async def lock_proxy(db: Db, proxy_id: str) -> bool:
    """Lock a proxy's row (its list changes one import at a time); False when there is no such proxy."""
    return await db.fetchval(f"SELECT 1 FROM subscribers WHERE id = ? AND role = '{PROXY_ROLE}'"
                             f"{db.dialect.for_update}", proxy_id) is not None


async def proxies_by_contact(db: Db, channel: str, addresses: Sequence[str]) -> dict[str, str]:
    """address → proxy id, for the proxies holding these addresses on `channel` (an office names its grid workers
    by their mobile numbers)."""
    if not addresses:
        return {}
    rows = await db.fetch(
        f"SELECT c.address, c.subscriber_id FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id "
        f"WHERE c.channel = ? AND s.role = '{PROXY_ROLE}' AND c.address IN {db.dialect.each()}",
        channel, as_list(dict.fromkeys(addresses)))
    return {str(r[0]): str(r[1]) for r in rows}


async def put_subscription(db: Db, subscriber_id: str, topic: str, channels: list[str], rank: int,
                           now: float) -> bool:
    """Create or replace one subscription; False when the subscriber does not exist."""
    if not await lock(db, subscriber_id):
        return False
    await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ? AND topic = ?", subscriber_id, topic)
    await insert_subscriptions(db, [(subscriber_id, topic, channels, rank, now)])
    return True


async def update(db: Db, subscriber_id: str, fields: dict[str, Any], contacts: dict[str, str] | None,
                 secrets: dict[str, str], groups: list[str] | None, now: float) -> bool:
    """Change the editable fields, and replace the groups and the contacts (verified now) when given; False when
    the subscriber does not exist."""
    if not await lock(db, subscriber_id):
        return False
    changed = [k for k in _EDITABLE if k in fields]
    if changed:
        sets = ", ".join(f"{k} = ?" for k in changed)
        await db.execute(f"UPDATE subscribers SET {sets}, updated_at = ? WHERE id = ?",
                         *[fields[k] for k in changed], now, subscriber_id)
    if groups is not None:
        await db.execute("DELETE FROM subscriber_groups WHERE subscriber_id = ?", subscriber_id)
        await db.executemany(_INSERT_GROUP, [(subscriber_id, g) for g in groups])
    if contacts is not None:
        await db.execute("DELETE FROM contacts WHERE subscriber_id = ?", subscriber_id)
        await db.executemany(_INSERT_CONTACT, [(subscriber_id, kind, address, secrets.get(kind), now)
                                               for kind, address in contacts.items()])
    return True


async def cancel_waiting(db: Db, subscriber_id: str, now: float) -> int:
    """The subscriber is gone: their deliveries not sent yet are cancelled (they keep ids and statuses, never an
    address). Returns how many."""
    items, joined = persons_deliveries("?")
    return await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.CANCELLED}', finished_at = ?, updated_at = ?, "
        "lease_owner = NULL, lease_until = NULL, last_error = 'subscriber deleted' "
        f"WHERE id IN (SELECT d.id FROM {items} WHERE {joined} AND d.status IN {WAITING})", now, now, subscriber_id)


async def delete(db: Db, subscriber_id: str, now: float) -> bool:
    """Remove the subscriber and every contact (ON DELETE CASCADE); pending deliveries are cancelled. Coverage of
    past alerts keeps its counts (alert_targets holds no personal data)."""
    await assisted.forget_proxy(db, subscriber_id, now)  # a proxy's people go with it
    if await db.execute("DELETE FROM subscribers WHERE id = ?", subscriber_id) == 0:
        return False
    await cancel_waiting(db, subscriber_id, now)
    return True


# ---------------------------------------------------------------- reading


async def get(db: Db, subscriber_id: str) -> SubscriberRecord | None:
    row = await db.fetchrow("SELECT * FROM subscribers WHERE id = ?", subscriber_id)
    return None if row is None else (await _hydrate(db, [row]))[0]


async def listing(db: Db, limit: int, after: tuple[float, str] | None) -> tuple[list[SubscriberRecord], int]:
    """A page of subscribers in order of creation (keyset: after (created_at, id)), and how many there are."""
    total = await count(db)
    if after is None:
        rows = await db.fetch("SELECT * FROM subscribers ORDER BY created_at, id LIMIT ?", limit)
    else:
        rows = await db.fetch("SELECT * FROM subscribers WHERE (created_at > ? OR (created_at = ? AND id > ?)) "
                              "ORDER BY created_at, id LIMIT ?", after[0], after[0], after[1], limit)
    return (await _hydrate(db, rows) if rows else []), total


async def count(db: Db) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM subscribers"))


async def existing_contacts(db: Db, channel: str, addresses: Sequence[str]) -> set[str]:
    """Which of `addresses` a stored subscriber holds on `channel`, disabled contacts included (someone who
    opted out must not be signed up again by an import)."""
    if not addresses:
        return set()
    rows = await db.fetch(f"SELECT address FROM contacts WHERE channel = ? AND address IN {db.dialect.each()}",
                          channel, as_list(dict.fromkeys(addresses)))
    return {str(r[0]) for r in rows}


async def _hydrate(db: Db, rows: Sequence[Row]) -> list[SubscriberRecord]:
    """The records of these subscriber rows, with their groups, contacts and subscriptions."""
    ids = [str(r["id"]) for r in rows]
    each, param = db.dialect.each(), as_list(ids)
    groups: dict[str, list[str]] = {i: [] for i in ids}
    contacts: dict[str, dict[str, str]] = {i: {} for i in ids}
    disabled: dict[str, dict[str, str]] = {i: {} for i in ids}
    subs: dict[str, dict[str, tuple[list[str], int]]] = {i: {} for i in ids}
    for r in await db.fetch(f"SELECT subscriber_id, group_code FROM subscriber_groups WHERE subscriber_id IN {each} "
                            "ORDER BY group_code", param):
        groups[r["subscriber_id"]].append(r["group_code"])
    for r in await db.fetch("SELECT subscriber_id, channel, address, disabled_at, disabled_reason FROM contacts "
                            f"WHERE subscriber_id IN {each}", param):
        contacts[r["subscriber_id"]][r["channel"]] = r["address"]
        if r["disabled_at"] is not None:
            disabled[r["subscriber_id"]][r["channel"]] = r["disabled_reason"] or "disabled"
    for r in await db.fetch(f"SELECT subscriber_id, topic, min_severity FROM subscriptions WHERE subscriber_id IN "
                            f"{each} ORDER BY topic", param):
        subs[r["subscriber_id"]][r["topic"]] = ([], r["min_severity"])
    for r in await db.fetch("SELECT subscriber_id, topic, channel FROM subscription_channels "
                            f"WHERE subscriber_id IN {each} ORDER BY position", param):
        subs[r["subscriber_id"]][r["topic"]][0].append(r["channel"])
    people = await assisted.of_proxies(db, [str(r["id"]) for r in rows if r["role"] == PROXY_ROLE])
    return [SubscriberRecord(
        id=r["id"], region=r["region"], locale=r["locale"], quiet_start=r["quiet_start"],
        quiet_end=r["quiet_end"], status=r["status"], consent_source=r["consent_source"],
        consent_at=r["consent_at"], created_at=r["created_at"], groups=groups[r["id"]],
        contacts=contacts[r["id"]], disabled=disabled[r["id"]],
        subscriptions=[(t, ch, rank) for t, (ch, rank) in subs[r["id"]].items()], role=r["role"],
        assists=people.get(r["id"], [])) for r in rows]
