"""Fallback activation, the one rule shared by result recording, sweeps and receipts: when a subscriber's current
channel failed (or stayed silent past the alert's `fallback_after`), their next channel — the `skipped` delivery one
position down — is queued now, where the alert's policy is `fallback` and the alert is still live."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.states import DeliveryStatus, Priority
from notifier.store.db import Db, as_list, as_rows, planned_each_run
from notifier.store.states import FALLS_BACK, LIVE_ALERT, NEVER, is_

SKIPPED = DeliveryStatus.SKIPPED
SILENT_BATCH = 10_000  # skipped rows looked at a sweep


class Requeued:
    """The life-safety deliveries a transaction queued by changing rows it had stored — a fallback, a call to make
    again —, which no sign of an insert tells the workers of (PostgreSQL's trigger, `SqlStore._tell_queued`): the
    highest priority queued of each alert, for the workers to be told after the commit (`SqlStore._tell_requeued`),
    so that the life-safety loop claims them at once, not at its next poll. Routine rows are left to the routine
    loops, which are at work or poll."""

    def __init__(self) -> None:
        self.alerts: dict[str, int] = {}

    def add(self, alert_id: str, priority: int) -> None:
        """A row of `alert_id` queued at `priority`."""
        if priority >= Priority.LIFE_SAFETY:
            self.alerts[alert_id] = max(priority, self.alerts.get(alert_id, priority))


# The person's next channel `n` of a delivery `d`: the row one position down, waiting `skipped`.
_NEXT = ("JOIN deliveries n ON n.alert_id = d.alert_id AND n.subscriber_id = d.subscriber_id "
         f"AND n.position = d.position + 1 AND {is_(SKIPPED, 'n.')}")


async def activate_next(db: Db, delivery_ids: Sequence[str], now: float, requeued: Requeued) -> int:
    """Queue the next channel of each given delivery's subscriber (the life-safety ones noted in `requeued`); returns
    how many were queued."""
    if not delivery_ids:
        return 0
    # The given rows first, as `schedule_silent`'s (below): planned from the alert, every row of it waiting
    # `skipped` was read for each (20,000 people: 65 ms for the two failures of a batch). Planned at each run: the
    # rows by their ids, which a generic plan made on a small table read by reading the table.
    async with planned_each_run(db):
        queued = await db.fetch(
            f"WITH d AS MATERIALIZED (SELECT alert_id, subscriber_id, position FROM deliveries WHERE id IN "
            f"{db.dialect.each()}) UPDATE deliveries SET status = '{DeliveryStatus.QUEUED}', next_attempt_at = ?, "
            f"updated_at = ? WHERE id IN (SELECT n.id FROM d {_NEXT} JOIN alerts a ON a.id = d.alert_id "
            f"WHERE a.{FALLS_BACK} AND a.status IN {LIVE_ALERT}) RETURNING alert_id, priority",
            as_list(delivery_ids), now, now)
    for row in queued:
        requeued.add(row["alert_id"], row["priority"])
    return len(queued)


async def schedule_silent(db: Db, accepted: str, joined: str, params: Sequence[Any]) -> None:
    """Deliveries just accepted as `sent` (`accepted`: a FROM item `u` with their time `at`, tied to their rows `d` by
    `joined`; `params`: the item's, then the condition's — written before the record releases their lease): the
    subscriber's next channel, waiting `skipped`, is looked at when the alert's fallback window has passed
    (`activate_silent`). The caller asks only for batches with an alert that falls back (`recorded_alerts`)."""
    # The accepted rows first, each then looked up by its person's key: left to itself PostgreSQL, which cannot know
    # how many rows wait `skipped`, started from the alert and read every one of them, a whole fan-out's at every
    # batch (20,000 people: 72 ms a batch of 500; 100,000: ~1 ms a delivery).
    await db.execute(f"WITH d AS MATERIALIZED (SELECT d.alert_id, d.subscriber_id, d.position, u.at FROM {accepted} "
                     f"AS u JOIN deliveries d ON {joined}) {scheduling('d', 'd.at')}", *params)


def scheduling(source: str, at: str) -> str:
    """`schedule_silent`'s UPDATE, for the accepted deliveries `d` that `source` gives (their alert, person and
    position), each accepted at `at`."""
    return ("UPDATE deliveries SET next_attempt_at = x.wake FROM ("
            f"SELECT n.id, {at} + a.fallback_after AS wake FROM {source} "
            f"JOIN alerts a ON a.id = d.alert_id AND a.{FALLS_BACK} {_NEXT}) AS x WHERE deliveries.id = x.id")


async def activate_silent(db: Db, now: float, requeued: Requeued) -> int:
    """A delivery accepted but unconfirmed for its alert's fallback window: try the subscriber's next channel too
    (the accepted one may still confirm; whichever reaches first counts).

    Read from the waiting `skipped` rows whose wake-up time has come (`deliveries_silent`, migration 0019), not from
    every accepted delivery of every live fallback alert, which cost a sweep ~210 ms every second at 300,000 (the
    wake-up: `schedule_silent`, NEVER from the fan-out). A row looked at and not activated — its predecessor not sent
    (yet, or any more), its alert stopped, or its window not over — waits for the time that applies, or NEVER; at
    most SILENT_BATCH a sweep, so that rows from before the index are worked off a bounded sweep at a time."""
    # `wake`: when the row is to be looked at, while its predecessor waits for a report under a live fallback alert.
    rows = await db.fetch(
        f"SELECT n.id, d.id, CASE WHEN {is_(DeliveryStatus.SENT, 'd.')} AND a.{FALLS_BACK} "
        f"AND a.status IN {LIVE_ALERT} THEN d.sent_at + a.fallback_after END AS wake "
        f"FROM deliveries n{db.dialect.indexed_by('deliveries_silent')} "
        # Outer joins: every due row comes back, so that none stays due to be read again at every sweep.
        "LEFT JOIN deliveries d ON d.alert_id = n.alert_id AND d.subscriber_id = n.subscriber_id "
        "AND d.position = n.position - 1 LEFT JOIN alerts a ON a.id = n.alert_id "
        f"WHERE {is_(SKIPPED, 'n.')} AND n.next_attempt_at <= ? ORDER BY n.next_attempt_at LIMIT ?",
        now, SILENT_BATCH)
    looked = [(str(r[0]), r[1], None if r[2] is None else float(r[2])) for r in rows]
    # Silent only as far as the reports applied can tell: a report that came before the window closed and still
    # waits to be applied (`receipts.apply_waiting`, after a fan-out's sends) may be this delivery's. Those rows stay
    # due, looked at again at the next sweep.
    reported = await db.fetchval(  # the oldest push, by its key (the time first: `receipts.push_id`)
        "SELECT received_at FROM report_pushes ORDER BY id LIMIT 1") if rows else None
    heard_until = now if reported is None else min(now, float(reported))
    due = [str(sent_id) for _, sent_id, wake in looked if wake is not None and wake <= heard_until]
    later = [(skipped_id, NEVER if wake is None else wake) for skipped_id, _, wake in looked
             if wake is None or wake > heard_until]
    if later:
        # Only rows still due: a record that gave one its time meanwhile (PostgreSQL, another worker) is not undone.
        await db.execute(
            "UPDATE deliveries SET next_attempt_at = u.at "
            f"FROM {db.dialect.records([('id', 'TEXT'), ('at', 'DOUBLE PRECISION')])} AS u "
            f"WHERE deliveries.id = u.id AND {is_(SKIPPED, 'deliveries.')} AND deliveries.next_attempt_at <= ?",
            as_rows(later), now)
    return await activate_next(db, due, now, requeued)
