"""PostgreSQL SQL of bulk imports: which contacts are already held, and the insert of many subscribers, batch
after batch, inside the one transaction `PostgresStore.import_subscribers` opens (stored whole or not at all)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence

from notifier.store.pg_base import Conn
from notifier.store.pg_subscribers import (
    INSERT_CONTACT,
    INSERT_GROUP,
    INSERT_SUBSCRIBER,
    INSERT_SUBSCRIPTION,
    INSERT_SUBSCRIPTION_CHANNEL,
)
from notifier.store.sqlite_import import Batch


async def existing_contacts(c: Conn, channel: str, addresses: Sequence[str]) -> set[str]:
    """Which of `addresses` a stored subscriber holds on `channel`, disabled contacts included."""
    if not addresses:
        return set()
    rows = await c.fetch("SELECT address FROM contacts WHERE channel = $1 AND address = ANY($2::text[])",
                         channel, list(dict.fromkeys(addresses)))
    return {r[0] for r in rows}


async def insert_batch(c: Conn, batch: Batch) -> None:
    """One batch of subscribers with their groups, contacts (verified when active) and subscriptions."""
    records = [r for r, _ in batch]
    await c.executemany(INSERT_SUBSCRIBER, [(r.id, r.region, r.locale, r.quiet_start, r.quiet_end, r.status,
                                             r.consent_source, r.consent_at, r.created_at, r.created_at)
                                            for r in records])
    await c.executemany(INSERT_GROUP, [(r.id, g) for r in records for g in r.groups])
    await c.executemany(INSERT_CONTACT, [(r.id, kind, address, secrets.get(kind),
                                          r.created_at if r.status == "active" else None)
                                         for r, secrets in batch for kind, address in r.contacts.items()])
    await c.executemany(INSERT_SUBSCRIPTION, [(r.id, topic, rank, r.created_at) for r in records
                                              for topic, _, rank in r.subscriptions])
    await c.executemany(INSERT_SUBSCRIPTION_CHANNEL, [(r.id, topic, channel, position) for r in records
                                                      for topic, channels, _ in r.subscriptions
                                                      for position, channel in enumerate(channels)])


async def insert_batches(c: Conn, batches: AsyncIterable[Batch]) -> int:
    """Every batch, in the caller's transaction; returns how many subscribers were inserted."""
    stored = 0
    async for batch in batches:
        if batch:
            await insert_batch(c, batch)
        stored += len(batch)
    return stored
