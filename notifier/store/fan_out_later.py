"""A publish to many people answers once its target set is frozen; its delivery rows are added right after, a slice
of its targets a transaction. The frozen targets and a row here saying what adding the rows needs are committed
together, so a stop between two transactions loses nobody: whoever comes next adds the rest.

- `defer`: in the publishing transaction, instead of the delivery rows.
- `add_slice`: the rows of the next slice of targets (`[database] fan_out_slice` people, by default
  `Dialect.fan_out_slice`; in id order, after the last done), and the row here moved on — or deleted with the
  last slice —, in one transaction under the alert's lock (PostgreSQL `FOR UPDATE`; SQLite's write transaction),
  so that each target's rows are added once whoever asks: the publishing process right after its answer
  (`Store.create_alert`), a worker's sweep for a fan-out a stopped process left (`stalled`); and `add_rest`, all
  the rest at once, by an update, cancel or expiry of the alert before it acts on its deliveries (`lifecycle`).

Why: the delivery rows are most of a large publish. PostgreSQL, 100,000 people (thirty-fifth round, statements
logged): targets 0.31 s, delivery rows 0.65–0.73 s of a 0.93–1.07 s answer. Why slices: a transaction adding a whole
city's rows held SQLite's single writer for its length, so it gave way to each red warning and ran again from the
start once none had come for a second (`give_way.py`) — while red warnings came every second, its rows waited ten
seconds. A slice holds the writer about as long as a claim; the workers send the first slice while the next is
added. A small publish — a red warning to a district — keeps its rows in its own transaction: one commit less
before its first send.
"""

from __future__ import annotations

from typing import NamedTuple

from notifier.store.assisted import anyone_assisted
from notifier.store.audience import Frozen, Span, add_deliveries
from notifier.store.db import FLOAT, Db, as_list
from notifier.store.records import AlertRow, Targeting
from notifier.store.states import TARGETS_TO_COME

# A publisher adds its slices back to back; a fan-out with no slice added for this long was left by a process that
# stopped (or starved): a worker's sweep takes it on (`Dispatcher.run_once`).
STALLED_AFTER = 10.0


class Added(NamedTuple):
    """What `add_slice` did: whether the rows it added were the last."""

    done: bool


async def defer(db: Db, alert: AlertRow, t: Targeting) -> None:
    """In the publishing transaction: the delivery rows of `alert`'s fresh target set are to be added later."""
    await db.execute(
        "INSERT INTO fan_outs_to_finish (alert_id, topic, policy, priority, first_attempt_at, published_at, "
        f"advanced_at) VALUES (?, ?, ?, ?, {FLOAT}, {FLOAT}, {FLOAT})", alert.id, t.topic, t.policy, t.priority,
        t.first_attempt_at, alert.created_at, alert.created_at)


async def add_slice(db: Db, alert_id: str, people: int, now: float) -> Added | None:
    """Add the delivery rows of `alert_id`'s next `people` targets, if any are still to be added; None when none
    were."""
    return await _add(db, alert_id, now, people)


async def add_rest(db: Db, alert_id: str, *, locked: bool = False) -> Added | None:
    """Add the delivery rows of all of `alert_id`'s targets still without them, if any; None when there were none.
    `locked`: the caller holds the alert's lock already."""
    return await _add(db, alert_id, None, None, locked=locked)


async def _add(db: Db, alert_id: str, now: float | None, people: int | None, *, locked: bool = False) -> Added | None:
    """The rows of the next `people` targets (None: of all the rest)."""
    if not locked:  # the alert before the row here, as every act on an alert locks it: no two wait on each other
        await db.fetchval(f"SELECT 1 FROM alerts WHERE id = ?{db.dialect.for_update}", alert_id)
    row = await db.fetchrow(
        "SELECT f.topic, f.policy, f.priority, f.first_attempt_at, f.published_at, f.done_through, a.targeted "
        "FROM fan_outs_to_finish f JOIN alerts a ON a.id = f.alert_id WHERE f.alert_id = ?", alert_id)
    if row is None:
        return None
    priority, after = int(row[2]), (None if row[5] is None else str(row[5]))
    rest, params = Span(after).condition("t")
    through = None if people is None else await db.fetchval(  # the slice's last target; None: this is the last slice
        f"SELECT t.subscriber_id FROM alert_targets t WHERE t.alert_id = ? {rest}ORDER BY t.subscriber_id "
        f"LIMIT 1 OFFSET {int(people) - 1}", alert_id, *params)
    span = Span(after, through)
    t = Targeting(topic=str(row[0]), min_severity_rank=0, regions=[], groups=[], policy=str(row[1]),
                  priority=priority, first_attempt_at=float(row[3]))
    # A fresh target set (`defer`'s only use), added in disjoint slices: nobody in this one has a row yet.
    frozen = Frozen(people if people is not None and span.through is not None else int(row[6]), first=True,
                    assisted=await anyone_assisted(db))
    await add_deliveries(db, alert_id, t, float(row[4]), frozen, span)
    if span.through is None:
        await db.execute("DELETE FROM fan_outs_to_finish WHERE alert_id = ?", alert_id)
    else:
        await db.execute(f"UPDATE fan_outs_to_finish SET done_through = ?, advanced_at = {FLOAT} WHERE alert_id = ?",
                         span.through, now, alert_id)
    return Added(span.through is None)


async def stalled(db: Db, idle_since: float) -> list[str]:
    """The alerts whose fan-outs still add rows, none added since `idle_since`, oldest first."""
    rows = await db.fetch(f"SELECT alert_id FROM fan_outs_to_finish WHERE advanced_at <= {FLOAT} "
                          "ORDER BY published_at", idle_since)
    return [str(r[0]) for r in rows]


async def among(db: Db, alerts: str, *params: object) -> list[str]:
    """Of the alerts the query `alerts` selects (their ids, with `params`), those whose delivery rows are still to
    be added."""
    rows = await db.fetch(f"SELECT alert_id FROM fan_outs_to_finish WHERE alert_id IN ({alerts})", *params)
    return [str(r[0]) for r in rows]


async def people_to_come(db: Db, alert_ids: list[str] | None = None) -> dict[str, int]:
    """Of `alert_ids` (None: every alert), those whose rows are still being added: how many of their people have
    theirs still to come."""
    if alert_ids is None:
        where, params = "", []
    elif not alert_ids:
        return {}
    else:
        where, params = f" WHERE w.alert_id IN {db.dialect.each()}", [as_list(alert_ids)]
    rows = await db.fetch(f"SELECT w.alert_id, COUNT(*) FROM {TARGETS_TO_COME}{where} GROUP BY w.alert_id", *params)
    return {str(r[0]): int(r[1]) for r in rows}
