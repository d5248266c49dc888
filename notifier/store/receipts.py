"""How provider receipts are applied: a report turns a `sent` delivery into `delivered` (its target is reached) or
`failed` (the next channel under `fallback`). Repeats are dropped by their key; a report for a message not known
(yet) is kept as `unknown` and applied when the send is recorded — a fast provider's report can overtake our own
record of a large batch. Opt-outs (WeChat unfollow, SMS 退订) disable the contact.

A push of reports is kept as it comes, one row whatever its size (`store_reports`, table `report_pushes`), and
applied after (`apply_waiting`, by `notifier/report_applier.py`: on SQLite once the writer has no send of a
fan-out's to claim or record), the oldest first, several pushes together, as if they came one after the other: the
repeats found by their keys, the others looked up in two or three statements, settled in two to four, and stored in
`receipts` with their outcomes — each written once —, whatever the number of reports. Only a channel that calls
again applies them one at a time (stored `pending`, then applied).

A waiting push holds the numbers its reports name, until it is applied and deleted; then no number is stored: a
report that names a number (Aliyun's BizId covers a whole batch) is matched by `receipt_match_key(number key,
provider id, number)`, a keyed digest (HMAC with `Store.number_key`, derived from the server secret), which is also
what tells its key apart from another number's report of the same batch; the number itself is forgotten. Erasure
takes the subscriber's numbers out of the pushes waiting (`forget_numbers`) and deletes the reports naming them
(`selfservice.forget`); reports never matched are deleted after `[worker] early_receipts_days` (`sweep_early`).

Redialling (voice): a report with `retry` set (not answered, busy, switched off) queues the delivery for another
call at `CallPolicy.next_call_at` — fewer than `max_calls` calls made (counted as the distinct calls reported
for the delivery), at least the provider's spacing after the last one, before the alert expires, while the alert
is live; when it gives None the delivery fails and the next channel applies. Early reports keep their `retry`
flag, so the rule is the same whichever arrives first. A final result about the call a delivery waits to redial
after (Tencent reports a call twice) fails it after all.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from pydantic_core import from_json, to_json

from channels.base import NumberDigest, Receipt
from channels.voice.common import CallPolicy
from notifier.states import DeliveryStatus, Priority
from notifier.store import fallback
from notifier.store.db import Db, Dialect, as_list, as_rows, planned_each_run
from notifier.store.marks import marking
from notifier.store.records import DeliveryUpdate
from notifier.store.states import LIVE_ALERT, is_, release

SENT = DeliveryStatus.SENT
# What became of a report: being applied (only inside its transaction), applied, a repeat, not (yet) known, or too
# late (the delivery had already settled).
PENDING, APPLIED, DUPLICATE, UNKNOWN, STALE = "pending", "applied", "duplicate", "unknown", "stale"


# One request's alert, by the request's id (parameters: channel; the push's ids as rows): an Aliyun BizId covers a
# request's every number, all of one alert's message.
REQUESTS = ("SELECT e.pmid, (SELECT x.alert_id FROM deliveries x WHERE x.channel = ? "
            "AND x.provider_message_id = e.pmid LIMIT 1) FROM {requests} AS e")
# Reports that name a number, each (n, the request's alert, the number) in one parameter after the channel: each
# contact of the number, then its person's delivery in the request's alert by its key — in this order on SQLite
# (CROSS JOIN), whose planner otherwise read every contact of the channel for each push; PostgreSQL plans a push at
# each run (`planned_each_run`), for the tables as they are.
BY_NUMBER = ("SELECT e.n, d.id, d.status, d.provider_message_id FROM {numbers} AS e CROSS JOIN contacts c "
             "CROSS JOIN deliveries d WHERE c.channel = ? AND c.address = e.address AND d.alert_id = e.alert "
             "AND d.subscriber_id = c.subscriber_id AND d.channel = c.channel")
# Reports by a provider id of their own (a Tencent serial number, a WeChat msgid, a call id): (n, id) each.
BY_ID = ("SELECT e.n, d.id, d.status FROM {ids} AS e "
         "CROSS JOIN deliveries d WHERE d.channel = ? AND d.provider_message_id = e.pmid")


def by_number(dialect: Dialect) -> str:
    return BY_NUMBER.format(numbers=dialect.records([("n", "INTEGER"), ("alert", "TEXT"), ("address", "TEXT")]))


def by_id(dialect: Dialect) -> str:
    return BY_ID.format(ids=dialect.records([("n", "INTEGER"), ("pmid", "TEXT")]))


def requests(dialect: Dialect) -> str:
    return REQUESTS.format(requests=dialect.records([("pmid", "TEXT")]))


async def _found(db: Db, channel: str, reports: Sequence[Receipt]) -> list[list[tuple[str, str]]]:
    """For each report, (id, status) of the deliveries it speaks of: one, or several when one number is the contact
    of several subscribers in the same request (a family sharing a phone) — the report is true for each of them —
    or none (not known, yet). Three statements whatever the number of reports."""
    found: list[list[tuple[str, str]]] = [[] for _ in reports]
    numbered = [(n, r) for n, r in enumerate(reports) if r.address is not None]
    if numbered:  # the provider id names a whole request (Aliyun BizId): the number picks the row
        ids = sorted({r.provider_message_id for _, r in numbered})
        alerts = {row[0]: row[1] for row in await db.fetch(requests(db.dialect), channel, as_rows([i] for i in ids))}
        asked = [(n, alerts[r.provider_message_id], r.address) for n, r in numbered
                 if alerts.get(r.provider_message_id) is not None]
        # The provider id is compared here, not in SQL, where it drew the row look-up to the request's index. A
        # contact whose person has no delivery in that alert comes back empty.
        for row in await db.fetch(by_number(db.dialect), as_rows(asked), channel) if asked else []:
            if row[3] == reports[row[0]].provider_message_id:
                found[row[0]].append((row[1], row[2]))
    named = [(n, r.provider_message_id) for n, r in enumerate(reports) if r.address is None]
    for row in await db.fetch(by_id(db.dialect), as_rows(named), channel) if named else []:
        found[row[0]].append((row[1], row[2]))
    return found


# Reports stored (one parameter after the channel), each with its outcome and the delivery it named — or `pending`
# (and none) while a report of a channel that calls again is applied —, its own time and when its push came; the keys
# that were new come back: a repeat of a stored report, or the same report twice among them, is dropped. (`WHERE
# true`: SQLite's parser needs it between a SELECT and ON CONFLICT.)
_STORE = ("INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, error, match_key, outcome, "
          "delivery_id, received_at, retry, occurred_at) SELECT ?, e.k, e.pmid, e.delivered, e.error, e.match, "
          "e.outcome, e.named, e.came, e.retry, e.at FROM {reports} AS e WHERE true "
          "ON CONFLICT (channel, receipt_key) DO NOTHING RETURNING receipt_key")


def storing(dialect: Dialect) -> str:
    return _STORE.format(reports=dialect.records([
        ("k", "TEXT"), ("pmid", "TEXT"), ("delivered", "INTEGER"), ("error", "TEXT"), ("match", "TEXT"),
        ("retry", "INTEGER"), ("at", "DOUBLE PRECISION"), ("came", "DOUBLE PRECISION"), ("outcome", "TEXT"),
        ("named", "TEXT")]))


# Which of a channel's report keys (one list parameter after the channel) are stored already: a push's repeats.
KNOWN = "SELECT receipt_key FROM receipts WHERE channel = ? AND receipt_key IN {keys}"


# The pushes waiting, oldest first, a few at a time (`apply_waiting` takes as many as make a batch); on PostgreSQL
# those another process is applying are left to it. `{only}`: a condition on them, or nothing.
WAITING = "SELECT id, channel, received_at, reports FROM report_pushes{only} ORDER BY id LIMIT ?"
LIFE_SAFETY_PUSH = " WHERE life_safety = 1"  # in the words of its index (migration 0031)
# Pushes read a look, each whole: a few more than a batch takes when they are big (Aliyun's 500, a busy channel's
# requests gathered by `ReportBatches`), and enough of one-report pushes on a quiet store.
PUSHES_A_LOOK = 16


def counted(outcomes: Iterable[str]) -> dict[str, int]:
    """Applied reports' outcomes (`apply_waiting`) counted by outcome, every outcome named."""
    counts = dict.fromkeys((APPLIED, DUPLICATE, UNKNOWN, STALE), 0)
    for outcome in outcomes:
        counts[outcome] += 1
    return counts


def push_id(now: float) -> int:
    """A new push's id: its time in microseconds, so that the ids sort as the pushes came (SQLite reads them in that
    order from the table itself: the id is its row number), then three random digits for two pushes of the same
    microsecond (two channels', two processes')."""
    return round(now * 1_000_000) * 1_000 + secrets.randbelow(1_000)


async def store_reports(db: Db, channel: str, receipts: Sequence[Receipt], now: float,
                        life_safety: bool = False) -> int:
    """Keep a push of provider reports as it came, to be applied after (`apply_waiting`): one row, whatever the
    number of reports — a million SMS send back a million reports, on the writer the sends need. `life_safety`:
    it holds a report a life-safety delivery awaits (`for_life_safety`). Its id."""
    pushed = push_id(now)
    await db.execute("INSERT INTO report_pushes (id, channel, received_at, reports, life_safety) "
                     "VALUES (?, ?, ?, ?, ?)", pushed, channel, now, _kept(receipts), int(life_safety))
    return pushed


async def for_life_safety(db: Db, channel: str, receipts: Sequence[Receipt], since: float) -> bool:
    """Whether a push holds a report that a life-safety delivery awaits, sent for an alert released since `since`
    (`life_safety_awaits_reports`, asked first: a push of a quiet day's or a routine fan-out's costs that one step):
    its provider ids looked up (`deliveries_provider`). A report that came before its send was recorded is not
    found: its push waits with the others."""
    if not receipts or not await life_safety_awaits_reports(db, since):
        return False
    ids = as_list({r.provider_message_id for r in receipts})  # a set: an Aliyun BizId names a thousand numbers
    return await db.fetchval(
        f"SELECT 1 FROM deliveries WHERE channel = ? AND provider_message_id IN {db.dialect.each()} "
        f"AND {awaiting_life_safety()} LIMIT 1", channel, ids) is not None


def _kept(receipts: Sequence[Receipt]) -> str:
    """A push's reports as kept: a JSON array of [pmid, delivered, key, address, error, occurred_at, retry]."""
    return to_json([[r.provider_message_id, r.delivered, r.key, r.address, r.error, r.occurred_at, r.retry]
                    for r in receipts]).decode()


def _reports(pushed: str) -> list[Receipt]:
    """A push's reports as kept (`_kept`)."""
    return [Receipt(pmid, delivered, key, address=address, error=error, occurred_at=at, retry=retry)
            for pmid, delivered, key, address, error, at, retry in from_json(pushed)]


Push = tuple[int, str, float, list[Receipt]]  # id, channel, when it came, reports


class Applied(NamedTuple):
    """What `apply_waiting` did: (push id, channel, each report's outcome) of each push applied, whether more
    were waiting than it took (read, or not read: a look's worth), and the life-safety deliveries its reports queued
    (a failure's next channel, a call to make again: `fallback.Requeued.alerts`)."""

    pushes: list[tuple[int, str, list[str]]]
    more: bool
    requeued: dict[str, int]


async def apply_waiting(db: Db, now: float, number_key: bytes, redial: Mapping[str, CallPolicy],
                        limit: int, *, life_safety: bool = False) -> Applied:
    """Apply the pushes waiting (with `life_safety`, those that hold a report a life-safety delivery awaits), the
    oldest first, as many as hold at most `limit` reports (at least one), their reports as if one after the other,
    and forget them. `number_key`: the key of number digests; `redial`: the call policy of each channel that calls
    people."""
    waiting = WAITING.format(only=LIFE_SAFETY_PUSH if life_safety else "")
    rows = await db.fetch(waiting + db.dialect.skip_locked, PUSHES_A_LOOK)
    taken: list[Push] = []
    size = 0
    for row in rows:
        reports = _reports(row["reports"])
        if taken and size + len(reports) > limit:
            break
        taken.append((row["id"], row["channel"], float(row["received_at"]), reports))
        size += len(reports)
    applied: list[tuple[int, str, list[str]]] = []
    requeued = fallback.Requeued()
    async with planned_each_run(db):
        # A channel's pushes one after another are applied together.
        for channel, grouped in itertools.groupby(taken, key=lambda push: push[1]):
            run = list(grouped)
            outcomes = iter(await _apply_reports(
                db, channel, [r for *_, reports in run for r in reports],
                [came for _, _, came, reports in run for _ in reports], now, number_key, redial.get(channel), requeued))
            applied += [(pushed, channel, [next(outcomes) for _ in reports]) for pushed, _, _, reports in run]
    if taken:
        await db.execute(f"DELETE FROM report_pushes WHERE id IN {db.dialect.each('BIGINT')}",
                         as_list(t[0] for t in taken))
    return Applied(applied, len(rows) > len(taken) or len(rows) == PUSHES_A_LOOK, requeued.alerts)


async def _apply_reports(db: Db, channel: str, receipts: Sequence[Receipt], came: Sequence[float], now: float,
                         number_key: bytes, redial: CallPolicy | None, requeued: fallback.Requeued) -> list[str]:
    """A channel's reports, as if one after the other, each stored (a repeat dropped) with when it came (`came`: an
    early report is applied in that order, `apply_early_receipts`) — a push at a time, or one at a time for a
    channel that calls again (a call's report may queue it again, which the next report must see); each one's
    outcome."""
    rows = _rows(receipts, came, number_key)
    if redial is None:
        return await _apply_push(db, channel, receipts, rows, now, requeued)
    stored = await _stored(db, channel, [(key, (*row, PENDING, None)) for key, row in rows])
    done = iter([await _apply_stored(db, channel, r._replace(key=key), (await _found(db, channel, [r]))[0], now,
                                     redial, requeued) for r, (key, outcome) in zip(receipts, stored, strict=True)
                 if outcome == PENDING])
    return [next(done) if outcome == PENDING else outcome for _, outcome in stored]


def _rows(receipts: Sequence[Receipt], came: Sequence[float],
          number_key: bytes) -> list[tuple[str, tuple[object, ...]]]:
    """Each report's key as stored (with its number's keyed digest, if it names one) and its row (`storing`)."""
    # Keyed once for the push (a provider pushes hundreds of reports at a time), and only if a report names a number.
    digest = NumberDigest(number_key) if any(r.address for r in receipts) else None
    stored: list[tuple[str, tuple[object, ...]]] = []
    for r, at in zip(receipts, came, strict=True):
        match = digest(r.provider_message_id, r.address) if digest is not None and r.address else None
        key = r.key if match is None else f"{r.key}:{match[:24]}"
        stored.append((key, (key, r.provider_message_id, int(r.delivered), r.error, match, int(r.retry),
                             r.occurred_at, at)))
    return stored


async def _stored(db: Db, channel: str, stored: Sequence[tuple[str, tuple[object, ...]]]) -> list[tuple[str, str]]:
    """(key, PENDING — stored now — or DUPLICATE) of each report stored (its key, its row: `storing`'s)."""
    new = {row[0] for row in await db.fetch(storing(db.dialect), channel, as_rows(row for _, row in stored))}
    outcomes = []
    for key, _ in stored:
        outcomes.append((key, PENDING if key in new else DUPLICATE))
        new.discard(key)  # a second copy in the same push is a repeat
    return outcomes


async def apply_receipts(db: Db, channel: str, receipts: Sequence[Receipt], now: float, number_key: bytes,
                         redial: CallPolicy | None = None, *, batch: int = 2_000) -> Applied:
    """`store_reports` and, in the same transaction, `apply_waiting` until it is applied (those kept before it
    first): that push alone, with the life-safety deliveries queued by all that was applied."""
    pushed = await store_reports(db, channel, receipts, now)
    requeued = fallback.Requeued()
    while True:
        done = await apply_waiting(db, now, number_key, {channel: redial} if redial else {}, batch)
        for alert_id, priority in done.requeued.items():
            requeued.add(alert_id, priority)
        for applied in done.pushes:
            if applied[0] == pushed:
                return Applied([applied], False, requeued.alerts)
        if not done.more:
            raise RuntimeError("the push just kept was not there to apply")


async def forget_numbers(db: Db, addresses: Sequence[str]) -> None:
    """Erasure: the reports naming one of `addresses` (phone numbers, E.164: nothing LIKE reads specially but `_`)
    taken out of the pushes still waiting (the others stay)."""
    for address in addresses:
        # LIKE finds the pushes that may name it (its `_` matches any character: the reports are then compared).
        for row in await db.fetch("SELECT id, reports FROM report_pushes WHERE reports LIKE ?", f'%"{address}"%'):
            left = [r for r in _reports(row["reports"]) if r.address != address]
            await db.execute("UPDATE report_pushes SET reports = ? WHERE id = ?", _kept(left), row["id"])


async def _apply_push(db: Db, channel: str, receipts: Sequence[Receipt], rows: Sequence[tuple[str, tuple[object, ...]]],
                      now: float, requeued: fallback.Requeued) -> list[str]:
    """Reports of a channel that never calls again (each with its key and row, `_rows`) applied together, as if one
    after the other — a delivery settled by an earlier report is no longer waiting for a later one —, then stored
    with their outcomes: each written once. Their outcomes."""
    known = {row[0] for row in await db.fetch(KNOWN.format(keys=db.dialect.each()), channel,
                                              as_list(key for key, _ in rows))}
    fresh: list[int] = []  # the reports not stored before, each key's first
    for n, (key, _) in enumerate(rows):
        if key not in known:
            known.add(key)
            fresh.append(n)
    taken: set[str] = set()
    delivered: list[tuple[str, float]] = []
    failed: list[tuple[str, str]] = []
    outcomes = [DUPLICATE] * len(rows)
    named: list[str | None] = [None] * len(rows)
    for n, found in zip(fresh, await _found(db, channel, [receipts[n] for n in fresh]), strict=True):
        r = receipts[n]
        waiting = [d for d, status in found if d not in taken and await _waits_for(db, d, status, r, now)]
        taken.update(waiting)
        if r.delivered:
            delivered += [(d, _when(r, now)) for d in waiting]
        else:
            failed += [(d, _failure(r)) for d in waiting]
        outcomes[n] = UNKNOWN if not found else (APPLIED if waiting else STALE)
        named[n] = waiting[0] if waiting else (found[0][0] if found else None)
    await _settle(db, delivered, failed, now, requeued)
    # On PostgreSQL another process may have stored one of them meanwhile (the provider sent it twice, both copies
    # applied at once): this INSERT waited for that one's commit, and the report counts as that one's; its delivery
    # was settled once (`_settle` takes only deliveries still `sent`, and waited likewise).
    stored = await _stored(db, channel, [(rows[n][0], (*rows[n][1], outcomes[n], named[n])) for n in fresh]
                           ) if fresh else []
    for n, (_, as_stored) in zip(fresh, stored, strict=True):
        if as_stored == DUPLICATE:
            outcomes[n] = DUPLICATE
    return outcomes


async def apply_early_receipts(db: Db, sent: Sequence[DeliveryUpdate], now: float, number_key: Callable[[], bytes],
                               redial: Mapping[str, CallPolicy] | None, requeued: fallback.Requeued) -> int:
    """Reports that arrived before their send was recorded were kept as unknown; now that the provider ids are
    stored, apply them (`redial`: the call policy of each channel that calls people; the life-safety deliveries they
    queue noted in `requeued`). The usual case (no report kept
    unmatched) costs the hot path one probe a batch, otherwise one indexed query (`reported_early`), and a number
    is digested (`number_key`, read only then) only when a report waits for its provider id. Returns how many
    were applied."""
    # The probe first: the batch's ids gathered (on the single writer's thread) and searched one by one cost
    # 0.125 ms a batch of 600 even when no report is kept, the probe 0.001.
    if not sent or await db.fetchval(f"SELECT 1 FROM receipts WHERE outcome = '{UNKNOWN}' LIMIT 1") is None:
        return 0
    # A set: an Aliyun request's 1,000 numbers share one BizId.
    ids = {u.provider_message_id for u in sent if u.provider_message_id is not None}
    if not ids:
        return 0
    named = {r[0] for r in await db.fetch(reported_early(db.dialect), as_list(ids))}
    if not named:
        return 0
    applied, digest = 0, NumberDigest(number_key())
    async with planned_each_run(db):  # the settling statements are a push's (`_settle`)
        for u in sent:
            if u.provider_message_id not in named:
                continue
            match = digest(u.provider_message_id, u.address) if u.provider_message_id and u.address else None
            # Every report that came first, in the order they came (Tencent's two about one call: the status callback,
            # then the failure callback with the precise reason), each as if it came now — at its own time, or
            # when it came (reports stored before migration 0027 kept no time of their own).
            for row in await db.fetch(
                    "SELECT r.channel, r.receipt_key, r.delivered, r.error, COALESCE(r.occurred_at, r.received_at) "
                    "AS at, r.retry FROM receipts r "
                    f"JOIN deliveries d ON d.id = ? AND d.channel = r.channel WHERE r.outcome = '{UNKNOWN}' "
                    "AND r.provider_message_id = ? AND (r.match_key IS NULL OR r.match_key = ?) "
                    "ORDER BY r.received_at, r.receipt_key", u.delivery_id, u.provider_message_id, match):
                receipt = Receipt(provider_message_id=u.provider_message_id or "", delivered=bool(row["delivered"]),
                                  key=row["receipt_key"], error=row["error"], occurred_at=row["at"],
                                  retry=bool(row["retry"]))
                status = await db.fetchval("SELECT status FROM deliveries WHERE id = ?", u.delivery_id)  # as of now
                outcome = await _apply_stored(db, row["channel"], receipt, [(u.delivery_id, status)], now,
                                              (redial or {}).get(row["channel"]), requeued)
                applied += outcome == APPLIED
    return applied


def awaiting_life_safety(d: str = "") -> str:
    """The rows of `deliveries_awaiting_life_safety` (migration 0030), in its own words — a statement that says them
    so is planned on that index by both back-ends (a parameter in their place would not prove them); `d`: the
    table's alias with its dot."""
    return f"{is_(SENT, d)} AND {d}priority >= {int(Priority.LIFE_SAFETY)}"


async def life_safety_awaits_reports(db: Db, since: float) -> bool:
    """Whether a live life-safety alert released since `since` (its publish, schedule or approval) has deliveries
    sent that still await their reports (`sent`): what those settle — its coverage, a failure's next channel, a call
    to make again — goes before a routine fan-out's sends (`report_applier.py`). Asked at every push stored
    (`for_life_safety`): the live alerts read by their status (`alerts_expiry`), and each released since looked up
    in the index of the life-safety rows awaiting their report (migration 0030), one step."""
    return await db.fetchval(
        f"SELECT 1 FROM alerts a WHERE a.status IN {LIVE_ALERT} AND {release()} > ? AND EXISTS (SELECT 1 FROM "
        f"deliveries d WHERE d.alert_id = a.id AND {awaiting_life_safety('d.')}) LIMIT 1", since) is not None


def reported_early(dialect: Dialect) -> str:
    """Which of a batch's provider ids (one list parameter) have reports kept as unknown: asked at every record of
    accepted sends, so answered by a search a provider id (`receipts_early`, migration 0017), never by reading every
    unknown report kept — those never matched stay for `early_receipts_days`."""
    return (f"SELECT DISTINCT provider_message_id FROM receipts WHERE outcome = '{UNKNOWN}' "
            f"AND provider_message_id IN {dialect.each()}")


async def sweep_early(db: Db, before: float) -> int:
    """Delete the reports still unmatched that arrived before `before` (retention: `receipts_early` rows)."""
    return await db.execute(f"DELETE FROM receipts WHERE outcome = '{UNKNOWN}' AND received_at < ?", before)


def _when(r: Receipt, now: float) -> float:
    """When a delivery report says the message arrived: its own time, never later than now."""
    return min(r.occurred_at, now) if r.occurred_at else now


def _failure(r: Receipt) -> str:
    return f"receipt: {r.error or 'failed'}"


async def settle(db: Db, delivery_id: str, r: Receipt, now: float, redial: CallPolicy | None,
                 requeued: fallback.Requeued) -> None:
    """A `sent` delivery's report: delivered (its target reached, at the report's time but never before the send),
    queued for another call (a call nobody answered, while `redial` allows one), or failed (the next channel under
    fallback); a life-safety delivery queued noted in `requeued`."""
    if r.delivered:
        await _settle(db, [(delivery_id, _when(r, now))], [], now, requeued)
        return
    error = _failure(r)
    if r.retry and redial is not None:
        why = await _call_again(db, delivery_id, r, now, redial, requeued)
        if why is None:
            return
        error = f"{error}; gave up {why}"
    await _settle(db, [], [(delivery_id, error)], now, requeued)


async def _settle(db: Db, delivered: Sequence[tuple[str, float]], failed: Sequence[tuple[str, str]],
                  now: float, requeued: fallback.Requeued) -> None:
    """Deliveries still `sent` settled by their reports: delivered (id, the report's time) — their targets reached,
    never before the send — or failed (id, why) — the next channel under fallback."""
    records = db.dialect.records
    if delivered:
        ids = [row[0] for row in await db.fetch(
            f"UPDATE deliveries SET status = '{DeliveryStatus.DELIVERED}', "
            f"delivered_at = {db.dialect.max_of('COALESCE(deliveries.sent_at, e.at)', 'e.at')}, finished_at = ?, "
            f"updated_at = ? FROM {records([('id', 'TEXT'), ('at', 'DOUBLE PRECISION')])} AS e "
            f"WHERE deliveries.id = e.id AND {is_(SENT, 'deliveries.')} RETURNING deliveries.id",
            now, now, as_rows(delivered))]
        # Marked from the rows looked up again by their ids: carrying each row's person and time back from the
        # UPDATE instead took SQLite 10.0 / 10.1 -> 11.1 / 12.0 ms a push of 500 (PostgreSQL -1 ms of ~35).
        if ids:  # each person once (`once`): a push is one channel's, and a person has one delivery an alert on it
            await db.execute(marking(f"deliveries d WHERE d.id IN {db.dialect.each()}", "d.delivered_at", True,
                                     reached=True), as_list(ids))
    if failed:
        ids = [row[0] for row in await db.fetch(
            f"UPDATE deliveries SET status = '{DeliveryStatus.FAILED}', finished_at = ?, updated_at = ?, "
            f"last_error = e.error FROM {records([('id', 'TEXT'), ('error', 'TEXT')])} AS e "
            f"WHERE deliveries.id = e.id AND {is_(SENT, 'deliveries.')} RETURNING deliveries.id",
            now, now, as_rows(failed))]
        await fallback.activate_next(db, ids, now, requeued)


async def _call_again(db: Db, delivery_id: str, r: Receipt, now: float, policy: CallPolicy,
                      requeued: fallback.Requeued) -> str | None:
    """Queue the delivery for another call if `policy` allows one (None then); else why not."""
    if await db.fetchval(f"SELECT 1 FROM deliveries WHERE id = ? AND {is_(SENT)}{db.dialect.for_update}",
                         delivery_id) is None:
        return "(no longer waiting for this call)"
    row = await db.fetchrow(
        f"SELECT d.sent_at, d.alert_id, d.priority, a.expires_at, a.status IN {LIVE_ALERT} AS live FROM deliveries d "
        "JOIN alerts a ON a.id = d.alert_id WHERE d.id = ?", delivery_id)
    assert row is not None  # noqa: S101 - locked above
    # The calls reported for this delivery before this one (each call has its own id), and this one.
    calls = 1 + int(await db.fetchval(
        "SELECT COUNT(DISTINCT provider_message_id) FROM receipts WHERE delivery_id = ? "
        "AND provider_message_id <> ?", delivery_id, r.provider_message_id))
    if not row["live"]:
        return "(the alert is no longer live)"
    at = policy.next_call_at(calls, float(row["sent_at"] or now), now, row["expires_at"])
    if at is None:
        if calls < policy.max_calls:
            return "(the alert expires before another call)"
        return f"after {calls} call{'s' if calls > 1 else ''}"
    await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.QUEUED}', next_attempt_at = ?, updated_at = ?, "
        f"last_error = ? WHERE id = ? AND {is_(SENT)}", at, now,
        f"receipt: {r.error or 'not answered'}; calling again", delivery_id)
    requeued.add(row["alert_id"], row["priority"])
    return None


async def _apply_stored(db: Db, channel: str, r: Receipt, found: Sequence[tuple[str, str]], now: float,
                        redial: CallPolicy | None, requeued: fallback.Requeued) -> str:
    """A stored report applied to the deliveries it speaks of (`found`: id and status of each), whether it came
    after the send's record or before it: settled where one waits for it; its outcome written on the report."""
    waiting = [delivery_id for delivery_id, status in found if await _waits_for(db, delivery_id, status, r, now)]
    outcome = UNKNOWN if not found else (APPLIED if waiting else STALE)
    for delivery_id in waiting:
        await settle(db, delivery_id, r, now, redial, requeued)
    named = waiting[0] if waiting else (found[0][0] if found else None)
    await db.execute("UPDATE receipts SET outcome = ?, delivery_id = ? WHERE channel = ? AND receipt_key = ?",
                     outcome, named, channel, r.key)
    return outcome


async def _waits_for(db: Db, delivery_id: str, status: str, r: Receipt, now: float) -> bool:
    """Whether a delivery in `status` waits for this report: it was sent and has no result yet — or the report is a
    final result about a call whose delivery waits to be called again (Tencent reports one call twice: "failed" in
    its status callback, the precise reason in its failure callback), which then leaves no call to make."""
    if status == SENT:
        return True
    return (not r.delivered and not r.retry and status == DeliveryStatus.QUEUED
            and await _stop_redial(db, delivery_id, r, now))


async def _stop_redial(db: Db, delivery_id: str, r: Receipt, now: float) -> bool:
    """Back to `sent` (to be failed by `settle`) a delivery queued to be called again after this very call."""
    return await db.execute(
        f"UPDATE deliveries SET status = '{SENT}', updated_at = ? WHERE id = ? AND {is_(DeliveryStatus.QUEUED)} "
        "AND provider_message_id = ?", now, delivery_id, r.provider_message_id) > 0


async def disable_contacts(db: Db, channel: str, address: str, reason: str, now: float) -> int:
    """Stop using an address on a channel (WeChat unfollow, SMS 退订); returns how many subscribers it touched."""
    return await db.execute(
        "UPDATE contacts SET disabled_at = ?, disabled_reason = ? WHERE channel = ? AND address = ? "
        "AND disabled_at IS NULL", now, reason, channel, address)
