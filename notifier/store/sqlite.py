"""The SQLite store: the embedded default, assembled from its parts — connections and migrations
(`sqlite_base`), subscribers (`sqlite_subscribers`), and here meta, catalogue, keys and alerts, with thin
delegations to the SQL modules of the delivery queue and coverage (`sqlite_queue`), receipts, self-service,
verification, analytics, the public column and imports.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

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
from notifier.store.rows import alert_params, alert_record, key_record, topic_record
from notifier.store.sqlite_base import Row
from notifier.store.sqlite_import import Batch, existing_contacts, insert_batch, insert_batches
from notifier.store.sqlite_subscribers import SubscriberTables


class SqliteStore(SubscriberTables):
    """All persistence for one SQLite database file."""

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
        return [topic_record(r) for r in rows]

    async def get_topic(self, key: str) -> dict[str, Any] | None:
        rows = await self._read("SELECT * FROM topics WHERE key = ?", (key,))
        return topic_record(rows[0]) if rows else None

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
        return key_record(rows[0]) if rows else None

    async def list_keys(self) -> list[KeyRecord]:
        return [key_record(r) for r in await self._read("SELECT * FROM api_keys ORDER BY created_at")]

    async def revoke_key(self, id_or_hash: str, now: float) -> KeyRecord | None:
        async with self.transaction() as db:
            await db.execute("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? OR key_hash = ?",
                             (now, id_or_hash, id_or_hash))
            rows = list(await db.execute_fetchall("SELECT * FROM api_keys WHERE id = ? OR key_hash = ?",
                                                  (id_or_hash, id_or_hash)))
        return key_record(rows[0]) if rows else None

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
        return alert_record(rows[0]) if rows else None

    async def create_alert(self, alert: AlertRow, targeting: Targeting) -> AlertRow:
        """Store the alert, its frozen target set and its delivery rows in one transaction."""
        async with self.transaction() as db:
            if alert.idempotency_key is not None:
                rows = list(await db.execute_fetchall("SELECT * FROM alerts WHERE idempotency_key = ?",
                                                      (alert.idempotency_key,)))
                if rows:
                    return alert_record(rows[0])
            await db.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)", alert_params(alert))
            targeted = await sqlite_queue.fan_out(db, alert.id, targeting, alert.created_at)
            await db.execute("UPDATE alerts SET targeted = ? WHERE id = ?", (targeted, alert.id))
            rows = list(await db.execute_fetchall("SELECT * FROM alerts WHERE id = ?", (alert.id,)))
        return alert_record(rows[0])

    async def get_alert(self, alert_id: str) -> AlertRow | None:
        rows = await self._read("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return alert_record(rows[0]) if rows else None

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
        return [alert_record(r) for r in rows], int(total)

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

    async def take_tokens(self, name: str, rate: float, capacity: float, tokens: float) -> float:
        async with self.transaction() as db:
            return await sqlite_queue.take_tokens(db, name, rate, capacity, tokens, time.time())

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
        return [alert_record(r) for r in rows], total

    async def public_follow_ups(self, alert_ids: Sequence[str], now: float) -> list[AlertRow]:
        return [alert_record(r) for r in await sqlite_public.public_follow_ups(self.reader, alert_ids, now)]
