"""SQLite SQL of bulk imports: which contacts are already held, and the insert of many subscribers, batch after
batch, inside the one transaction `SqliteStore.import_subscribers` opens (so the import is stored whole or not at
all: a crash before COMMIT leaves only uncommitted WAL frames, which SQLite discards on the next open)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence

import aiosqlite

from notifier.store.records import SubscriberRecord

Batch = Sequence[tuple[SubscriberRecord, dict[str, str]]]
_IN_LIST = 500  # values per IN (…) list, well under SQLite's bound on parameters


async def existing_contacts(db: aiosqlite.Connection, channel: str, addresses: Sequence[str]) -> set[str]:
    """Which of `addresses` a stored subscriber holds on `channel`, disabled contacts included (someone who
    opted out must not be signed up again by an import)."""
    found: set[str] = set()
    unique = list(dict.fromkeys(addresses))
    for start in range(0, len(unique), _IN_LIST):
        part = unique[start:start + _IN_LIST]
        rows = await db.execute_fetchall(
            f"SELECT address FROM contacts WHERE channel = ? AND address IN ({','.join('?' * len(part))})",
            (channel, *part))
        found.update(r[0] for r in rows)
    return found


async def insert_batch(db: aiosqlite.Connection, batch: Batch) -> None:
    """One batch of subscribers with their groups, contacts (verified when active) and subscriptions."""
    records = [r for r, _ in batch]
    await db.executemany(
        "INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.id, r.region, r.locale, r.quiet_start, r.quiet_end, r.status, r.consent_source, r.consent_at,
          r.created_at, r.created_at) for r in records])
    await db.executemany("INSERT INTO subscriber_groups VALUES (?, ?)", [(r.id, g) for r in records for g in r.groups])
    await db.executemany(
        "INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) VALUES (?, ?, ?, ?, ?)",
        [(r.id, kind, address, secrets.get(kind), r.created_at if r.status == "active" else None)
         for r, secrets in batch for kind, address in r.contacts.items()])
    await db.executemany("INSERT INTO subscriptions VALUES (?, ?, ?, ?)",
                         [(r.id, topic, rank, r.created_at) for r in records for topic, _, rank in r.subscriptions])
    await db.executemany("INSERT INTO subscription_channels VALUES (?, ?, ?, ?)",
                         [(r.id, topic, channel, position) for r in records for topic, channels, _ in r.subscriptions
                          for position, channel in enumerate(channels)])


async def insert_batches(db: aiosqlite.Connection, batches: AsyncIterable[Batch]) -> int:
    """Every batch, in the caller's transaction; returns how many subscribers were inserted."""
    stored = 0
    async for batch in batches:
        await insert_batch(db, batch)
        stored += len(batch)
    return stored
