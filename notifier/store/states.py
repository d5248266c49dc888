"""The delivery state machine's definitions as SQL, each written once and named; every query module reads them
from here. The transitions are in the modules named for them: `queue` (claim, record, sweep), `receipts`,
`lifecycle` (cancel, update), `fallback` (the next channel).

    skipped ──(fallback)──▶ queued ◀──(retry)── sending ──▶ delivered          (reached)
                            deferred ─▶ │ claim    │   └──▶ sent ──receipt──▶ delivered (reached)
                                        └──────────┘          └─────────────▶ failed ──(fallback)
    waiting (queued, deferred) ──cancel / supersede / erasure──▶ cancelled;  ──expiry──▶ expired
"""

from __future__ import annotations

from notifier.states import AlertStatus, Approval, DeliveryStatus


def status_list(*statuses: DeliveryStatus | AlertStatus) -> str:
    """`('a', 'b')`: the statuses are our own enum values, never input."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


Q, DF, SN, ST = DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING, DeliveryStatus.SENT
DL, FL, EX, CN = DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED, DeliveryStatus.CANCELLED

# Waiting for a worker: what a claim may take when due, and what a cancel, an expiry or an erasure stops.
WAITING = status_list(Q, DF)
# Not finished on this channel yet (coverage's `pending` of a channel).
IN_PROGRESS = status_list(Q, DF, SN)
# The subscriber may still be reached through this delivery (a target's `pending` cause).
MAY_STILL_REACH = status_list(Q, DF, SN, ST)
# Finished without reaching anyone.
FINAL_FAILED = status_list(FL, EX, CN)
# An alert whose deliveries may still go out (and whose fallbacks may still be activated).
LIVE_ALERT = status_list(AlertStatus.ACTIVE, AlertStatus.SCHEDULED)
# An alert that tries a subscriber's channels one after another (`store/fallback.py`); prefix it with the alias.
FALLS_BACK = "policy = 'fallback'"



def released(a: str = "") -> str:
    """An alert that went out (or will at its schedule): no approval rule held it, or it was approved — never one
    still waiting, rejected or withdrawn (`notifier.states.released`)."""
    return f"({a}approval IS NULL OR {a}approval = '{Approval.APPROVED}')"


def persons_deliveries(person: str, d: str = "d", a: str = "pa") -> tuple[str, str]:
    """(FROM items, their condition): the deliveries `d` of one person (`person`: `?` or a column), with their
    alerts `a`, found alert by alert through the (alert_id, subscriber_id, channel) key. No index of deliveries
    leads with the person (migration 0018): a fan-out's rows come in person order, so such an index took an entry
    on every one of its pages at every publish, a cost that grew with every delivery ever kept. CROSS JOIN keeps
    SQLite's planner (which has no statistics) from reading every delivery instead; PostgreSQL plans it as any
    join. After other tables, join the items with CROSS JOIN too."""
    return f"alerts {a} CROSS JOIN deliveries {d}", f"{d}.alert_id = {a}.id AND {d}.subscriber_id = {person}"


def due(d: str = "") -> str:
    """A delivery a worker may claim now (one parameter: now); `d` is the table alias with its dot."""
    return f"{d}status IN {WAITING} AND {d}next_attempt_at <= ?"


# When an alert went out: its schedule when later than its start — the approval of a held alert (decided_at),
# else its publication (`AlertRow.released_at` says the same in Python).
def release(a: str = "a.") -> str:
    start = f"COALESCE({a}decided_at, {a}created_at)"
    return (f"(CASE WHEN {a}scheduled_at IS NOT NULL AND {a}scheduled_at > {start} THEN {a}scheduled_at "
            f"ELSE {start} END)")


# A target is reached when one of its deliveries was confirmed (delivered), accepted when one was taken by a
# provider or an endpoint (sent or delivered): the two columns of alert_targets that coverage counts.
REACHED = "reached_at IS NOT NULL"
ACCEPTED = "accepted_at IS NOT NULL"


def is_(status: DeliveryStatus | AlertStatus, d: str = "") -> str:
    return f"{d}status = '{status.value}'"


def count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# The figures of one channel of the coverage object, in this order (attempted … skipped).
CHANNEL_FIELDS = ("attempted", "sent", "delivered", "failed", "pending", "awaiting_receipt", "skipped")


def channel_counts(d: str = "") -> str:
    return ", ".join(count(c) for c in (
        f"{d}attempts > 0", f"{d}sent_at IS NOT NULL", is_(DL, d), f"{d}status IN {FINAL_FAILED}",
        f"{d}status IN {IN_PROGRESS}", is_(ST, d), is_(DeliveryStatus.SKIPPED, d)))


# Why a targeted subscriber was not reached, from their deliveries (skipped fallbacks aside): the columns n, pend,
# expd, canc of a per-target subquery (`unreached_target_counts`) become one cause; then `unreached_causes`.
UNREACHED_CAUSE = ("CASE WHEN n = 0 THEN 'no_contact' WHEN pend > 0 THEN 'pending' WHEN expd > 0 THEN 'expired' "
                   "WHEN canc > 0 THEN 'cancelled' ELSE 'all_failed' END")


# The targets `t` whose delivery rows are still to come, of the fan-outs still being added (`w`): a large publish
# adds them after its answer (`store/fan_out_later.py`), a slice at a time in subscriber order, each after the last
# one done (`done_through`; none yet: NULL). Read from the fan-outs first: nothing to read while none is added.
TARGETS_TO_COME = ("fan_outs_to_finish w JOIN alert_targets t ON t.alert_id = w.alert_id "
                   "AND (w.done_through IS NULL OR t.subscriber_id > w.done_through)")
TO_COME = "to_come"  # a row of their count beside UNREACHED_CAUSE's, in the same statement (one snapshot)


def unreached_causes(counts: dict[str, int]) -> dict[str, int]:
    """UNREACHED_CAUSE's `counts` with the TO_COME count among them moved from `no_contact` to `pending`: without
    a delivery yet, the rule took them for people without a usable contact. Counted apart, from the fan-outs being
    added, rather than looked for in the rule: that cost every unreached target's row 0.2 µs more (SQLite, 200,000
    people unreached: 331-366 -> 374-413 ms)."""
    causes = {cause: n for cause, n in counts.items() if cause != TO_COME and n}
    if to_come := counts.get(TO_COME, 0):
        causes["pending"] = causes.get("pending", 0) + to_come
        if left := causes.pop("no_contact", 0) - to_come:
            causes["no_contact"] = left
    return causes


# A target `t`'s deliveries `d`, none when it has none; a skipped fallback is no delivery.
TARGET_DELIVERIES = (f"LEFT JOIN deliveries d ON d.alert_id = t.alert_id AND d.subscriber_id = t.subscriber_id "
                     f"AND d.status <> '{DeliveryStatus.SKIPPED}'")


def unreached_target_counts(d: str = "d.") -> str:
    return (f"COUNT({d}id) AS n, {count(f'{d}status IN {MAY_STILL_REACH}')} AS pend, "
            f"{count(is_(EX, d))} AS expd, {count(is_(CN, d))} AS canc")


# A person told by a proxy (`proxy` delivery) waits `deferred` until their proxy's message is accepted, due NEVER
# (3000-01-01: no claim takes it, and every date type can still show it), while cancels, expiry and erasure stop
# it like any waiting delivery. Listings show it as no attempt planned.
NEVER = 32_503_680_000.0


def counted(d: str = "") -> str:
    """A delivery coverage counts: a target's, not a relay (a proxy's list, sent to a proxy who is no target)."""
    return f"{d}relay = 0"
