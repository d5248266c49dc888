"""The PostgreSQL store: the scale-out back-end (the store and the work queue for any number of workers on any
number of hosts), assembled like the SQLite one — the pool and migrations (`pg_base`), subscribers
(`pg_subscribers`), and here meta, catalogue, keys and alerts, with thin delegations to the SQL modules of the
delivery queue and coverage (`pg_queue`), receipts, self-service, verification, analytics, the public column,
imports and the admin's extra queries. It passes the same tests as `SqliteStore` (tests marked `both_backends`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Iterable, Sequence
from typing import Any

from channels.base import Receipt
from notifier.store import (
    pg_admin,
    pg_analytics,
    pg_public,
    pg_queue,
    pg_receipts,
    pg_selfservice,
    pg_verification,
)
from notifier.store.errors import Conflict, NotFound
from notifier.store.pg_base import Record, rowcount
from notifier.store.pg_import import existing_contacts, insert_batch, insert_batches
from notifier.store.pg_subscribers import PgSubscriberTables
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
from notifier.store.sqlite_import import Batch

_INSERT_TOPIC = ("INSERT INTO topics (key, name, name_en, domain, department, channels, schedule, method, "
                 "supervision, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
_INSERT_ALERT = "INSERT INTO alerts VALUES (" + ", ".join(f"${n}" for n in range(1, 27)) + ")"


def _topic_params(t: dict[str, Any], now: float) -> tuple[Any, ...]:
    return (t["key"], t["name"], t.get("name_en"), t["domain"], t["department"], json.dumps(t["channels"]),
            t.get("schedule"), t.get("method"), t.get("supervision"), now)


class PostgresStore(PgSubscriberTables):
    """All persistence for one PostgreSQL database (or one schema of it, chosen by the url's search_path)."""

    # ------------------------------------------------------------ meta

    async def get_meta(self, key: str) -> str | None:
        value = await self.pool.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def set_meta_default(self, key: str, value: str) -> str:
        """Store `value` unless the key is set; returns what is stored."""
        async with self.transaction() as c:
            await c.execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, value)
            return str(await c.fetchval("SELECT value FROM meta WHERE key = $1", key))

    # ------------------------------------------------------------ catalogue

    async def add_catalogue(self, regions: Iterable[tuple[str, str, str | None]],
                            groups: Iterable[tuple[str, str, str | None]],
                            domains: Iterable[tuple[str, str, str | None]],
                            topics: Iterable[dict[str, Any]]) -> None:
        """Insert catalogue entries that are not there yet (an admin's later edits are kept)."""
        now = time.time()
        async with self.transaction() as c:
            await c.executemany("INSERT INTO regions VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", list(regions))
            await c.executemany("INSERT INTO population_groups VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                list(groups))
            await c.executemany("INSERT INTO domains VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", list(domains))
            await c.executemany(_INSERT_TOPIC + " ON CONFLICT DO NOTHING", [_topic_params(t, now) for t in topics])

    async def list_regions(self) -> list[Record]:
        return await self._read("SELECT code, name, name_en FROM regions ORDER BY code")

    async def list_groups(self) -> list[Record]:
        return await self._read("SELECT code, name, name_en FROM population_groups ORDER BY code")

    async def list_domains(self) -> list[Record]:
        return await self._read("SELECT code, name, name_en FROM domains ORDER BY code")

    async def list_topics(self) -> list[dict[str, Any]]:
        return [topic_record(r) for r in await self._read("SELECT * FROM topics ORDER BY key")]

    async def get_topic(self, key: str) -> dict[str, Any] | None:
        rows = await self._read("SELECT * FROM topics WHERE key = $1", key)
        return topic_record(rows[0]) if rows else None

    async def create_topic(self, topic: dict[str, Any]) -> None:
        async with self.transaction() as c:
            if await c.fetchval("SELECT 1 FROM topics WHERE key = $1", topic["key"]) is not None:
                raise Conflict(f"topic {topic['key']} exists")
            if await c.fetchval("SELECT 1 FROM domains WHERE code = $1", topic["domain"]) is None:
                raise NotFound(f"unknown domain {topic['domain']}", field="domain")
            await c.execute(_INSERT_TOPIC, *_topic_params(topic, time.time()))

    async def missing_codes(self, table: str, codes: Sequence[str]) -> list[str]:
        """Which of `codes` are not in the regions / population_groups / topics table."""
        column = {"regions": "code", "population_groups": "code", "topics": "key"}[table]
        if not codes:
            return []
        rows = await self._read(f"SELECT {column} FROM {table} WHERE {column} = ANY($1::text[])", list(codes))
        present = {r[0] for r in rows}
        return [c for c in codes if c not in present]

    # ------------------------------------------------------------ keys

    async def create_key(self, record: KeyRecord, key_hash: str) -> None:
        async with self.transaction() as c:
            await c.execute("INSERT INTO api_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            record.id, record.prefix, key_hash, record.role, json.dumps(record.topics),
                            record.label, record.created_at, record.revoked_at)

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        rows = await self._read("SELECT * FROM api_keys WHERE key_hash = $1", key_hash)
        return key_record(rows[0]) if rows else None

    async def list_keys(self) -> list[KeyRecord]:
        return [key_record(r) for r in await self._read("SELECT * FROM api_keys ORDER BY created_at")]

    async def revoke_key(self, id_or_hash: str, now: float) -> KeyRecord | None:
        async with self.transaction() as c:
            row = await c.fetchrow("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) "
                                   "WHERE id = $2 OR key_hash = $2 RETURNING *", now, id_or_hash)
        return key_record(row) if row is not None else None

    # ------------------------------------------------------------ self-service (SQL in pg_selfservice)

    async def delete_subscriptions(self, subscriber_id: str, topic: str | None) -> int:
        async with self.transaction() as c:
            return await pg_selfservice.delete_subscriptions(c, subscriber_id, topic)

    async def replace_subscriptions(self, subscriber_id: str,
                                    subscriptions: Sequence[tuple[str, list[str], int]]) -> bool:
        async with self.transaction() as c:
            return await pg_selfservice.replace_subscriptions(c, subscriber_id, subscriptions, time.time())

    async def held_data(self, subscriber_id: str) -> dict[str, Any]:
        async with self.pool.acquire() as c:
            return await pg_selfservice.held(c, subscriber_id)

    async def forget_subscriber(self, subscriber_id: str) -> bool:
        """Delete the subscriber everywhere. No VACUUM here (it cannot run in a transaction): see pg_selfservice."""
        async with self.transaction() as c:
            return await pg_selfservice.forget(c, subscriber_id, time.time())

    async def count_subscribers(self) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM subscribers"))

    async def bulk_create_subscribers(self, records: list[SubscriberRecord], secrets: list[dict[str, str]]) -> None:
        """Many subscribers in one transaction (imports, demo data)."""
        async with self.transaction() as c:
            await insert_batch(c, list(zip(records, secrets, strict=True)))

    async def existing_contacts(self, channel: str, addresses: Sequence[str]) -> set[str]:
        async with self.pool.acquire() as c:
            return await existing_contacts(c, channel, addresses)

    async def import_subscribers(self, batches: AsyncIterable[Batch]) -> int:
        """Bulk import: every batch in one transaction, so the import is stored whole or not at all."""
        async with self.transaction() as c:
            return await insert_batches(c, batches)

    # ------------------------------------------------------------ sign-up verification (SQL in pg_verification)

    async def put_consent(self, subscriber_id: str, version: str, given_at: float) -> None:
        async with self.transaction() as c:
            await pg_verification.put_consent(c, subscriber_id, version, given_at)

    async def put_verification(self, subscriber_id: str, channel: str, secret_hash: str, expires_at: float,
                               now: float) -> None:
        async with self.transaction() as c:
            await pg_verification.put_verification(c, subscriber_id, channel, secret_hash, expires_at, now)

    async def check_code(self, subscriber_id: str, channel: str, secret_hash: str, now: float,
                         max_attempts: int) -> str:
        async with self.transaction() as c:
            return await pg_verification.check_code(c, subscriber_id, channel, secret_hash, now, max_attempts)

    async def verify_contact(self, subscriber_id: str, channel: str, now: float) -> bool:
        async with self.transaction() as c:
            return await pg_verification.verify_contact(c, subscriber_id, channel, now)

    async def bind_by_reference(self, channel: str, secret_hash: str, address: str, order: Sequence[str],
                                now: float) -> str | None:
        async with self.transaction() as c:
            return await pg_verification.bind_by_reference(c, channel, secret_hash, address, order, now)

    async def contact_states(self, subscriber_id: str) -> dict[str, float | None]:
        async with self.pool.acquire() as c:
            return await pg_verification.contact_states(c, subscriber_id)

    async def take_rate_limit(self, scope: str, key_hash: str, now: float,
                              windows: Sequence[tuple[float, int]]) -> float | None:
        async with self.transaction() as c:
            return await pg_verification.take_rate_limit(c, scope, key_hash, now, windows)

    async def purge_unverified(self, before: float) -> int:
        async with self.transaction() as c:
            return await pg_verification.purge_unverified(c, before)

    # ------------------------------------------------------------ alerts

    async def alert_by_idempotency_key(self, key: str) -> AlertRow | None:
        rows = await self._read("SELECT * FROM alerts WHERE idempotency_key = $1", key)
        return alert_record(rows[0]) if rows else None

    async def create_alert(self, alert: AlertRow, targeting: Targeting) -> AlertRow:
        """Store the alert, its frozen target set and its delivery rows in one transaction. A concurrent publish
        with the same idempotency key waits on the unique index and then finds the first one's alert."""
        async with self.transaction() as c:
            if alert.idempotency_key is not None:
                status = await c.execute(_INSERT_ALERT + " ON CONFLICT (idempotency_key) DO NOTHING",
                                         *alert_params(alert))
                if rowcount(status) == 0:
                    return alert_record(await c.fetchrow("SELECT * FROM alerts WHERE idempotency_key = $1",
                                                   alert.idempotency_key))
            else:
                await c.execute(_INSERT_ALERT, *alert_params(alert))
            targeted = await pg_queue.fan_out(c, alert.id, targeting, alert.created_at)
            row = await c.fetchrow("UPDATE alerts SET targeted = $1 WHERE id = $2 RETURNING *", targeted, alert.id)
        return alert_record(row)

    async def get_alert(self, alert_id: str) -> AlertRow | None:
        rows = await self._read("SELECT * FROM alerts WHERE id = $1", alert_id)
        return alert_record(rows[0]) if rows else None

    async def list_alerts(self, limit: int, before: tuple[float, str] | None,
                          public_only: bool = False) -> tuple[list[AlertRow], int]:
        where = "WHERE public = 1" if public_only else "WHERE 1 = 1"
        total = await self.pool.fetchval(f"SELECT COUNT(*) FROM alerts {where}")
        if before is None:
            rows = await self._read(f"SELECT * FROM alerts {where} ORDER BY created_at DESC, id DESC LIMIT $1", limit)
        else:
            rows = await self._read(f"SELECT * FROM alerts {where} AND (created_at, id) < ($1::float8, $2::text) "
                                    "ORDER BY created_at DESC, id DESC LIMIT $3", *before, limit)
        return [alert_record(r) for r in rows], int(total)

    async def accepted_count(self, alert_id: str) -> int:
        """How many targets had a delivery accepted (they saw the alert)."""
        return int(await self.pool.fetchval("SELECT COUNT(accepted_at) FROM alert_targets WHERE alert_id = $1",
                                            alert_id))

    async def cancel_alert(self, alert_id: str, now: float) -> int:
        """Mark the alert cancelled and cancel its pending deliveries; returns how many were stopped."""
        async with self.transaction() as c:
            await c.execute("UPDATE alerts SET status = 'cancelled', cancelled_at = COALESCE(cancelled_at, $1) "
                            "WHERE id = $2", now, alert_id)
            return rowcount(await c.execute(
                "UPDATE deliveries SET status = 'cancelled', finished_at = $1, updated_at = $1, "
                "lease_owner = NULL, lease_until = NULL WHERE alert_id = $2 AND status IN ('queued', 'deferred')",
                now, alert_id))

    # ------------------------------------------------------------ deliveries and queue (SQL in pg_queue)

    async def list_deliveries(self, alert_id: str, limit: int, after: str | None,
                              status: str | None = None, channel: str | None = None) -> tuple[list[DeliveryRow], int]:
        async with self.pool.acquire() as c:
            return await pg_queue.list_deliveries(c, alert_id, limit, after, status, channel)

    async def claim(self, owner: str, now: float, lease_until: float, limit: int) -> list[ClaimedDelivery]:
        async with self.transaction() as c:
            return await pg_queue.claim(c, owner, now, lease_until, limit)

    async def record(self, owner: str, outcomes: list[Outcome], now: float) -> list[str]:
        async with self.transaction() as c:
            return await pg_queue.record(c, owner, outcomes, now)

    async def take_tokens(self, name: str, rate: float, capacity: float, tokens: float) -> float:
        async with self.transaction() as c:
            return await pg_queue.take_tokens(c, name, rate, capacity, tokens, time.time())

    async def extend_lease(self, owner: str, until: float) -> int:
        async with self.transaction() as c:
            return await pg_queue.extend_lease(c, owner, until)

    async def sweep(self, now: float, max_attempts: int = 10) -> dict[str, int]:
        """Reclaim expired leases, release scheduled alerts, expire, fall back after silent receipts."""
        async with self.transaction() as c:
            return await pg_queue.sweep(c, now, max_attempts)

    async def next_due(self) -> float | None:
        async with self.pool.acquire() as c:
            return await pg_queue.next_due(c)

    async def coverage_rows(self, alert_id: str) -> CoverageRows:
        # One snapshot for every figure (REPEATABLE READ), as SQLite's reader sees one.
        async with self.pool.acquire() as c, c.transaction(isolation="repeatable_read", readonly=True):
            return await pg_queue.coverage_rows(c, alert_id)

    async def apply_receipts(self, channel: str, receipts: list[Receipt], now: float) -> dict[str, int]:
        async with self.transaction() as c:
            return await pg_receipts.apply_receipts(c, channel, receipts, now)

    async def disable_contacts(self, channel: str, address: str, reason: str, now: float) -> int:
        async with self.transaction() as c:
            return await pg_receipts.disable_contacts(c, channel, address, reason, now)

    async def queue_stats(self) -> dict[str, int]:
        async with self.pool.acquire() as c:
            return await pg_queue.queue_stats(c)

    # ------------------------------------------------------------ analytics (SQL in pg_analytics)

    async def put_population(self, rows: Sequence[PopulationRecord], now: float) -> None:
        """Replace every population row in one transaction."""
        async with self.transaction() as c:
            await pg_analytics.put_population(c, rows, now)

    async def population(self) -> list[PopulationRecord]:
        async with self.pool.acquire() as c:
            return await pg_analytics.population(c)

    async def period_cells(self, period: PeriodFilter) -> list[PeriodCell]:
        async with self.pool.acquire() as c:
            return await pg_analytics.period_cells(c, period)

    async def period_reach_times(self, period: PeriodFilter, dimension: str | None,
                                 ranks: Sequence[int]) -> dict[str, dict[int, float]]:
        async with self.pool.acquire() as c:
            return await pg_analytics.period_reach_times(c, period, dimension, ranks)

    async def coverage_breakdown(self, alert_id: str) -> list[BreakdownRecord]:
        async with self.pool.acquire() as c:
            return await pg_analytics.coverage_breakdown(c, alert_id)

    async def target_regions(self, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
        async with self.pool.acquire() as c:
            return await pg_analytics.target_regions(c, alert_id, subscriber_ids)

    # ------------------------------------------------------------ the public column (SQL in pg_public)

    async def public_alerts(self, where: PublicFilter, limit: int, offset: int,
                            now: float) -> tuple[list[AlertRow], int]:
        async with self.pool.acquire() as c:
            rows, total = await pg_public.public_alerts(c, where, limit, offset, now)
        return [alert_record(r) for r in rows], total

    async def public_follow_ups(self, alert_ids: Sequence[str], now: float) -> list[AlertRow]:
        async with self.pool.acquire() as c:
            return [alert_record(r) for r in await pg_public.public_follow_ups(c, alert_ids, now)]

    # ------------------------------------------------------------ the admin's extra queries (SQL in pg_admin)

    async def admin_alert_figures(self, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
        async with self.pool.acquire() as c:
            return await pg_admin.alert_figures(c, alert_ids)

    async def admin_reach_curve(self, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
        async with self.pool.acquire() as c:
            return await pg_admin.reach_curve(c, alert_id)

    async def admin_failure_errors(self, alert_id: str) -> list[tuple[str, str, str | None, int]]:
        async with self.pool.acquire() as c:
            return await pg_admin.failure_errors(c, alert_id)
