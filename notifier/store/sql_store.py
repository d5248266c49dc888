"""The store: one class over either back-end's connections (`SqliteBackend`, `PgBackend`), each method one
transaction (writes) or one read around a query module named for the domain — queue, receipts, lifecycle,
coverage, analytics, subscribers, self-service, verification, public column, admin views, catalogue.

Nothing here decides anything: the rules are in the query modules and `states`; this class only says which
operations are atomic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from notifier.audit import CITIZEN, CLI, SYSTEM, Actor, AuditAction, AuditHead, object_ref
from notifier.cap.ids import DEFAULT_SENDER, CapIdentity
from notifier.states import AlertStatus, Priority
from notifier.store import (
    admin,
    alerts,
    analytics,
    assisted,
    audit_log,
    cap,
    catalogue,
    coverage,
    deadlines,
    fallback,
    fan_out_later,
    lifecycle,
    migrate,
    public,
    queue,
    receipts,
    selfservice,
    subscribers,
    verification,
)
from notifier.store.access_store import AccessMethods
from notifier.store.db import Backend, Db, Row, T
from notifier.store.records import (
    AlertRow,
    AssistedRecord,
    AssistItem,
    BreakdownRecord,
    ClaimedDelivery,
    Confirmation,
    CoverageRows,
    DeliveryRow,
    DeliveryUpdate,
    KeyRecord,
    PeriodCell,
    PeriodFilter,
    PopulationRecord,
    SubscriberRecord,
    Targeting,
)
from notifier.store.records_public import PublicFilter
from notifier.store.subscribers import Batch
from notifier.targeting import delivery_priority

log = logging.getLogger("notifier.store")

if TYPE_CHECKING:  # the channels (and the HTTP client under them) are not the store's to import
    from channels.base import Receipt
    from channels.voice.common import CallPolicy


class Store(AccessMethods):
    """All persistence of one database, SQLite or PostgreSQL: the one interface the service asks of it (getting
    in — limits, manage codes, dashboard sessions — in `access_store.py`)."""

    def __init__(self, backend: Backend, cap_identity: CapIdentity | None = None,
                 deliveries_after_answer_from: int | None = None, fan_out_slice: int | None = None) -> None:
        self.backend = backend
        self.dialect = backend.dialect.name
        # Who our alerts are in CAP: every alert is named in the transaction that stores it (store/cap.py).
        self.cap_identity = cap_identity or CapIdentity(DEFAULT_SENDER)
        self._number_key = b""
        # A publish to at least this many people answers before its delivery rows exist (`fan_out_later`; None:
        # never), and this process adds them at once: the additions under way, waited for by `close`.
        self.deliveries_after_answer_from = deliveries_after_answer_from
        self.fan_out_slice = fan_out_slice or backend.dialect.fan_out_slice  # people a transaction adds rows of
        self._finishing: set[asyncio.Task[None]] = set()
        # This process's workers, told when such rows are added (other processes are told by `Backend.queued`).
        self.fanned_out_here: Callable[[AlertRow], None] = lambda alert: None

    @property
    def number_key(self) -> bytes:
        """Keys every stored digest of a phone number (receipts): set from the server secret by Service.open. A
        digest under no key would never match its receipt again, so using it unset is an error, not a default."""
        if not self._number_key:
            raise RuntimeError("the store's number key is not set: open it through notifier.service.Service")
        return self._number_key

    @number_key.setter
    def number_key(self, key: bytes) -> None:
        self._number_key = key

    async def open(self) -> None:
        await self.backend.open()

    async def close(self) -> None:
        await self.fanned_out()
        await self.backend.close()

    async def fanned_out(self) -> None:
        """Wait until the delivery rows of the large publishes this process answered are added (`fan_out_later`)."""
        while self._finishing:
            await asyncio.wait(set(self._finishing))

    async def upgrade(self) -> list[int]:
        applied = await migrate.upgrade(self.backend, time.time())
        async with self.backend.transaction() as db:  # alerts stored before CAP identities existed get theirs
            await cap.assign(db, self.cap_identity)
        return applied

    # ------------------------------------------------------------ meta, catalogue, keys

    async def get_meta(self, key: str) -> str | None:
        return await catalogue.get_meta(self.backend.reader, key)

    async def set_meta_default(self, key: str, value: str) -> str:
        async with self.backend.transaction() as db:
            return await catalogue.set_meta_default(db, key, value)

    async def add_catalogue(self, regions: Iterable[tuple[str, str, str | None]],
                            groups: Iterable[tuple[str, str, str | None]],
                            domains: Iterable[tuple[str, str, str | None]],
                            topics: Iterable[dict[str, Any]]) -> None:
        """Seed the catalogue; each topic it adds is a topic.create by `system` (the operator's catalogue)."""
        async with self.backend.transaction() as db:
            now = time.time()
            for topic in await catalogue.add_catalogue(db, regions, groups, domains, topics, now):
                await audit_log.append(db, SYSTEM, AuditAction.TOPIC_CREATE, object_ref("topic", topic["key"]),
                                       audit_log.topic_details(topic), now)

    async def list_regions(self) -> list[Row]:
        return await catalogue.list_regions(self.backend.reader)

    async def list_groups(self) -> list[Row]:
        return await catalogue.list_groups(self.backend.reader)

    async def list_domains(self) -> list[Row]:
        return await catalogue.list_domains(self.backend.reader)

    async def catalogue_codes(self) -> catalogue.CodeRows:
        return await catalogue.codes(self.backend.reader)

    async def list_topics(self) -> list[dict[str, Any]]:
        return await catalogue.list_topics(self.backend.reader)

    async def get_topic(self, key: str) -> dict[str, Any] | None:
        return await catalogue.get_topic(self.backend.reader, key)

    async def alert_to_send(self, alert_id: str) -> tuple[AlertRow | None, dict[str, Any] | None, bool]:
        """What a worker needs of an alert it has not seen: its row, its topic and whether it reaches assisted
        people, read at once (`alerts.to_send`)."""
        return await alerts.to_send(self.backend.reader, alert_id) or (None, None, False)

    async def create_topic(self, topic: dict[str, Any], actor: Actor = CLI) -> None:
        async with self.backend.transaction() as db:
            now = time.time()
            await catalogue.create_topic(db, topic, now)
            await audit_log.append(db, actor, AuditAction.TOPIC_CREATE, object_ref("topic", topic["key"]),
                                   audit_log.topic_details(topic), now)

    async def missing_codes(self, table: str, codes: Sequence[str]) -> list[str]:
        return await catalogue.missing_codes(self.backend.reader, table, codes)

    async def create_key(self, record: KeyRecord, key_hash: str, actor: Actor = CLI) -> None:
        async with self.backend.transaction() as db:
            await catalogue.create_key(db, record, key_hash)
            await audit_log.append(db, actor, AuditAction.KEY_CREATE, object_ref("key", record.id),
                                   audit_log.key_details(record), record.created_at)

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        return await catalogue.key_by_hash(self.backend.reader, key_hash)

    async def key_and_codes(self, key_hash: str) -> tuple[KeyRecord, catalogue.CodeRows] | None:
        """`key_by_hash` and `catalogue_codes` in one read (a publish's)."""
        return await catalogue.key_and_codes(self.backend.reader, key_hash)

    async def list_keys(self) -> list[KeyRecord]:
        return await catalogue.list_keys(self.backend.reader)

    async def revoke_key(self, id_or_hash: str, now: float, actor: Actor = CLI) -> KeyRecord | None:
        async with self.backend.transaction() as db:
            record, revoked_now = await catalogue.revoke_key(db, id_or_hash, now)
            if record is not None and revoked_now:
                await audit_log.append(db, actor, AuditAction.KEY_REVOKE, object_ref("key", record.id),
                                       audit_log.key_details(record), now)
            return record

    # ------------------------------------------------------------ subscribers

    async def create_subscriber(self, record: SubscriberRecord, secrets: dict[str, str]) -> None:
        async with self.backend.transaction() as db:
            await subscribers.create(db, record, secrets)

    async def bulk_create_subscribers(self, records: list[SubscriberRecord], secrets: list[dict[str, str]]) -> None:
        """Many subscribers in one transaction (demo data), run whole like an import's."""
        batch = list(zip(records, secrets, strict=True))
        await self.backend.run(lambda db: subscribers.insert_batch(db, batch))
        await self._after_import(len(records), subscribers.PEOPLE_TABLES)

    async def _after_import(self, stored: int, tables: Sequence[str]) -> None:
        """A bulk load of people (subscribers, or the people proxies assist) large enough that the next fan-out
        should be planned for the tables as they are now."""
        if stored >= subscribers.BULK_LOAD:
            await self.backend.after_bulk_load(tables)

    async def existing_contacts(self, channel: str, addresses: Sequence[str]) -> set[str]:
        return await subscribers.existing_contacts(self.backend.reader, channel, addresses)

    async def import_subscribers(self, batches: Callable[[], AsyncIterable[Batch]], actor: Actor = CLI,
                                 details: dict[str, Any] | None = None) -> int:
        """Bulk import: every batch in one write transaction, so the import is stored whole or not at all; one
        subscribers.import entry (`details` and how many were stored) when anything was. Routine bulk work: it
        gives way to life-safety work (`give_way.py`) and then runs again, over `batches()` from the first."""
        async def store(db: Db) -> int:
            stored = await subscribers.insert_batches(db, batches())
            if stored:
                await audit_log.append(db, actor, AuditAction.SUBSCRIBERS_IMPORT, object_ref("import", uuid4().hex),
                                       {**(details or {}), "stored": stored}, time.time())
            return stored

        stored = await self.backend.run(store, **_bulk_turn(Priority.ROUTINE))
        await self._after_import(stored, subscribers.PEOPLE_TABLES)
        return stored

    async def put_subscription(self, subscriber_id: str, topic: str, channels: list[str], rank: int) -> bool:
        async with self.backend.transaction() as db:
            return await subscribers.put_subscription(db, subscriber_id, topic, channels, rank, time.time())

    async def get_subscriber(self, subscriber_id: str) -> SubscriberRecord | None:
        return await subscribers.get(self.backend.reader, subscriber_id)

    async def list_subscribers(self, limit: int,
                               after: tuple[float, str] | None) -> tuple[list[SubscriberRecord], int]:
        return await subscribers.listing(self.backend.reader, limit, after)

    async def update_subscriber(self, subscriber_id: str, fields: dict[str, Any], contacts: dict[str, str] | None,
                                secrets: dict[str, str], groups: list[str] | None) -> bool:
        async with self.backend.transaction() as db:
            return await subscribers.update(db, subscriber_id, fields, contacts, secrets, groups, time.time())

    async def delete_subscriber(self, subscriber_id: str, actor: Actor = CLI) -> bool:
        async with self.backend.transaction() as db:
            now = time.time()
            found = await subscribers.delete(db, subscriber_id, now)
            if found:
                await audit_log.append(db, actor, AuditAction.SUBSCRIBER_ERASE, object_ref("subscriber", subscriber_id),
                                       {}, now)
            return found

    async def count_subscribers(self) -> int:
        return await subscribers.count(self.backend.reader)

    # ------------------------------------------------------------ self-service

    async def delete_subscriptions(self, subscriber_id: str, topic: str | None) -> int:
        async with self.backend.transaction() as db:
            return await selfservice.delete_subscriptions(db, subscriber_id, topic)

    async def replace_subscriptions(self, subscriber_id: str,
                                    subscriptions: Sequence[tuple[str, list[str], int]]) -> bool:
        async with self.backend.transaction() as db:
            return await selfservice.replace_subscriptions(db, subscriber_id, subscriptions, time.time())

    async def held_data(self, subscriber_id: str) -> dict[str, Any]:
        return await selfservice.held(self.backend.reader, subscriber_id)

    async def forget_subscriber(self, subscriber_id: str, actor: Actor = CITIZEN) -> bool:
        """Delete the subscriber everywhere, then let the back-end remove the bytes (SQLite: WAL truncation)."""
        async with self.backend.transaction() as db:
            now = time.time()
            found = await selfservice.forget(db, subscriber_id, now)
            if found:
                await audit_log.append(db, actor, AuditAction.SUBSCRIBER_ERASE, object_ref("subscriber", subscriber_id),
                                       {}, now)
        if found:
            await self.backend.after_erasure()
        return found

    # ------------------------------------------------------------ sign-up verification

    async def put_consent(self, subscriber_id: str, version: str, given_at: float) -> None:
        async with self.backend.transaction() as db:
            await verification.put_consent(db, subscriber_id, version, given_at)

    async def put_verification(self, subscriber_id: str, channel: str, secret_hash: str, expires_at: float,
                               now: float) -> None:
        async with self.backend.transaction() as db:
            await verification.put_verification(db, subscriber_id, channel, secret_hash, expires_at, now)

    async def check_code(self, subscriber_id: str, channel: str, secret_hash: str, now: float,
                         max_attempts: int) -> tuple[str, str]:
        """(outcome, the subscriber holding the contact now: another one when a repeat sign-up was merged)."""
        async with self.backend.transaction() as db:
            return await verification.check_code(db, subscriber_id, channel, secret_hash, now, max_attempts)

    async def verify_contact(self, subscriber_id: str, channel: str, now: float) -> str | None:
        async with self.backend.transaction() as db:
            return await verification.verify_contact(db, subscriber_id, channel, now)

    async def bind_by_reference(self, channel: str, secret_hash: str, address: str, order: Sequence[str],
                                now: float) -> str | None:
        async with self.backend.transaction() as db:
            return await verification.bind_by_reference(db, channel, secret_hash, address, order, now)

    async def contact_states(self, subscriber_id: str) -> dict[str, float | None]:
        return await verification.contact_states(self.backend.reader, subscriber_id)

    async def purge_unverified(self, before: float) -> int:
        async with self.backend.transaction() as db:
            return await verification.purge_unverified(db, before)

    # ------------------------------------------------------------ alerts and their lifecycle

    async def alert_by_idempotency_key(self, department: str | None, key: str) -> AlertRow | None:
        return await alerts.by_idempotency_key(self.backend.reader, department, key)

    async def create_alert(self, alert: AlertRow, targeting: Targeting, actor: Actor = CLI,
                           vouched: catalogue.Vouched | None = None) -> AlertRow:
        """Store the alert, its frozen target set and its delivery rows — and what it does to the alert it
        updates or cancels, and its audit entry — in one transaction (a held alert: no targets yet; a new one to
        at least `deliveries_after_answer_from` people: its delivery rows added after, `fan_out_slice` people a
        transaction, started as this one commits — `fan_out_later`). `vouched`:
        the key and catalogue it was checked against, not read for this request; confirmed first in the same
        transaction (catalogue.Unvouched, nothing stored, when either has changed)."""
        async def publish(db: Db) -> lifecycle.Published:
            if vouched is not None:
                await catalogue.confirm(db, vouched)
            await cap.check_free(db, alert)
            stored, later = await lifecycle.publish(db, alert, targeting, actor, self.deliveries_after_answer_from)
            named = (await cap.assign(db, self.cap_identity)).get(stored.id)
            return lifecycle.Published(stored if named is None else replace(stored, **named._asdict()), later)

        if targeting.priority >= Priority.LIFE_SAFETY and alert.status == AlertStatus.ACTIVE:
            await self.backend.announce(targeting.priority)  # workers elsewhere get ready while it is stored
        # Workers are told of the deliveries once they exist: now, or when added after the answer.
        published = await self._fan_out(publish, targeting.priority,
                                        lambda done: None if done.deliveries_later else done.alert)
        if published.deliveries_later:
            task = asyncio.create_task(self._finish_now(published.alert.id))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
        return published.alert

    async def _finish_now(self, alert_id: str) -> None:
        """Add the delivery rows of a publish just answered; on failure a worker's sweep goes on with them once
        none has been added for `fan_out_later.STALLED_AFTER`."""
        try:
            await self.finish_fan_out(alert_id)
        except Exception:
            log.exception("could not add the delivery rows of alert %s now: a worker's sweep goes on with them %g s "
                          "after the last added", alert_id, fan_out_later.STALLED_AFTER)

    async def finish_fan_out(self, alert_id: str) -> bool:
        """Add the delivery rows of a publish that answered before them, a slice a transaction, until none are
        left (other processes may be adding slices too); whether this call added any. Each slice takes the writer
        as the dispatcher's claims do at the alert's priority (`_dispatch_turn`): a routine one after the others
        waiting, giving way to life-safety work; and the workers are told of its rows at once."""
        # Read once: an act that changes the alert (cancel, update, expiry) adds the rest first, and the loop ends.
        alert = await alerts.get(self.backend.reader, alert_id)
        if alert is None:
            return False
        life_safety = delivery_priority(alert) >= Priority.LIFE_SAFETY
        any_added = False
        while (added := await self.backend.run(
                lambda db: fan_out_later.add_slice(db, alert_id, self.fan_out_slice, time.time()),
                **_dispatch_turn(not life_safety, life_safety))) is not None:
            any_added = True
            self._tell_queued(alert)
            self.fanned_out_here(alert)
            if added.done:
                break
        return any_added

    async def finish_stalled_fan_outs(self, now: float) -> int:
        """Add the delivery rows of publishes that answered before them and have had none added for
        `fan_out_later.STALLED_AFTER` (their process stopped first); how many this call added."""
        added = 0
        for alert_id in await fan_out_later.stalled(self.backend.reader, now - fan_out_later.STALLED_AFTER):
            added += await self.finish_fan_out(alert_id)
        return added

    async def _fan_out(self, work: Callable[[Db], Awaitable[T]], priority: int,
                       fanned: Callable[[T], AlertRow | None]) -> T:
        """`work`, a transaction that fans an alert out (a publish, an approval, a cancel's notice), run as its
        priority takes the writer (`_bulk_turn`); then the workers of other processes told of its deliveries
        (`_tell_queued`). `fanned`: the alert of its result."""
        result = await self.backend.run(work, **_bulk_turn(priority))
        self._tell_queued(fanned(result))
        return result

    def _tell_queued(self, alert: AlertRow | None) -> None:
        """The workers of other processes told of the deliveries of `alert` just committed (`Backend.queued`, as
        PostgreSQL's trigger tells of every row), scheduled ones too: told, a worker's life-safety loop sleeps until
        they are due instead of a whole poll."""
        if alert is not None and alert.status in (AlertStatus.ACTIVE, AlertStatus.SCHEDULED):
            self.backend.queued(delivery_priority(alert), alert.id)

    async def _tell_requeued(self, requeued: Mapping[str, int]) -> None:
        """The workers of other processes told of the life-safety deliveries a transaction just committed queued
        again (`fallback.Requeued`): a fallback, a call to make again — this process's are its caller's to wake."""
        for alert_id, priority in requeued.items():
            await self.backend.queued_again(priority, alert_id)

    async def get_alert(self, alert_id: str) -> AlertRow | None:
        return await alerts.get(self.backend.reader, alert_id)

    async def list_alerts(self, limit: int, before: tuple[float, str] | None, public_only: bool = False,
                          department: str | None = None) -> tuple[list[AlertRow], int]:
        return await alerts.listing(self.backend.reader, limit, before, public_only, department)

    async def cancel_alert(self, alert_id: str, publisher: KeyRecord | None,
                           now: float) -> tuple[AlertRow, AlertRow | None, int]:
        """Cancel, notify and record it in one transaction: (the alert, its notice or None, deliveries stopped).
        Its notice is life-safety work (`targeting.delivery_priority`), so it takes the writer as a cancel published
        through `create_alert` does: a routine publish gives way to it."""
        async def cancel(db: Db) -> tuple[AlertRow, AlertRow | None, int]:
            cancelled, notice, stopped = await lifecycle.cancel(db, alert_id, publisher.id if publisher else None,
                                                               Actor.of_key(publisher), now)
            named = await cap.assign(db, self.cap_identity)
            if notice is not None and notice.id in named:
                notice = replace(notice, **named[notice.id]._asdict())
            return cancelled, notice, stopped

        return await self._fan_out(cancel, Priority.LIFE_SAFETY, lambda cancelled: cancelled[1])

    # ------------------------------------------------------------ the delivery queue

    async def list_deliveries(self, alert_id: str, limit: int, after: str | None, status: str | None = None,
                              channel: str | None = None) -> tuple[list[DeliveryRow], int]:
        return await coverage.list_deliveries(self.backend.reader, alert_id, limit, after, status, channel)

    async def claim(self, owner: str, now: float, lease_until: float, limit: int, min_priority: int = 0,
                    max_priority: int = Priority.LIFE_SAFETY, *, background: bool = False) -> list[ClaimedDelivery]:
        # A life-safety claim on a single writer (SQLite) looks beside it first: with something to claim it is
        # urgent (a routine publish gives way to it); with nothing, the writer is not asked at all. The life-safety
        # loop's idle looks, every poll interval, once took the writer's turn like any transaction: one waited
        # 280-340 ms in SQLite's lock behind another process's slices of a large publish, and the red warning it
        # was told of meanwhile waited for it (`notifier serve` beside a `notifier worker`, 100,000 SMS). Rows
        # committed after the look wake the loop, which looks again. Elsewhere the look would be a red warning's
        # round trip for nothing: its writers do not wait for each other's transactions.
        life_safety = min_priority >= Priority.LIFE_SAFETY
        urgent = life_safety and self.backend.dialect.one_writer
        if urgent and not await queue.any_due(self.backend.reader, now, min_priority):
            return []
        turn = _dispatch_turn(background, urgent)
        if life_safety:  # leased and read in one turn of the writer, or one statement: no second hop
            return await self.backend.run(
                lambda db: queue.claim_and_read(db, owner, now, lease_until, limit, min_priority, max_priority),
                single=True, **turn)
        # Routine bulk work: the single writer (SQLite) is held for the lease alone; its rows are read beside it.
        if not await self.backend.run(
                lambda db: queue.claim(db, owner, now, lease_until, limit, min_priority, max_priority), **turn):
            return []
        return await self.backend.bulk_read(lambda db: queue.leased(db, owner, lease_until))

    async def record(self, owner: str, updates: list[DeliveryUpdate], now: float,
                     redial: Mapping[str, CallPolicy] | None = None, *, background: bool = False,
                     urgent: bool = False, people_once: bool = False) -> queue.Recorded:
        """Write a batch of send results (`queue.record`); the workers of other processes are told of the cancel
        notices it queued (`_tell_queued`), as of a fan-out's, and of the life-safety deliveries it queued again
        (`_tell_requeued`) — this process's are its caller's to wake."""
        async def record(db: Db) -> queue.Recorded:
            recorded = await queue.record(db, owner, updates, now, lambda: self.number_key, redial,
                                          people_once=people_once)
            await cap.assign(db, self.cap_identity)  # cancel notices for sends that landed after their cancel
            return recorded

        recorded = await self.backend.run(record, **_dispatch_turn(background, urgent))
        for notice in recorded.noticed:
            self._tell_queued(notice)
        await self._tell_requeued(recorded.requeued)
        return recorded

    async def extend_lease(self, owner: str, until: float) -> int:
        return await self.backend.run(lambda db: queue.extend_lease(db, owner, until))

    async def take_tokens(self, buckets: Sequence[tuple[str, float, float]], tokens: float) -> float:
        return await self.backend.run(lambda db: queue.take_tokens(db, buckets, tokens, time.time()))

    async def sweep(self, now: float, max_attempts: int = 10) -> dict[str, int]:
        """`queue.sweep`; the workers of other processes told of the life-safety deliveries its fallbacks queued
        (`_tell_requeued`) — this process's are its caller's to wake (counted: `fallback`)."""
        requeued = fallback.Requeued()
        async with self.backend.transaction() as db:
            swept = await queue.sweep(db, now, max_attempts, requeued)
        await self._tell_requeued(requeued.alerts)
        return swept

    async def next_due(self, priority: int | None = None) -> float | None:
        """When the next waiting delivery (of `priority`, if given) is due."""
        return await queue.next_due(self.backend.reader, priority)

    async def sends_under_way(self, now: float, enough: int, min_priority: int = Priority.ROUTINE) -> bool:
        """Whether at least `enough` deliveries (of `min_priority` at least) are leased or due now, by any process
        (`store/queue.py`)."""
        return await queue.sends_under_way(self.backend.reader, now, enough, min_priority)

    async def queue_stats(self) -> dict[str, int]:
        return await queue.queue_stats(self.backend.reader)

    async def people_to_come(self, alert_ids: list[str] | None = None) -> dict[str, int]:
        """Of `alert_ids` (None: every alert), those whose delivery rows are still being added after their answer
        (`fan_out_later`), with how many people are still without theirs — in no delivery count yet
        (`queue_stats`, the coverage's channels): none of an alert's deliveries pending does not yet mean it is
        done."""
        return await fan_out_later.people_to_come(self.backend.reader, alert_ids)

    async def apply_receipts(self, channel: str, receipts_: list[Receipt], now: float,
                             redial: CallPolicy | None = None) -> dict[str, int]:
        """Keep a push of provider reports and apply it at once, with any kept before it, in one transaction
        (`store/receipts.py`); counted by outcome. The workers of other processes are told of the life-safety
        deliveries it queued again (`_tell_requeued`)."""
        applied = await self.backend.run(
            lambda db: receipts.apply_receipts(db, channel, receipts_, now, self.number_key, redial),
            **_dispatch_turn(background=True, urgent=False))
        await self._tell_requeued(applied.requeued)
        return receipts.counted(applied.pushes[0][2])

    async def store_reports(self, channel: str, receipts_: list[Receipt], now: float,
                            life_safety_since: float | None = None) -> bool:
        """Keep a push of provider reports, to be applied by `apply_waiting` (one row, `store/receipts.py`); whether
        it holds a report a life-safety delivery of an alert released since `life_safety_since` awaits (read
        beside the writer: `receipts.for_life_safety`; None: not looked for)."""
        life_safety = life_safety_since is not None and await receipts.for_life_safety(
            self.backend.reader, channel, receipts_, life_safety_since)
        # Routine work (a million SMS send back a million reports): after any other writer waiting, giving way to a
        # red warning's, and on SQLite run whole on the writer's thread.
        await self.backend.run(lambda db: receipts.store_reports(db, channel, receipts_, now, life_safety),
                               **_dispatch_turn(background=True, urgent=False))
        return life_safety

    async def apply_waiting(self, redial: Mapping[str, CallPolicy], limit: int, *, idle: bool = False,
                            life_safety: bool = False) -> receipts.Applied:
        """Apply the oldest pushes of reports waiting (with `life_safety`, of those that hold a report a
        life-safety delivery awaits: `store/receipts.py`), at most `limit` reports, now — when the transaction runs,
        which with `idle` (on SQLite: only when the writer has no other work queued, no claim or record of a
        fan-out's) may be a while. The workers of other processes are told of the life-safety
        deliveries it queued again (`_tell_requeued`) — this process's are its caller's to wake."""
        applied = await self.backend.run(
            lambda db: receipts.apply_waiting(db, time.time(), self.number_key, redial, limit,
                                              life_safety=life_safety), idle=idle,
            **_dispatch_turn(background=True, urgent=False))
        await self._tell_requeued(applied.requeued)
        return applied

    async def sweep_early_receipts(self, before: float) -> int:
        async with self.backend.transaction() as db:
            return await receipts.sweep_early(db, before)

    async def disable_contacts(self, channel: str, address: str, reason: str, now: float) -> int:
        async with self.backend.transaction() as db:
            return await receipts.disable_contacts(db, channel, address, reason, now)

    # ------------------------------------------------------------ coverage, analytics, admin views

    async def coverage_rows(self, alert_id: str) -> CoverageRows:
        return await coverage.coverage_rows(self.backend.reader, alert_id)

    async def put_population(self, rows: Sequence[PopulationRecord], now: float, actor: Actor = CLI) -> None:
        """Replace every population row in one transaction, recorded as population.put."""
        async with self.backend.transaction() as db:
            await analytics.put_population(db, rows, now)
            await audit_log.append(db, actor, AuditAction.POPULATION_PUT, object_ref("population", "table"),
                                   {"rows": len(rows), "regions": len({r.region for r in rows})}, now)

    async def population(self) -> list[PopulationRecord]:
        return await analytics.population(self.backend.reader)

    async def period_cells(self, period: PeriodFilter) -> list[PeriodCell]:
        return await analytics.period_cells(self.backend.reader, period)

    async def period_reach_times(self, period: PeriodFilter, dimension: str | None,
                                 ranks: Sequence[int]) -> dict[str, dict[int, float]]:
        return await analytics.period_reach_times(self.backend.reader, period, dimension, ranks)

    async def coverage_breakdown(self, alert_id: str) -> list[BreakdownRecord]:
        return await analytics.coverage_breakdown(self.backend.reader, alert_id)

    async def target_regions(self, alert_id: str, subscriber_ids: Sequence[str]) -> dict[str, str]:
        return await analytics.target_regions(self.backend.reader, alert_id, subscriber_ids)

    async def alert_figures(self, alert_ids: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
        return await admin.alert_figures(self.backend.reader, alert_ids)

    async def reach_curve(self, alert_id: str) -> tuple[float, list[tuple[float, int]]]:
        return await admin.reach_curve(self.backend.reader, alert_id)

    async def failure_errors(self, alert_id: str) -> list[tuple[str, str, str | None, int]]:
        return await admin.failure_errors(self.backend.reader, alert_id)

    # ------------------------------------------------------------ the public column

    async def public_alerts(self, where: PublicFilter, limit: int, offset: int,
                            now: float) -> tuple[list[AlertRow], int]:
        return await public.public_alerts(self.backend.reader, where, limit, offset, now)

    async def public_follow_ups(self, alert_ids: Sequence[str], now: float) -> list[AlertRow]:
        return await public.public_follow_ups(self.backend.reader, alert_ids, now)

    # ---- assisted reach: proxies (grid workers, caregivers) and the people they tell

    async def add_assisted(self, proxy_id: str, people: Sequence[AssistedRecord]) -> list[AssistedRecord] | None:
        """Add people to a proxy's list (numbered after its last); None when there is no such proxy."""
        async with self.backend.transaction() as db:
            if not await subscribers.lock_proxy(db, proxy_id):
                return None
            return await assisted.add(db, proxy_id, people, time.time())

    async def import_assisted(self, lists: Sequence[tuple[str, Sequence[AssistedRecord]]]) -> int:
        """Bulk import: every proxy's new people in one transaction (all or nothing); returns how many. Routine bulk
        work, as `import_subscribers`: it gives way to life-safety work and then runs again."""
        async def store(db: Db) -> int:
            now, stored = time.time(), 0
            for proxy_id, people in lists:
                await subscribers.lock_proxy(db, proxy_id)
                stored += len(await assisted.add(db, proxy_id, people, now))
            return stored

        stored = await self.backend.run(store, **_bulk_turn(Priority.ROUTINE))
        await self._after_import(stored, assisted.TABLES)
        return stored

    async def proxies_by_contact(self, channel: str, addresses: Sequence[str]) -> dict[str, str]:
        return await subscribers.proxies_by_contact(self.backend.reader, channel, addresses)

    async def remove_assisted(self, proxy_id: str, assisted_id: str) -> bool:
        async with self.backend.transaction() as db:
            return await assisted.remove(db, proxy_id, assisted_id, time.time())

    async def assist_lists(self, recipients: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[AssistItem]]:
        return await assisted.lists(self.backend.reader, recipients)

    async def confirm_assisted(self, delivery_id: str, now: float) -> Confirmation | None:
        async with self.backend.transaction() as db:
            return await assisted.confirm(db, delivery_id, now)

    async def confirm_by_reply(self, channel: str, address: str, numbers: Sequence[int],
                               now: float) -> list[Confirmation]:
        async with self.backend.transaction() as db:
            return await assisted.confirm_by_reply(db, channel, address, numbers, now)

    async def not_yet_told(self, alert_id: str, limit: int = 500) -> list[tuple[str, int, str, str]]:
        return await assisted.not_yet_told(self.backend.reader, alert_id, limit)

    # ---- CAP 1.2 and catalogue deadlines (migration 0008)

    async def alert_by_cap(self, sender: str, identifier: str) -> str | None:
        """Our id of the alert CAP knows as (sender, identifier): what a CAP Update or Cancel refers to."""
        return await cap.by_identity(self.backend.reader, sender, identifier)

    async def update_topic(self, key: str, fields: dict[str, Any], actor: Actor = CLI) -> dict[str, Any] | None:
        """Set the given fields of a topic (a changed schedule is set now), recorded as topic.update; None when
        there is no such topic."""
        async with self.backend.transaction() as db:
            now = time.time()
            topic = await catalogue.update_topic(db, key, fields, now)
            if topic is not None:
                await audit_log.append(db, actor, AuditAction.TOPIC_UPDATE, object_ref("topic", key),
                                       audit_log.topic_details(fields), now)
            return topic

    async def release_times(self, topic: str, since: float, until: float, now: float) -> list[float]:
        """When the topic's disclosures that count for its deadlines went out, in [since, until)."""
        return await deadlines.release_times(self.backend.reader, topic, since, until, now)

    async def claim_compliance_notice(self, topic: str, period: str, department: str, due_at: float, owner: str,
                                      now: float, until: float, max_attempts: int) -> bool:
        async with self.backend.transaction() as db:
            return await deadlines.claim_notice(db, topic, period, department, due_at, owner, now, until,
                                                max_attempts)

    async def finish_compliance_notice(self, topic: str, period: str, owner: str, now: float, error: str | None,
                                       retry_at: float) -> None:
        async with self.backend.transaction() as db:
            await deadlines.finish_notice(db, topic, period, owner, now, error, retry_at)

    async def compliance_notices(self, topic: str) -> list[tuple[str, float | None, int, str | None]]:
        return await deadlines.notices(self.backend.reader, topic)
    # ------------------------------------------------------------ governance: approval and the audit chain

    async def pending_alerts(self, department: str | None, limit: int = 100) -> list[AlertRow]:
        """Alerts waiting for approval, oldest first (one department's, when given)."""
        return await alerts.pending(self.backend.reader, department, limit)

    async def approve_alert(self, alert_id: str, targeting: Targeting, actor: Actor, now: float) -> AlertRow:
        """Release a held alert: targets frozen, deliveries created, status and audit entry, in one transaction."""
        return await self._fan_out(lambda db: lifecycle.approve(db, alert_id, targeting, actor, now),
                                   targeting.priority, lambda approved: approved)

    async def reject_alert(self, alert_id: str, reason: str, actor: Actor, now: float) -> AlertRow:
        async with self.backend.transaction() as db:
            return await lifecycle.reject(db, alert_id, reason, actor, now)

    async def reject_overdue_approvals(self, created_before: float, now: float) -> int:
        """Held alerts created before `created_before` and still undecided become rejected (reason `timeout`)."""
        async with self.backend.transaction() as db:
            return await lifecycle.reject_overdue(db, created_before, now)

    async def audit_head(self) -> AuditHead:
        return await audit_log.head(self.backend.reader)

    async def audit_page(self, where: audit_log.AuditFilter, limit: int,
                         after: int | None) -> tuple[list[dict[str, Any]], int]:
        return await audit_log.page(self.backend.reader, where, limit, after)

    async def audit_stream(self, chunk: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every stored entry in seq order, read a chunk at a time (memory stays flat however long the chain)."""
        after = 0
        while rows := await audit_log.chunk(self.backend.reader, after, chunk):
            for row in rows:
                yield row
            after = int(rows[-1]["seq"])


def _dispatch_turn(background: bool, urgent: bool) -> dict[str, bool]:
    """How the dispatcher's claims and records take the writer. Routine ones (`background`) go after any other
    transaction waiting for it and give it up to life-safety work asking mid-way (`yielding`), running again at their
    next turn: a red warning waits for a routine statement to stop, not for a whole routine batch (on SQLite, a
    record of 1,000 SMS holds the writer ~12 ms, and three of a red warning's transactions could each wait for one).
    `urgent` ones (life-safety work at hand) make such a batch give way and never give way themselves."""
    return {"background": background, "urgent": urgent, "yielding": background and not urgent}


def _bulk_turn(priority: int) -> dict[str, bool]:
    """How a bulk write of this priority — an alert's fan-out (publish, approval, cancel notice) or an import —
    takes the writer: a red warning (or a cancel) does not wait for a routine publish to a whole city or a
    registry's import; that one gives way to it (SQLite: `give_way.py`)."""
    life_safety = priority >= Priority.LIFE_SAFETY
    return {"urgent": life_safety, "yielding": not life_safety}
