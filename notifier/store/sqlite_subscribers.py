"""Subscribers in SQLite: who they are, their groups, contacts and subscriptions (reads hydrate in four queries
whatever the page size)."""

from __future__ import annotations

import time
from typing import Any

import aiosqlite

from notifier.store.records import SubscriberRecord
from notifier.store.sqlite_base import Row, SqliteBase


class SubscriberTables(SqliteBase):
    """The subscriber half of the SQLite store."""

    # ------------------------------------------------------------ subscribers

    async def create_subscriber(self, record: SubscriberRecord, secrets: dict[str, str]) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.region, record.locale, record.quiet_start, record.quiet_end, record.status,
                 record.consent_source, record.consent_at, record.created_at, record.created_at))
            await self._write_children(db, record, secrets)

    async def _write_children(self, db: aiosqlite.Connection, record: SubscriberRecord,
                              secrets: dict[str, str]) -> None:
        verified = record.created_at if record.status == "active" else None
        await db.executemany("INSERT INTO subscriber_groups VALUES (?, ?)", [(record.id, g) for g in record.groups])
        await db.executemany(
            "INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) VALUES (?, ?, ?, ?, ?)",
            [(record.id, kind, addr, secrets.get(kind), verified) for kind, addr in record.contacts.items()])
        for topic, channels, rank in record.subscriptions:
            await self._add_subscription(db, record.id, topic, channels, rank, record.created_at)

    @staticmethod
    async def _add_subscription(db: aiosqlite.Connection, subscriber_id: str, topic: str, channels: list[str],
                                rank: int, now: float) -> None:
        await db.execute("INSERT INTO subscriptions VALUES (?, ?, ?, ?)", (subscriber_id, topic, rank, now))
        await db.executemany("INSERT INTO subscription_channels VALUES (?, ?, ?, ?)",
                             [(subscriber_id, topic, ch, pos) for pos, ch in enumerate(channels)])

    async def put_subscription(self, subscriber_id: str, topic: str, channels: list[str], rank: int) -> bool:
        """Create or replace one subscription; False when the subscriber does not exist."""
        async with self.transaction() as db:
            if not list(await db.execute_fetchall("SELECT 1 FROM subscribers WHERE id = ?", (subscriber_id,))):
                return False
            await db.execute("DELETE FROM subscriptions WHERE subscriber_id = ? AND topic = ?", (subscriber_id, topic))
            await self._add_subscription(db, subscriber_id, topic, channels, rank, time.time())
        return True

    async def get_subscriber(self, subscriber_id: str) -> SubscriberRecord | None:
        rows = await self._read("SELECT * FROM subscribers WHERE id = ?", (subscriber_id,))
        if not rows:
            return None
        return (await self._hydrate(rows))[0]

    async def _hydrate(self, rows: list[Row]) -> list[SubscriberRecord]:
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        groups: dict[str, list[str]] = {i: [] for i in ids}
        contacts: dict[str, dict[str, str]] = {i: {} for i in ids}
        disabled: dict[str, dict[str, str]] = {i: {} for i in ids}
        subs: dict[str, dict[str, tuple[list[str], int]]] = {i: {} for i in ids}
        for r in await self._read(f"SELECT * FROM subscriber_groups WHERE subscriber_id IN ({marks}) "
                                  "ORDER BY group_code", ids):
            groups[r["subscriber_id"]].append(r["group_code"])
        for r in await self._read(f"SELECT * FROM contacts WHERE subscriber_id IN ({marks})", ids):
            contacts[r["subscriber_id"]][r["channel"]] = r["address"]
            if r["disabled_at"] is not None:
                disabled[r["subscriber_id"]][r["channel"]] = r["disabled_reason"] or "disabled"
        for r in await self._read(f"SELECT * FROM subscriptions WHERE subscriber_id IN ({marks}) "
                                  "ORDER BY topic", ids):
            subs[r["subscriber_id"]][r["topic"]] = ([], r["min_severity"])
        for r in await self._read(f"SELECT * FROM subscription_channels WHERE subscriber_id IN ({marks}) "
                                  "ORDER BY position", ids):
            subs[r["subscriber_id"]][r["topic"]][0].append(r["channel"])
        return [SubscriberRecord(
            id=r["id"], region=r["region"], locale=r["locale"], quiet_start=r["quiet_start"],
            quiet_end=r["quiet_end"], status=r["status"], consent_source=r["consent_source"],
            consent_at=r["consent_at"], created_at=r["created_at"], groups=groups[r["id"]],
            contacts=contacts[r["id"]], disabled=disabled[r["id"]],
            subscriptions=[(t, ch, rank) for t, (ch, rank) in subs[r["id"]].items()]) for r in rows]

    async def list_subscribers(self, limit: int, after: tuple[float, str] | None) -> tuple[list[SubscriberRecord], int]:
        total = (await self._read("SELECT COUNT(*) FROM subscribers"))[0][0]
        if after is None:
            rows = await self._read("SELECT * FROM subscribers ORDER BY created_at, id LIMIT ?", (limit,))
        else:
            rows = await self._read("SELECT * FROM subscribers WHERE (created_at, id) > (?, ?) "
                                    "ORDER BY created_at, id LIMIT ?", (*after, limit))
        return (await self._hydrate(rows) if rows else []), int(total)

    async def update_subscriber(self, subscriber_id: str, fields: dict[str, Any], contacts: dict[str, str] | None,
                                secrets: dict[str, str], groups: list[str] | None) -> bool:
        now = time.time()
        async with self.transaction() as db:
            if not list(await db.execute_fetchall("SELECT 1 FROM subscribers WHERE id = ?", (subscriber_id,))):
                return False
            allowed = {"region", "locale", "quiet_start", "quiet_end"}
            sets = [f"{k} = ?" for k in fields if k in allowed]
            if sets:
                await db.execute(f"UPDATE subscribers SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                                 (*[fields[k] for k in fields if k in allowed], now, subscriber_id))
            if groups is not None:
                await db.execute("DELETE FROM subscriber_groups WHERE subscriber_id = ?", (subscriber_id,))
                await db.executemany("INSERT INTO subscriber_groups VALUES (?, ?)",
                                     [(subscriber_id, g) for g in groups])
            if contacts is not None:
                await db.execute("DELETE FROM contacts WHERE subscriber_id = ?", (subscriber_id,))
                await db.executemany(
                    "INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(subscriber_id, k, a, secrets.get(k), now) for k, a in contacts.items()])
        return True

    async def delete_subscriber(self, subscriber_id: str) -> bool:
        """Remove the subscriber and every contact; pending deliveries are cancelled. Coverage of past alerts
        keeps its counts (alert_targets holds no personal data)."""
        now = time.time()
        async with self.transaction() as db:
            cursor = await db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
            if cursor.rowcount == 0:
                return False
            await db.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                "last_error = 'subscriber deleted' WHERE subscriber_id = ? AND status IN ('queued', 'deferred')",
                (now, now, subscriber_id))
        return True
