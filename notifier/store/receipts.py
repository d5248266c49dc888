"""How provider receipts are applied: a report turns a `sent` delivery into `delivered` (its target is reached) or
`failed` (the next channel under `fallback`). Repeats are dropped by their key; a report for a message not known
(yet) is kept as `unknown` and applied when the send is recorded — a fast provider's report can overtake our own
record of a large batch. Opt-outs (WeChat unfollow, SMS 退订) disable the contact.

No number is stored: a report that names a number (Aliyun's BizId covers a whole batch) is matched by
`receipt_match_key(number key, provider id, number)`, a keyed digest (HMAC with `Store.number_key`, derived from
the server secret), which is also what tells its key apart from another number's report of the same batch; the
number itself is forgotten. Erasure deletes the reports naming the subscriber's number (`selfservice.forget`);
reports never matched are deleted after `[worker] early_receipts_days` (`sweep_early`).

Redialling (voice): a report with `retry` set (not answered, busy, switched off) queues the delivery for another
call at `CallPolicy.next_call_at` — fewer than `max_calls` calls made (counted as the distinct calls reported
for the delivery), at least the provider's spacing after the last one, before the alert expires, while the alert
is live; when it gives None the delivery fails and the next channel applies. Early reports keep their `retry`
flag, so the rule is the same whichever arrives first. A final result about the call a delivery waits to redial
after (Tencent reports a call twice) fails it after all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from channels.base import NumberDigest, Receipt
from channels.voice.common import CallPolicy
from notifier.states import DeliveryStatus
from notifier.store import fallback
from notifier.store.db import Db, Dialect, as_list
from notifier.store.records import DeliveryUpdate
from notifier.store.states import LIVE_ALERT, is_

SENT = DeliveryStatus.SENT
# What became of a report: waiting to be matched (only inside its transaction), applied, a repeat, not (yet) known,
# or too late (the delivery had already settled).
PENDING, APPLIED, DUPLICATE, UNKNOWN, STALE = "pending", "applied", "duplicate", "unknown", "stale"


# The number's delivery in one request's alert, by its key: alert (the request's), person (each contact `c` of the
# number), channel.
_OF_NUMBER = ("FROM deliveries d WHERE d.alert_id = (SELECT e.alert_id FROM deliveries e WHERE e.channel = ? "
              "AND e.provider_message_id = ? LIMIT 1) AND d.subscriber_id = c.subscriber_id AND d.channel = c.channel")
# Each contact's delivery of the number in the request's alert, with its provider id (parameters: channel, the
# request's id, three times, then channel and the number): every column a look-up by that key, so that no plan,
# however small the table it was made for, reads the table or the request's rows (PostgreSQL keeps a generic plan
# after five runs).
BY_NUMBER = (f"SELECT (SELECT d.id {_OF_NUMBER}), (SELECT d.status {_OF_NUMBER}), "
             f"(SELECT d.provider_message_id {_OF_NUMBER}) FROM contacts c WHERE c.channel = ? AND c.address = ?")


async def _find(db: Db, channel: str, r: Receipt) -> list[tuple[str, str]]:
    """(id, status) of the deliveries a report speaks of: one, or several when one number is the contact of
    several subscribers in the same batch (a family sharing a phone) — the report is true for each of them."""
    if r.address is not None:  # the provider id names a whole batch (Aliyun BizId): the number picks the row
        # The number's contacts first, then each one's delivery in the request's alert by its key (a request is one
        # alert's message), in a subquery of its own: planned as a join, both planners read the request's every row
        # for each report. 500 reports of a 1,000-number request: SQLite 606 / 587 -> 261-369 ms, PostgreSQL
        # 1,615 / 1,803 -> 555-826 ms. The provider id is compared here, not in SQL, where it drew the row look-up
        # to the request's index. A contact whose person has no delivery in that alert comes back empty.
        rows = await db.fetch(BY_NUMBER, *(channel, r.provider_message_id) * 3, channel, r.address)
        return [(row[0], row[1]) for row in rows if row[0] is not None and row[2] == r.provider_message_id]
    else:
        rows = await db.fetch("SELECT id, status FROM deliveries WHERE channel = ? AND provider_message_id = ?",
                              channel, r.provider_message_id)
    return [(row[0], row[1]) for row in rows]


async def apply_receipts(db: Db, channel: str, receipts: Sequence[Receipt], now: float, number_key: bytes,
                         redial: CallPolicy | None = None) -> dict[str, int]:
    """Apply provider reports in one transaction; returns counts by outcome. `number_key`: the key of number
    digests; `redial`: the channel's call policy (voice), which a report asking for another call follows."""
    counts = {APPLIED: 0, DUPLICATE: 0, UNKNOWN: 0, STALE: 0}
    # Keyed once for the batch (a provider pushes hundreds of reports at a time), and only if a report names a number.
    digest = NumberDigest(number_key) if any(r.address for r in receipts) else None
    for reported in receipts:
        match = (digest(reported.provider_message_id, reported.address)
                 if digest is not None and reported.address else None)
        r = reported if match is None else replace(reported, key=f"{reported.key}:{match[:24]}")  # as stored
        inserted = await db.execute(
            "INSERT INTO receipts (channel, receipt_key, provider_message_id, delivered, error, match_key, outcome, "
            "received_at, retry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, receipt_key) DO NOTHING",
            channel, r.key, r.provider_message_id, int(r.delivered), r.error, match, PENDING, now, int(r.retry))
        if inserted == 0:
            counts[DUPLICATE] += 1
            continue
        counts[await _apply_stored(db, channel, r, await _find(db, channel, r), now, redial)] += 1
    return counts


async def apply_early_receipts(db: Db, sent: Sequence[DeliveryUpdate], now: float, number_key: Callable[[], bytes],
                               redial: Mapping[str, CallPolicy] | None = None) -> int:
    """Reports that arrived before their send was recorded were kept as unknown; now that the provider ids are
    stored, apply them (`redial`: the call policy of each channel that calls people). The usual case (no report kept
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
    for u in sent:
        if u.provider_message_id not in named:
            continue
        match = digest(u.provider_message_id, u.address) if u.provider_message_id and u.address else None
        # Every report that came first, in the order they came (Tencent's two about one call: the status callback,
        # then the failure callback with the precise reason), each as if it came now.
        for row in await db.fetch(
                "SELECT r.channel, r.receipt_key, r.delivered, r.error, r.received_at, r.retry FROM receipts r "
                f"JOIN deliveries d ON d.id = ? AND d.channel = r.channel WHERE r.outcome = '{UNKNOWN}' "
                "AND r.provider_message_id = ? AND (r.match_key IS NULL OR r.match_key = ?) "
                "ORDER BY r.received_at, r.receipt_key", u.delivery_id, u.provider_message_id, match):
            receipt = Receipt(provider_message_id=u.provider_message_id or "", delivered=bool(row["delivered"]),
                              key=row["receipt_key"], error=row["error"], occurred_at=row["received_at"],
                              retry=bool(row["retry"]))
            status = await db.fetchval("SELECT status FROM deliveries WHERE id = ?", u.delivery_id)  # as of now
            outcome = await _apply_stored(db, row["channel"], receipt, [(u.delivery_id, status)], now,
                                          (redial or {}).get(row["channel"]))
            applied += outcome == APPLIED
    return applied


def reported_early(dialect: Dialect) -> str:
    """Which of a batch's provider ids (one list parameter) have reports kept as unknown: asked at every record of
    accepted sends, so answered by a search a provider id (`receipts_early`, migration 0017), never by reading every
    unknown report kept — those never matched stay for `early_receipts_days`."""
    return (f"SELECT DISTINCT provider_message_id FROM receipts WHERE outcome = '{UNKNOWN}' "
            f"AND provider_message_id IN {dialect.each()}")


async def sweep_early(db: Db, before: float) -> int:
    """Delete the reports still unmatched that arrived before `before` (retention: `receipts_early` rows)."""
    return await db.execute(f"DELETE FROM receipts WHERE outcome = '{UNKNOWN}' AND received_at < ?", before)


async def settle(db: Db, delivery_id: str, r: Receipt, now: float, redial: CallPolicy | None = None) -> None:
    """A `sent` delivery's report: delivered (its target reached, at the report's time but never before the send),
    queued for another call (a call nobody answered, while `redial` allows one), or failed (the next channel under
    fallback)."""
    when = min(r.occurred_at, now) if r.occurred_at else now
    if r.delivered:
        changed = await db.execute(
            f"UPDATE deliveries SET status = '{DeliveryStatus.DELIVERED}', "
            f"delivered_at = {db.dialect.max_of('COALESCE(sent_at, ?)', '?')}, finished_at = ?, updated_at = ? "
            f"WHERE id = ? AND {is_(SENT)}", when, when, now, now, delivery_id)
        if changed:
            await db.execute(
                "UPDATE alert_targets SET reached_at = COALESCE(reached_at, d.delivered_at) FROM deliveries d "
                "WHERE d.id = ? AND alert_targets.alert_id = d.alert_id "
                "AND alert_targets.subscriber_id = d.subscriber_id", delivery_id)
        return
    error = f"receipt: {r.error or 'failed'}"
    if r.retry and redial is not None:
        why = await _call_again(db, delivery_id, r, now, redial)
        if why is None:
            return
        error = f"{error}; gave up {why}"
    changed = await db.execute(
        f"UPDATE deliveries SET status = '{DeliveryStatus.FAILED}', finished_at = ?, updated_at = ?, last_error = ? "
        f"WHERE id = ? AND {is_(SENT)}", now, now, error, delivery_id)
    if changed:
        await fallback.activate_next(db, [delivery_id], now)


async def _call_again(db: Db, delivery_id: str, r: Receipt, now: float, policy: CallPolicy) -> str | None:
    """Queue the delivery for another call if `policy` allows one (None then); else why not."""
    if await db.fetchval(f"SELECT 1 FROM deliveries WHERE id = ? AND {is_(SENT)}{db.dialect.for_update}",
                         delivery_id) is None:
        return "(no longer waiting for this call)"
    row = await db.fetchrow(
        f"SELECT d.sent_at, a.expires_at, a.status IN {LIVE_ALERT} AS live FROM deliveries d "
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
    return None


async def _apply_stored(db: Db, channel: str, r: Receipt, found: Sequence[tuple[str, str]], now: float,
                        redial: CallPolicy | None) -> str:
    """A stored report applied to the deliveries it speaks of (`found`: id and status of each), whether it came
    after the send's record or before it: settled where one waits for it; its outcome written on the report."""
    waiting = [delivery_id for delivery_id, status in found if await _waits_for(db, delivery_id, status, r, now)]
    outcome = UNKNOWN if not found else (APPLIED if waiting else STALE)
    for delivery_id in waiting:
        await settle(db, delivery_id, r, now, redial)
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
