"""The SQLite store: the embedded default. WAL with synchronous=FULL (a committed delivery survives power loss),
`BEGIN IMMEDIATE` for every write (no SQLITE_BUSY upgrade deadlocks), one writer connection serialised by a lock
and one reader connection (WAL readers never block the writer).

Catalogue, keys, subscribers and alerts live here; the delivery queue and coverage SQL in `sqlite_queue`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from channels.base import Receipt
from notifier.store import (
    sqlite_analytics,
    sqlite_public,
    sqlite_queue,
    sqlite_receipts,
    sqlite_selfservice,
    sqlite_verification,
)
from notifier.store.errors import Conflict, NotFound
from notifier.store.records import (
    AlertRow,
    BreakdownRecord,
    ClaimedDelivery,
    CoverageRows,
    DeliveryRow,
    KeyRecord,
    Outcome,
    PeriodCell,
    PeriodFilter,
    PopulationRecord,
    SubscriberRecord,
    Targeting,
)
from notifier.store.records_public import PublicFilter
from notifier.store.sqlite_import import Batch, existing_contacts, insert_batch, insert_batches

Row = sqlite3.Row


def _split_statements(script: str) -> list[str]:
    """Statements of a migration file, so that they run inside one explicit transaction."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(ln.strip().startswith("--") for ln in buffer.strip().splitlines()):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def migrations() -> list[tuple[int, str]]:
    """(version, sql) of every bundled migration, in order."""
    folder = resources.files("notifier.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteStore:
    """All persistence for one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock: Any = None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        import asyncio

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        self._writer = await self._connect()
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000",
                       "secure_delete=ON"):  # deleted personal data is zeroed, not left in free pages
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def upgrade(self) -> list[int]:
        """Apply the migrations not yet applied; returns the versions applied now."""
        async with self.transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "applied_at REAL NOT NULL)")
            done = {r[0] for r in await db.execute_fetchall("SELECT version FROM schema_migrations")}
            applied = []
            for version, sql in migrations():
                if version in done:
                    continue
                for statement in _split_statements(sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                applied.append(version)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any error."""
        if self._writer is None or self._lock is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.reader.execute_fetchall(sql, params))

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    # ------------------------------------------------------------ meta

    async def get_meta(self, key: str) -> str | None:
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_meta_default(self, key: str, value: str) -> str:
        """Store `value` unless the key is set; returns what is stored."""
        async with self.transaction() as db:
            await db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
            rows = list(await db.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,)))
        return str(rows[0][0])

    # ------------------------------------------------------------ catalogue

    async def add_catalogue(self, regions: Iterable[tuple[str, str, str | None]],
                            groups: Iterable[tuple[str, str, str | None]],
                            domains: Iterable[tuple[str, str, str | None]],
                            topics: Iterable[dict[str, Any]]) -> None:
        """Insert catalogue entries that are not there yet (an admin's later edits are kept)."""
        now = time.time()
        async with self.transaction() as db:
            await db.executemany("INSERT INTO regions VALUES (?, ?, ?) ON CONFLICT DO NOTHING", list(regions))
            await db.executemany("INSERT INTO population_groups VALUES (?, ?, ?) ON CONFLICT DO NOTHING", list(groups))
            await db.executemany("INSERT INTO domains VALUES (?, ?, ?) ON CONFLICT DO NOTHING", list(domains))
            await db.executemany(
                "INSERT INTO topics (key, name, name_en, domain, department, channels, schedule, method, "
                "supervision, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(t["key"], t["name"], t.get("name_en"), t["domain"], t["department"], json.dumps(t["channels"]),
                  t.get("schedule"), t.get("method"), t.get("supervision"), now) for t in topics])

    async def list_regions(self) -> list[Row]:
        return await self._read("SELECT code, name, name_en FROM regions ORDER BY code")

    async def list_groups(self) -> list[Row]:
        return await self._read("SELECT code, name, name_en FROM population_groups ORDER BY code")

    async def list_domains(self) -> list[Row]:
        return await self._read("SELECT code, name, name_en FROM domains ORDER BY code")

    async def list_topics(self) -> list[dict[str, Any]]:
        rows = await self._read("SELECT * FROM topics ORDER BY key")
        return [_topic(r) for r in rows]

    async def get_topic(self, key: str) -> dict[str, Any] | None:
        rows = await self._read("SELECT * FROM topics WHERE key = ?", (key,))
        return _topic(rows[0]) if rows else None

    async def create_topic(self, topic: dict[str, Any]) -> None:
        async with self.transaction() as db:
            if list(await db.execute_fetchall("SELECT 1 FROM topics WHERE key = ?", (topic["key"],))):
                raise Conflict(f"topic {topic['key']} exists")
            if not list(await db.execute_fetchall("SELECT 1 FROM domains WHERE code = ?", (topic["domain"],))):
                raise NotFound(f"unknown domain {topic['domain']}", field="domain")
            await db.execute(
                "INSERT INTO topics (key, name, name_en, domain, department, channels, schedule, method, "
                "supervision, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (topic["key"], topic["name"], topic.get("name_en"), topic["domain"], topic["department"],
                 json.dumps(topic["channels"]), topic.get("schedule"), topic.get("method"),
                 topic.get("supervision"), time.time()))

    async def missing_codes(self, table: str, codes: Sequence[str]) -> list[str]:
        """Which of `codes` are not in the regions / population_groups table."""
        column = {"regions": "code", "population_groups": "code", "topics": "key"}[table]
        if not codes:
            return []
        marks = ",".join("?" * len(codes))
        rows = await self._read(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", codes)
        present = {r[0] for r in rows}
        return [c for c in codes if c not in present]

    # ------------------------------------------------------------ keys

    async def create_key(self, record: KeyRecord, key_hash: str) -> None:
        async with self.transaction() as db:
            await db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (record.id, record.prefix, key_hash, record.role, json.dumps(record.topics),
                              record.label, record.created_at, record.revoked_at))

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        rows = await self._read("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _key(rows[0]) if rows else None

    async def list_keys(self) -> list[KeyRecord]:
        return [_key(r) for r in await self._read("SELECT * FROM api_keys ORDER BY created_at")]

    async def revoke_key(self, id_or_hash: str, now: float) -> KeyRecord | None:
        async with self.transaction() as db:
            await db.execute("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? OR key_hash = ?",
                             (now, id_or_hash, id_or_hash))
            rows = list(await db.execute_fetchall("SELECT * FROM api_keys WHERE id = ? OR key_hash = ?",
                                                  (id_or_hash, id_or_hash)))
        return _key(rows[0]) if rows else None

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

    # ------------------------------------------------------------ self-service (SQL in sqlite_selfservice)

    async def delete_subscriptions(self, subscriber_id: str, topic: str | None) -> int:
        async with self.transaction() as db:
            return await sqlite_selfservice.delete_subscriptions(db, subscriber_id, topic)

    async def replace_subscriptions(self, subscriber_id: str,
                                    subscriptions: Sequence[tuple[str, list[str], int]]) -> bool:
        async with self.transaction() as db:
            return await sqlite_selfservice.replace_subscriptions(db, subscriber_id, subscriptions, time.time())

    async def held_data(self, subscriber_id: str) -> dict[str, Any]:
        return await sqlite_selfservice.held(self.reader, subscriber_id)

    async def forget_subscriber(self, subscriber_id: str) -> bool:
        """Delete the subscriber everywhere, then checkpoint and truncate the WAL so no copy of a contact stays."""
        async with self.transaction() as db:
            found = await sqlite_selfservice.forget(db, subscriber_id, time.time())
        if found and self._lock is not None and self._writer is not None:
            async with self._lock:
                await sqlite_selfservice.checkpoint(self._writer)
        return found

    async def count_subscribers(self) -> int:
        return int((await self._read("SELECT COUNT(*) FROM subscribers"))[0][0])

    async def bulk_create_subscribers(self, records: list[SubscriberRecord], secrets: list[dict[str, str]]) -> None:
        """Many subscribers in one transaction (imports, demo data)."""
        async with self.transaction() as db:
            await insert_batch(db, list(zip(records, secrets, strict=True)))

    async def existing_contacts(self, channel: str, addresses: Sequence[str]) -> set[str]:
        """Which of `addresses` some subscriber already holds on `channel` (disabled contacts too)."""
        return await existing_contacts(self.reader, channel, addresses)

    async def import_subscribers(self, batches: AsyncIterable[Batch]) -> int:
        """Bulk import: every batch in one write transaction, so the import is stored whole or not at all."""
        async with self.transaction() as db:
            return await insert_batches(db, batches)

    # ------------------------------------------------------------ sign-up verification (SQL in sqlite_verification)

    async def put_consent(self, subscriber_id: str, version: str, given_at: float) -> None:
        async with self.transaction() as db:
            await sqlite_verification.put_consent(db, subscriber_id, version, given_at)

    async def put_verification(self, subscriber_id: str, channel: str, secret_hash: str, expires_at: float,
                               now: float) -> None:
        async with self.transaction() as db:
            await sqlite_verification.put_verification(db, subscriber_id, channel, secret_hash, expires_at, now)

    async def check_code(self, subscriber_id: str, channel: str, secret_hash: str, now: float,
                         max_attempts: int) -> str:
        async with self.transaction() as db:
            return await sqlite_verification.check_code(db, subscriber_id, channel, secret_hash, now, max_attempts)

    async def verify_contact(self, subscriber_id: str, channel: str, now: float) -> bool:
        async with self.transaction() as db:
            return await sqlite_verification.verify_contact(db, subscriber_id, channel, now)

    async def bind_by_reference(self, channel: str, secret_hash: str, address: str, order: Sequence[str],
                                now: float) -> str | None:
        async with self.transaction() as db:
            return await sqlite_verification.bind_by_reference(db, channel, secret_hash, address, order, now)

    async def contact_states(self, subscriber_id: str) -> dict[str, float | None]:
        return await sqlite_verification.contact_states(self.reader, subscriber_id)

    async def take_rate_limit(self, scope: str, key_hash: str, now: float,
                              windows: Sequence[tuple[float, int]]) -> float | None:
        async with self.transaction() as db:
            return await sqlite_verification.take_rate_limit(db, scope, key_hash, now, windows)

    async def purge_unverified(self, before: float) -> int:
        async with self.transaction() as db:
            return await sqlite_verification.purge_unverified(db, before)

    # ------------------------------------------------------------ alerts

    async def alert_by_idempotency_key(self, key: str) -> AlertRow | None:
        rows = await self._read("SELECT * FROM alerts WHERE idempotency_key = ?", (key,))
        return _alert(rows[0]) if rows else None

    async def create_alert(self, alert: AlertRow, targeting: Targeting) -> AlertRow:
        """Store the alert, its frozen target set and its delivery rows in one transaction."""
        async with self.transaction() as db:
            if alert.idempotency_key is not None:
                rows = list(await db.execute_fetchall("SELECT * FROM alerts WHERE idempotency_key = ?",
                                                      (alert.idempotency_key,)))
                if rows:
                    return _alert(rows[0])
            await db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)", _alert_params(alert))
            targeted = await sqlite_queue.fan_out(db, alert.id, targeting, alert.created_at)
            await db.execute("UPDATE alerts SET targeted = ? WHERE id = ?", (targeted, alert.id))
            rows = list(await db.execute_fetchall("SELECT * FROM alerts WHERE id = ?", (alert.id,)))
        return _alert(rows[0])

    async def get_alert(self, alert_id: str) -> AlertRow | None:
        rows = await self._read("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _alert(rows[0]) if rows else None

    async def list_alerts(self, limit: int, before: tuple[float, str] | None,
                          public_only: bool = False) -> tuple[list[AlertRow], int]:
        where = "WHERE public = 1" if public_only else "WHERE 1 = 1"
        total = (await self._read(f"SELECT COUNT(*) FROM alerts {where}"))[0][0]
        if before is None:
            rows = await self._read(f"SELECT * FROM alerts {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                                    (limit,))
        else:
            rows = await self._read(f"SELECT * FROM alerts {where} AND (created_at, id) < (?, ?) "
                                    "ORDER BY created_at DESC, id DESC LIMIT ?", (*before, limit))
        return [_alert(r) for r in rows], int(total)

    async def accepted_count(self, alert_id: str) -> int:
        """How many targets had a delivery accepted (they saw the alert)."""
        rows = await self._read("SELECT COUNT(accepted_at) FROM alert_targets WHERE alert_id = ?", (alert_id,))
        return int(rows[0][0])

    async def cancel_alert(self, alert_id: str, now: float) -> int:
        """Mark the alert cancelled and cancel its pending deliveries; returns how many were stopped."""
        async with self.transaction() as db:
            await db.execute("UPDATE alerts SET status = 'cancelled', cancelled_at = COALESCE(cancelled_at, ?) "
                             "WHERE id = ?", (now, alert_id))
            cursor = await db.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = ?, updated_at = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE alert_id = ? AND status IN ('queued', 'deferred')",
                (now, now, alert_id))
        return cursor.rowcount

    # ------------------------------------------------------------ deliveries and queue

    async def list_deliveries(self, alert_id: str, limit: int, after: str | None,
                              status: str | None = None, channel: str | None = None) -> tuple[list[DeliveryRow], int]:
        return await sqlite_queue.list_deliveries(self.reader, alert_id, limit, after, status, channel)

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[ClaimedDelivery]:
        async with self.transaction() as db:
            return await sqlite_queue.claim(db, owner, now, lease_until, limit)

    async def record(self, owner: str, outcomes: list[Outcome], now: float) -> list[str]:
        async with self.transaction() as db:
            return await sqlite_queue.record(db, owner, outcomes, now)

    async def extend_lease(self, owner: str, until: float) -> int:
        async with self.transaction() as db:
            return await sqlite_queue.extend_lease(db, owner, until)

    async def sweep(self, now: float, max_attempts: int = 10) -> dict[str, int]:
        """Reclaim expired leases, release scheduled alerts, expire, fall back after silent receipts."""
        async with self.transaction() as db:
            return await sqlite_queue.sweep(db, now, max_attempts)

    async def next_due(self) -> float | None:
        return await sqlite_queue.next_due(self.reader)

    async def coverage_rows(self, alert_id: str) -> CoverageRows:
        return await sqlite_queue.coverage_rows(self.reader, alert_id)

    async def apply_receipts(self, channel: str, receipts: list[Receipt], now: float) -> dict[str, int]:
        async with self.transaction() as db:
            return await sqlite_receipts.apply_receipts(db, channel, receipts, now)

    async def disable_contacts(self, channel: str, address: str, reason: str, now: float) -> int:
        async with self.transaction() as db:
            return await sqlite_receipts.disable_contacts(db, channel, address, reason, now)

    async def queue_stats(self) -> dict[str, int]:
        return await sqlite_queue.queue_stats(self.reader)

    # ------------------------------------------------------------ analytics (SQL in sqlite_analytics)

    async def put_population(self, rows: Sequence[PopulationRecord], now: float) -> None:
        """Replace every population row in one transaction."""
        async with self.transaction() as db:
            await sqlite_analytics.put_population(db, rows, now)

    async def population(self) -> list[PopulationRecord]:
        return await sqlite_analytics.population(self.reader)

    async def period_cells(self, period: PeriodFilter) -> list[PeriodCell]:
        return await sqlite_analytics.period_cells(self.reader, period)

    async def period_reach_times(self, period: PeriodFilter, dimension: str | None,
                                 ranks: Sequence[int]) -> dict[str, dict[int, float]]:
        return await sqlite_analytics.period_reach_times(self.reader, period, dimension, ranks)

    async def coverage_breakdown(self, alert_id: str) -> list[BreakdownRecord]:
        return await sqlite_analytics.coverage_breakdown(self.reader, alert_id)

    async def target_regions(self, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
        return await sqlite_analytics.target_regions(self.reader, alert_id, subscriber_ids)

    # ------------------------------------------------------------ the public column (SQL in sqlite_public)

    async def public_alerts(self, where: PublicFilter, limit: int, offset: int,
                            now: float) -> tuple[list[AlertRow], int]:
        rows, total = await sqlite_public.public_alerts(self.reader, where, limit, offset, now)
        return [_alert(r) for r in rows], total

    async def public_follow_ups(self, alert_ids: Sequence[str], now: float) -> list[AlertRow]:
        return [_alert(r) for r in await sqlite_public.public_follow_ups(self.reader, alert_ids, now)]


def _topic(row: Row) -> dict[str, Any]:
    data = {k: row[k] for k in row.keys() if k != "created_at"}
    data["channels"] = json.loads(row["channels"])
    return data


def _key(row: Row) -> KeyRecord:
    return KeyRecord(id=row["id"], prefix=row["prefix"], role=row["role"], topics=json.loads(row["topics"]),
                     label=row["label"], created_at=row["created_at"], revoked_at=row["revoked_at"])


def _alert(row: Row) -> AlertRow:
    return AlertRow(
        id=row["id"], topic=row["topic"], msg_type=row["msg_type"], references_id=row["references_id"],
        headline=row["headline"], body=row["body"], instruction=row["instruction"], severity=row["severity"],
        urgency=row["urgency"], level=row["level"], target_regions=json.loads(row["target_regions"]),
        target_groups=json.loads(row["target_groups"]), policy=row["policy"], fallback_after=row["fallback_after"],
        data=json.loads(row["data"]), expires_at=row["expires_at"], scheduled_at=row["scheduled_at"],
        idempotency_key=row["idempotency_key"], request_hash=row["request_hash"], public=bool(row["public"]),
        status=row["status"], targeted=row["targeted"], publisher=row["publisher"], department=row["department"],
        created_at=row["created_at"], cancelled_at=row["cancelled_at"])


def _alert_params(a: AlertRow) -> tuple[Any, ...]:
    return (a.id, a.topic, a.msg_type, a.references_id, a.headline, a.body, a.instruction, a.severity, a.urgency,
            a.level, json.dumps(a.target_regions), json.dumps(a.target_groups), a.policy, a.fallback_after,
            json.dumps(a.data, ensure_ascii=False), a.expires_at, a.scheduled_at, a.idempotency_key, a.request_hash,
            int(a.public), a.status, a.targeted, a.publisher, a.department, a.created_at, a.cancelled_at)
