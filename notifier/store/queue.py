"""The delivery queue: lease-based claims, batched result writes, the lease heartbeat, sweeps (lease reclaim,
scheduled release, expiry, silent-receipt fallback) and the shared rate buckets.

Claims are fenced by `lease_owner` (a fresh token per claim): a worker whose lease was reclaimed cannot overwrite
its successor's result. The rows a lease still covers are locked before they are written (PostgreSQL `FOR UPDATE`;
SQLite's write transaction excludes everyone), so a sweep on another host cannot reclaim them mid-write; claims
skip rows another claimer holds (`SKIP LOCKED`), so concurrent claims never return one delivery twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from channels.voice.common import CallPolicy
from notifier.i18n import DEFAULT_LANG
from notifier.states import AlertStatus, DeliveryStatus, Priority
from notifier.store import assisted, fallback, lifecycle, receipts
from notifier.store.db import FLOAT, Db, as_rows, planned_each_run, unpacked
from notifier.store.marks import marking
from notifier.store.records import AlertRow, ClaimedDelivery, DeliveryUpdate
from notifier.store.states import WAITING, due, is_

SENDING, SENT, DELIVERED = DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.DELIVERED
_RELEASE = "lease_owner = NULL, lease_until = NULL, updated_at = ?"


async def claim(db: Db, owner: str, now: float, lease_until: float, limit: int, min_priority: int = 0,
                max_priority: int = Priority.LIFE_SAFETY) -> int:
    """Lease up to `limit` due deliveries of priorities `min_priority` to `max_priority`, most urgent first
    (life-safety before anything due at the same time); how many were leased (`leased` reads them)."""
    return await db.execute(_claiming(db), owner, lease_until, now, now, min_priority, max_priority, limit)


def _claiming(db: Db) -> str:
    """The claim's UPDATE (parameters: owner, lease until, now, now, priorities from and to, limit)."""
    key = db.dialect.row_key  # SQLite: 1,000 rows claimed 1.9 -> 1.6 ms
    return (f"UPDATE deliveries SET status = '{SENDING}', lease_owner = ?, lease_until = ?, updated_at = ? "
            f"WHERE {key} IN (SELECT {key} FROM deliveries WHERE {due()} AND priority BETWEEN ? AND ? "
            f"ORDER BY priority DESC, next_attempt_at LIMIT ?{db.dialect.skip_locked})")


async def leased(db: Db, owner: str, lease_until: float) -> list[ClaimedDelivery]:
    """What a claim leased, with each delivery's contact and subscriber: read after the claim committed, on a
    reader (the lease keeps the rows the claim's), so that a single writer (SQLite) is held for the lease alone."""
    return _claimed(await db.fetchval(
        f"{_reading(db, 'deliveries')} WHERE {is_(SENDING, 'd.')} AND d.lease_until = ? AND d.lease_owner = ?",
        lease_until, owner))


async def claim_and_read(db: Db, owner: str, now: float, lease_until: float, limit: int, min_priority: int = 0,
                         max_priority: int = Priority.LIFE_SAFETY) -> list[ClaimedDelivery]:
    """`claim`, then `leased`, at once (a red warning's claim waits for no second hop): where the claim's UPDATE
    may feed a query (`Dialect.update_in_with`, PostgreSQL) one statement, which reads the rows it leases as it
    leases them; else the two, in the caller's transaction."""
    if not db.dialect.update_in_with:
        if not await claim(db, owner, now, lease_until, limit, min_priority, max_priority):
            return []
        return await leased(db, owner, lease_until)
    return _claimed(await db.fetchval(
        f"WITH claimed AS ({_claiming(db)} RETURNING *) {_reading(db, 'claimed')}",
        owner, lease_until, now, now, min_priority, max_priority, limit))


def _reading(db: Db, source: str) -> str:
    """What a claim leased of `source` (the table, or the claim's own rows) with each delivery's contact and
    subscriber, packed (`Dialect.packed`: a query's rows one at a time would each wait for the GIL)."""
    return (f"SELECT {db.dialect.packed(_CLAIMED)} FROM {source} d "
            "LEFT JOIN contacts c ON c.subscriber_id = d.subscriber_id AND c.channel = d.channel "
            "LEFT JOIN subscribers s ON s.id = d.subscriber_id")


def _claimed(packed: str | None) -> list[ClaimedDelivery]:
    return list(map(ClaimedDelivery._make, unpacked(packed)))  # 0.26 µs a row; by keyword with Python's conditions: 1.0


async def any_due(db: Db, now: float, min_priority: int) -> bool:
    """Whether some delivery of at least `min_priority` may be claimed now (an index probe)."""
    return await db.fetchval(f"SELECT 1 FROM deliveries WHERE {due()} AND priority >= ? LIMIT 1",
                             now, min_priority) is not None


# What a claim reads of each leased delivery, its contact and its subscriber: ClaimedDelivery's fields, in order.
# A disabled contact is no address; no locale is the default language.
_CLAIMED = ("d.id", "d.alert_id", "d.subscriber_id", "d.channel", "d.position", "d.attempts",
            "CASE WHEN c.disabled_at IS NULL THEN c.address END", "c.secret",
            f"COALESCE(NULLIF(s.locale, ''), '{DEFAULT_LANG}')", "s.quiet_start", "s.quiet_end", "d.created_at")


class Recorded(NamedTuple):
    """What a record of send results wrote."""

    written: list[str]  # the deliveries whose results were written: those the lease still covered
    # Cancel notices whose deliveries it queued, for sends accepted after their alert was cancelled: life-safety
    # rows that no fan-out tells the workers of (`SqlStore.record` does, as PostgreSQL's trigger does).
    noticed: list[AlertRow]
    # The life-safety deliveries it queued again (a failure's next channel, a call to make again): of each alert,
    # the highest priority (`fallback.Requeued`).
    requeued: dict[str, int]


async def record(db: Db, owner: str, updates: Sequence[DeliveryUpdate], now: float, number_key: Callable[[], bytes],
                 redial: Mapping[str, CallPolicy] | None = None, *, people_once: bool = False) -> Recorded:
    """Write a batch of send results in one transaction; returns the ids the lease still covered, and the cancel
    notices it queued deliveries of.

    Results for rows whose lease was reclaimed are dropped whole — the delivery row and everything that follows
    from it (reached marks, fallback, contact disabling) — so a worker that was presumed dead cannot overwrite its
    successor's result. A retry of an alert that was cancelled or superseded meanwhile is not queued again.
    `number_key`: the key of number digests, for reports that came before this record (`receipts`).
    `redial`: the call policy of each channel that calls people, for early call results asking for another call.
    `people_once`: no person has two deliveries of one alert in the batch (their targets' marks need no grouping)."""
    requeued = fallback.Requeued()
    at_once = _at_once(db, updates)
    if at_once is not None:  # written already, with their marks
        alerts = await lifecycle.recorded_alerts(db, {u.alert_id for u in updates})
        held = await _accepted_at_once(db, owner, updates, at_once, now, people_once, bool(alerts.falling_back))
        updates = [u for u in updates if u.delivery_id in held]
        await receipts.apply_early_receipts(db, [u for u in updates if u.status is SENT], now, number_key, redial,
                                            requeued)
    else:
        # Every row the lease still covers, locked (a lease token is one claim's): not the batch's ids matched
        # against the table, which PostgreSQL planned as a nested loop over the id list, 500 x 500 comparisons.
        held = {r[0] for r in unpacked(await db.fetchval(
            f"SELECT {db.dialect.packed(['id'])} FROM (SELECT id FROM deliveries WHERE lease_owner = ? "
            f"AND {is_(SENDING)}{db.dialect.for_update}) AS held", owner))}
        updates = [u for u in updates if u.delivery_id in held]
        alerts = await lifecycle.recorded_alerts(db, {u.alert_id for u in updates})
    stopped = alerts.stopped
    by_status: dict[DeliveryStatus, list[DeliveryUpdate]] = defaultdict(list)
    for u in updates:
        # A retry or deferral of a stopped alert ends here instead (cancelled, or expired).
        waiting = u.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
        by_status[stopped.get(u.alert_id, u.status) if waiting else u.status].append(u)
    if at_once is None:
        whole = _one_outcome(updates, len(held))
        await _write_delivered(db, owner, by_status[DELIVERED], now, whole, people_once)
        await _write_sent(db, owner, by_status[SENT], now, number_key, redial, whole, people_once,
                          alerts.falling_back, requeued)
    await _write_later(db, owner, by_status[DeliveryStatus.QUEUED] + by_status[DeliveryStatus.DEFERRED], now)
    for final in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED, DeliveryStatus.EXPIRED):
        await _write_final(db, owner, final, by_status[final], now)
    failed = [u.delivery_id for u in by_status[DeliveryStatus.FAILED]]
    await fallback.activate_next(db, [u.delivery_id for u in by_status[DeliveryStatus.FAILED] if u.fall_back], now,
                                 requeued)
    await _disable_contacts(db, [u for u in updates if u.disable_contact], now)
    accepted = by_status[DELIVERED] + by_status[SENT]
    # A proxy's message accepted: the people it lists are sent; its every channel failed: they fail too.
    if relayed := await assisted.relayed(db, accepted, now):
        await _mark_targets(db, _Selection(_rows(db), "d.id = u.id", (as_rows(relayed),)), reached=False)
    await assisted.unrelayed(db, failed, now)
    noticed = await lifecycle.notice_late_receivers(db, {u.alert_id for u in accepted} & stopped.keys(), now)
    return Recorded([u.delivery_id for u in updates], noticed, requeued.alerts)


def _at_once(db: Db, updates: Sequence[DeliveryUpdate]) -> DeliveryStatus | None:
    """The status that every result shares where one statement writes them all with their targets' marks
    (`Dialect.update_in_with`: PostgreSQL), nothing locked and read first: all accepted and final (webhooks, email),
    or all accepted awaiting a receipt (WeChat, a call) but not one SMS request's numbers, written by its lease token
    (`_one_outcome`). Anything else (retries, failures, a mix) is written by the lease's rows, locked first."""
    if not db.dialect.update_in_with or not updates:
        return None
    status = updates[0].status
    if status not in (DELIVERED, SENT) or any(u.status is not status for u in updates):
        return None
    return None if status is SENT and _one_outcome(updates, len(updates)) is not None else status


def _one_outcome(updates: Sequence[DeliveryUpdate], held: int) -> DeliveryUpdate | None:
    """The one outcome every row of the lease shares, if it does: a whole SMS request accepted (one BizId, one
    time). Such a lease is written by its token, per request rather than per number: no batch to encode on the
    writer's thread, no row looked up by its id (raw SQLite, 1,000 numbers: 16 -> 8 µs a number).
    `updates` hold one result per delivery, all of them leased (`held`: how many rows the lease covers)."""
    if not updates:
        return None
    first = updates[0]
    # The outcomes first: a webhook claim's chunks differ in time by its 38th result, before any set is built.
    if first.status not in (SENT, DELIVERED) or any(
            (u.status, u.at, u.provider_message_id) != (first.status, first.at, first.provider_message_id)
            for u in updates):
        return None
    return first if len({u.delivery_id for u in updates}) == held else None


class _Selection(NamedTuple):
    """The rows an accepted send's write is about, as a FROM item `u` (columns at, pmid; and id, for a batch),
    and what ties a `deliveries` row `d` to it: the batch's ids, or the whole lease."""

    item: str
    joined: str  # a condition on `d` (deliveries) and `u`
    params: tuple[Any, ...]  # the item's, then the condition's
    once: bool = False  # no person twice among the rows, or every row at one time: nobody's first time to pick


def _selection(db: Db, owner: str, done: Sequence[DeliveryUpdate], whole: DeliveryUpdate | None,
               people_once: bool) -> _Selection:
    if whole is not None:
        return _Selection("(SELECT CAST(? AS DOUBLE PRECISION) AS at, CAST(? AS TEXT) AS pmid)",
                          f"d.lease_owner = ? AND {is_(SENDING, 'd.')}", (whole.at, whole.provider_message_id, owner),
                          once=True)
    # Encoded once, on the single writer's thread, for both statements.
    batch = as_rows((u.delivery_id, u.at, u.provider_message_id) for u in done)
    return _Selection(_rows(db, ("pmid", "TEXT")), "d.id = u.id AND d.lease_owner = ?", (batch, owner), people_once)


# A send accepted and final (parameters: now, now).
_DELIVERED = (f"status = '{DELIVERED}', attempts = attempts + 1, sent_at = COALESCE(sent_at, u.at), "
              "delivered_at = u.at, finished_at = ?, provider_message_id = COALESCE(u.pmid, provider_message_id), "
              f"last_error = NULL, {_RELEASE}")


async def _write_delivered(db: Db, owner: str, done: list[DeliveryUpdate], now: float,
                           whole: DeliveryUpdate | None, people_once: bool) -> None:
    if not done:
        return
    rows = _selection(db, owner, done, whole, people_once)
    await _mark_targets(db, rows, reached=True)  # first: the write below ends the lease that names its rows
    await _update_accepted(db, rows, _DELIVERED, now, now)


# A send accepted, awaiting its receipt (parameter: now).
_SENT = (f"status = '{SENT}', attempts = attempts + 1, sent_at = u.at, provider_message_id = u.pmid, "
         f"last_error = NULL, {_RELEASE}")


async def _accepted_at_once(db: Db, owner: str, done: Sequence[DeliveryUpdate], status: DeliveryStatus, now: float,
                            people_once: bool, falling_back: bool) -> set[str]:
    """`_write_delivered` or `_write_sent` in one statement (`_at_once`): the rows the lease still covers written,
    their targets marked from the rows written — and, `falling_back` (an alert of the batch falls back), their
    next channels told when to look — with no lock and read of the lease first, no second look-up of each row by
    its id for its person; returns the ids written. The write takes each row's lock: a sweep that reclaimed one
    first leaves it unwritten and unmarked, one after it finds the row no longer sending."""
    rows = _selection(db, owner, done, None, people_once)
    assignments, params = (_DELIVERED, (now, now)) if status is DELIVERED else (_SENT, (now,))
    silent = f", silent AS ({fallback.scheduling('w AS d', 'd.at')})" if status is SENT and falling_back else ""
    return {r[0] for r in unpacked(await db.fetchval(
        f"WITH w AS (UPDATE deliveries AS d SET {assignments} FROM {rows.item} AS u WHERE {rows.joined} "
        f"AND {is_(SENDING, 'd.')} RETURNING d.id, d.alert_id, d.subscriber_id, d.position, u.at), "
        f"marked AS ({marking('w AS d', 'd.at', rows.once, reached=status is DELIVERED)}){silent} "
        f"SELECT {db.dialect.packed(['id'])} FROM w", *params, *rows.params))}


async def _write_sent(db: Db, owner: str, sent: list[DeliveryUpdate], now: float, number_key: Callable[[], bytes],
                      redial: Mapping[str, CallPolicy] | None, whole: DeliveryUpdate | None, people_once: bool,
                      falling_back: set[str], requeued: fallback.Requeued) -> None:
    if not sent:
        return
    rows = _selection(db, owner, sent, whole, people_once)
    await _mark_targets(db, rows, reached=False)
    if falling_back:  # while the lease names them
        await fallback.schedule_silent(db, rows.item, rows.joined, rows.params)
    await _update_accepted(db, rows, _SENT, now)
    await receipts.apply_early_receipts(db, sent, now, number_key, redial, requeued)


async def _update_accepted(db: Db, rows: _Selection, assignments: str, *params: Any) -> None:
    """`assignments` (their `params` first) to the deliveries `rows` names."""
    await db.execute(f"UPDATE deliveries AS d SET {assignments} FROM {rows.item} AS u WHERE {rows.joined}",
                     *params, *rows.params)


# The rows a lease covers are `sending` (a lease's token is cleared with the status): said, so that their search
# by the token goes through the small partial index of the rows in flight (`deliveries_leased`) — without it, a
# generic plan made on a small table read the table to find them.
_LEASED = is_(SENDING, "deliveries.")


async def _write_later(db: Db, owner: str, later: list[DeliveryUpdate], now: float) -> None:
    """Retries and quiet-hours deferrals: back to the queue at their next attempt time."""
    if not later:
        return
    batch = _rows(db, ("status", "TEXT"), ("tried", "INTEGER"), ("next_at", "DOUBLE PRECISION"), ("error", "TEXT"))
    await db.execute(
        "UPDATE deliveries SET status = u.status, attempts = attempts + u.tried, next_attempt_at = u.next_at, "
        f"last_error = COALESCE(u.error, last_error), {_RELEASE} "
        f"FROM {batch} AS u WHERE deliveries.id = u.id AND deliveries.lease_owner = ? AND {_LEASED}",
        now, as_rows((u.delivery_id, u.at, u.status.value, int(u.attempted), u.next_attempt_at, u.error)
                     for u in later), owner)


async def _write_final(db: Db, owner: str, status: DeliveryStatus, final: list[DeliveryUpdate], now: float) -> None:
    """Failed (permanently, or out of retries), or stopped because its alert was cancelled, superseded or expired
    while the send was in flight."""
    if not final:
        return
    await db.execute(
        f"UPDATE deliveries SET status = '{status}', attempts = attempts + u.tried, finished_at = ?, "
        f"last_error = COALESCE(u.error, last_error), {_RELEASE} "
        f"FROM {_rows(db, ('tried', 'INTEGER'), ('error', 'TEXT'))} AS u "
        f"WHERE deliveries.id = u.id AND deliveries.lease_owner = ? AND {_LEASED}",
        now, now, as_rows((u.delivery_id, u.at, int(u.attempted), u.error) for u in final), owner)


def _rows(db: Db, *columns: tuple[str, str]) -> str:
    """The batch as a FROM item: id and time first, then the given columns."""
    return db.dialect.records([("id", "TEXT"), ("at", "DOUBLE PRECISION"), *columns])


async def _mark_targets(db: Db, rows: _Selection, *, reached: bool) -> None:
    """The targets of these deliveries were accepted — and reached, when `reached` — at the first of those times
    (`marks.marking`). A whole lease's rows share one time, and most batches hold each person once
    (`_Selection.once`)."""
    await db.execute(marking(f"{rows.item} AS u JOIN deliveries d ON {rows.joined}", "u.at", rows.once,
                             reached=reached), *rows.params)


async def _disable_contacts(db: Db, updates: list[DeliveryUpdate], now: float) -> None:
    """The endpoint asked never to be called again (webhook 410): its contact is disabled for later alerts."""
    if not updates:
        return
    async with planned_each_run(db):  # the rows by their ids: a generic plan made on a small table reads it whole
        await db.execute(
            "UPDATE contacts SET disabled_at = ?, disabled_reason = x.reason FROM ("
            f"SELECT d.subscriber_id, d.channel, u.reason FROM {_rows(db, ('reason', 'TEXT'))} AS u "
            "JOIN deliveries d ON d.id = u.id) AS x "
            "WHERE contacts.subscriber_id = x.subscriber_id AND contacts.channel = x.channel",
            now, as_rows((u.delivery_id, u.at, u.error or "disabled by the endpoint") for u in updates))


async def extend_lease(db: Db, owner: str, until: float) -> int:
    """A worker still busy with its claim (rate-limited sends) keeps its rows: the heartbeat of a lease."""
    return await db.execute(f"UPDATE deliveries SET lease_until = ? WHERE lease_owner = ? AND {is_(SENDING)}",
                            until, owner)


async def sweep(db: Db, now: float, max_attempts: int, requeued: fallback.Requeued) -> dict[str, int]:
    """Housekeeping every worker runs: reclaim dead leases, release scheduled alerts, expire, fall back (the
    life-safety deliveries it queues so noted in `requeued`)."""
    failed, queued, key = DeliveryStatus.FAILED, DeliveryStatus.QUEUED, db.dialect.row_key
    # A row whose worker died mid-send is sent again, unless it has now used all its attempts (a message that
    # kills its worker every time must not loop forever). Rows a live worker is recording are locked by it:
    # skipped rather than waited for (their lease is being settled).
    counts = {"reclaimed": await db.execute(
        f"UPDATE deliveries SET status = CASE WHEN attempts + 1 >= ? THEN '{failed}' ELSE '{queued}' END, "
        f"finished_at = CASE WHEN attempts + 1 >= ? THEN {FLOAT} ELSE NULL END, attempts = attempts + 1, "
        "lease_owner = NULL, lease_until = NULL, next_attempt_at = ?, updated_at = ?, "
        f"last_error = 'lease expired: the worker stopped mid-send' WHERE {key} IN (SELECT {key} FROM deliveries "
        f"WHERE {is_(SENDING)} AND lease_until < ?{db.dialect.skip_locked})",
        max_attempts, max_attempts, now, now, now, now)}
    await db.execute(f"UPDATE alerts SET status = '{AlertStatus.ACTIVE}' WHERE {is_(AlertStatus.SCHEDULED)} "
                     "AND scheduled_at <= ?", now)
    counts["expired"] = await lifecycle.expire(db, now)
    counts["fallback"] = await fallback.activate_silent(db, now, requeued)
    return counts


async def next_due(db: Db, priority: int | None = None) -> float | None:
    """When the next waiting delivery (of `priority`, if given: one probe of the queue's index, in its order) is
    due."""
    of, params = ("", []) if priority is None else (" AND priority = ?", [priority])
    value = await db.fetchval(f"SELECT next_attempt_at FROM deliveries WHERE status IN {WAITING}{of} "
                              "ORDER BY next_attempt_at LIMIT 1", *params)
    return float(value) if value is not None else None


async def sends_under_way(db: Db, now: float, enough: int, min_priority: int = Priority.ROUTINE) -> bool:
    """Whether at least `enough` deliveries (of `min_priority` at least) are leased or due now, in any process: a
    fan-out's sends are under way. Each side read from its partial index, at most `enough` rows of it."""
    return bool(await db.fetchval(
        f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE {is_(SENDING)} AND priority >= ? "
        f"LIMIT ?) AS l) + (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE {due()} AND priority >= ? "
        "LIMIT ?) AS w) >= ?", min_priority, enough, now, min_priority, enough, enough))


async def queue_stats(db: Db) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in await db.fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")}


async def take_tokens(db: Db, buckets: Sequence[tuple[str, float, float]], tokens: float, now: float) -> float:
    """Reserve `tokens` from each shared bucket (name, rate per second, capacity); returns how long the caller must
    wait before using them. One upsert a bucket: the row is locked, so concurrent takers on any host queue behind
    each other. Below zero is debt: this caller waits it off, the next one queues behind it."""
    d = db.dialect
    wait = 0.0
    for name, rate, capacity in buckets:
        refill = f"rate_buckets.tokens + {d.max_of('0', '? - rate_buckets.updated_at')} * {FLOAT}"
        level = await db.fetchval(
            f"INSERT INTO rate_buckets (name, tokens, updated_at) VALUES (?, {FLOAT} - {FLOAT}, ?) "
            f"ON CONFLICT (name) DO UPDATE SET tokens = {d.min_of(FLOAT, refill)} - {FLOAT}, updated_at = ? "
            "RETURNING tokens", name, capacity, tokens, now, capacity, now, rate, tokens, now)
        wait = max(wait, -float(level) / rate)
    return wait
