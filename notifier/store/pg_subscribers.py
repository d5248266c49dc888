"""Subscribers in PostgreSQL: who they are, their groups, contacts and subscriptions (reads hydrate in four queries
whatever the page size). The same statements as `sqlite_subscribers`, with `$n` and `= ANY($n::text[])`."""

from __future__ import annotations

import time
from typing import Any

from notifier.store.pg_base import Conn, PgBase, Record, rowcount
from notifier.store.records import SubscriberRecord

INSERT_SUBSCRIBER = "INSERT INTO subscribers VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
INSERT_GROUP = "INSERT INTO subscriber_groups VALUES ($1, $2)"
INSERT_CONTACT = ("INSERT INTO contacts (subscriber_id, channel, address, secret, verified_at) "
                  "VALUES ($1, $2, $3, $4, $5)")
INSERT_SUBSCRIPTION = "INSERT INTO subscriptions VALUES ($1, $2, $3, $4)"
INSERT_SUBSCRIPTION_CHANNEL = "INSERT INTO subscription_channels VALUES ($1, $2, $3, $4)"


class PgSubscriberTables(PgBase):
    """The subscriber half of the PostgreSQL store."""

    async def create_subscriber(self, record: SubscriberRecord, secrets: dict[str, str]) -> None:
        async with self.transaction() as c:
            await c.execute(INSERT_SUBSCRIBER, record.id, record.region, record.locale, record.quiet_start,
                            record.quiet_end, record.status, record.consent_source, record.consent_at,
                            record.created_at, record.created_at)
            await self._write_children(c, record, secrets)

    async def _write_children(self, c: Conn, record: SubscriberRecord, secrets: dict[str, str]) -> None:
        verified = record.created_at if record.status == "active" else None
        await c.executemany(INSERT_GROUP, [(record.id, g) for g in record.groups])
        await c.executemany(INSERT_CONTACT, [(record.id, kind, addr, secrets.get(kind), verified)
                                             for kind, addr in record.contacts.items()])
        for topic, channels, rank in record.subscriptions:
            await self._add_subscription(c, record.id, topic, channels, rank, record.created_at)

    @staticmethod
    async def _add_subscription(c: Conn, subscriber_id: str, topic: str, channels: list[str], rank: int,
                                now: float) -> None:
        await c.execute(INSERT_SUBSCRIPTION, subscriber_id, topic, rank, now)
        await c.executemany(INSERT_SUBSCRIPTION_CHANNEL,
                            [(subscriber_id, topic, ch, pos) for pos, ch in enumerate(channels)])

    async def put_subscription(self, subscriber_id: str, topic: str, channels: list[str], rank: int) -> bool:
        """Create or replace one subscription; False when the subscriber does not exist."""
        async with self.transaction() as c:
            if await c.fetchval("SELECT 1 FROM subscribers WHERE id = $1", subscriber_id) is None:
                return False
            await c.execute("DELETE FROM subscriptions WHERE subscriber_id = $1 AND topic = $2", subscriber_id, topic)
            await self._add_subscription(c, subscriber_id, topic, channels, rank, time.time())
        return True

    async def get_subscriber(self, subscriber_id: str) -> SubscriberRecord | None:
        rows = await self._read("SELECT * FROM subscribers WHERE id = $1", subscriber_id)
        if not rows:
            return None
        return (await self._hydrate(rows))[0]

    async def _hydrate(self, rows: list[Record]) -> list[SubscriberRecord]:
        ids = [r["id"] for r in rows]
        groups: dict[str, list[str]] = {i: [] for i in ids}
        contacts: dict[str, dict[str, str]] = {i: {} for i in ids}
        disabled: dict[str, dict[str, str]] = {i: {} for i in ids}
        subs: dict[str, dict[str, tuple[list[str], int]]] = {i: {} for i in ids}
        for r in await self._read("SELECT * FROM subscriber_groups WHERE subscriber_id = ANY($1::text[]) "
                                  "ORDER BY group_code", ids):
            groups[r["subscriber_id"]].append(r["group_code"])
        for r in await self._read("SELECT * FROM contacts WHERE subscriber_id = ANY($1::text[])", ids):
            contacts[r["subscriber_id"]][r["channel"]] = r["address"]
            if r["disabled_at"] is not None:
                disabled[r["subscriber_id"]][r["channel"]] = r["disabled_reason"] or "disabled"
        for r in await self._read("SELECT * FROM subscriptions WHERE subscriber_id = ANY($1::text[]) "
                                  "ORDER BY topic", ids):
            subs[r["subscriber_id"]][r["topic"]] = ([], r["min_severity"])
        for r in await self._read("SELECT * FROM subscription_channels WHERE subscriber_id = ANY($1::text[]) "
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
            rows = await self._read("SELECT * FROM subscribers ORDER BY created_at, id LIMIT $1", limit)
        else:
            rows = await self._read("SELECT * FROM subscribers WHERE (created_at, id) > ($1::float8, $2::text) "
                                    "ORDER BY created_at, id LIMIT $3", *after, limit)
        return (await self._hydrate(rows) if rows else []), int(total)

    async def update_subscriber(self, subscriber_id: str, fields: dict[str, Any], contacts: dict[str, str] | None,
                                secrets: dict[str, str], groups: list[str] | None) -> bool:
        now = time.time()
        async with self.transaction() as c:
            if await c.fetchval("SELECT 1 FROM subscribers WHERE id = $1", subscriber_id) is None:
                return False
            allowed = [k for k in fields if k in {"region", "locale", "quiet_start", "quiet_end"}]
            if allowed:
                sets = ", ".join(f"{k} = ${n}" for n, k in enumerate(allowed, start=3))
                await c.execute(f"UPDATE subscribers SET {sets}, updated_at = $1 WHERE id = $2",
                                now, subscriber_id, *[fields[k] for k in allowed])
            if groups is not None:
                await c.execute("DELETE FROM subscriber_groups WHERE subscriber_id = $1", subscriber_id)
                await c.executemany(INSERT_GROUP, [(subscriber_id, g) for g in groups])
            if contacts is not None:
                await c.execute("DELETE FROM contacts WHERE subscriber_id = $1", subscriber_id)
                await c.executemany(INSERT_CONTACT,
                                    [(subscriber_id, k, a, secrets.get(k), now) for k, a in contacts.items()])
        return True

    async def delete_subscriber(self, subscriber_id: str) -> bool:
        """Remove the subscriber and every contact; pending deliveries are cancelled. Coverage of past alerts
        keeps its counts (alert_targets holds no personal data)."""
        now = time.time()
        async with self.transaction() as c:
            if rowcount(await c.execute("DELETE FROM subscribers WHERE id = $1", subscriber_id)) == 0:
                return False
            await c.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = $1, updated_at = $1, "
                "last_error = 'subscriber deleted' WHERE subscriber_id = $2 AND status IN ('queued', 'deferred')",
                now, subscriber_id)
        return True
