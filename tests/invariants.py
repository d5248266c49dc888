"""Invariants every stored delivery keeps, checked through the store's own API so that any test (on either
back-end) can assert them after its work: `assert not await timestamp_violations(store, alert_id)`.

The timestamps of one delivery are ordered as what they record happened: it was created, then accepted by its
provider (`sent_at`), then confirmed (`delivered_at`) or finished (`finished_at`). A receipt that overtakes our
own record of the send must not leave a delivery "delivered before it was sent".
"""

from __future__ import annotations

import itertools

from notifier.store import Store
from notifier.store.records import DeliveryRow

PAGE = 1000
# Clock readings of one process; a few milliseconds of float rounding between two writes are not a violation.
SLACK = 0.001


def delivery_violations(row: DeliveryRow) -> list[str]:
    """What is out of order in one delivery's timestamps (empty when nothing is)."""
    problems = []
    steps = [("created_at", row.created_at), ("sent_at", row.sent_at), ("delivered_at", row.delivered_at)]
    present = [(name, value) for name, value in steps if value is not None]
    for (earlier, a), (later, b) in itertools.pairwise(present):
        if b + SLACK < a:
            problems.append(f"{row.id} ({row.channel}): {later} {b:.3f} before {earlier} {a:.3f}")
    if row.finished_at is not None:
        for name, value in present:
            if row.finished_at + SLACK < value:
                problems.append(f"{row.id} ({row.channel}): finished_at {row.finished_at:.3f} before {name} "
                                f"{value:.3f}")
    if row.status == "delivered" and row.delivered_at is None:
        problems.append(f"{row.id} ({row.channel}): delivered without delivered_at")
    return problems


async def timestamp_violations(store: Store, alert_id: str) -> list[str]:
    """Every out-of-order timestamp among the alert's deliveries (all pages of `list_deliveries`)."""
    problems: list[str] = []
    after: str | None = None
    while True:
        rows, _ = await store.list_deliveries(alert_id, PAGE, after)
        for row in rows:
            problems += delivery_violations(row)
        if len(rows) < PAGE:
            return problems
        after = rows[-1].id
