"""An oracle for `time_to_reach`, computed the long way from what the API shows of each delivery: a target is reached
at its first delivery's `delivered_at`; the q-quantile is the ceil(q·targeted)-th reach, counted from its alert's
release. Coverage and the period aggregates must give exactly this."""

from __future__ import annotations

import math

from notifier.store import Store


async def reach_delays(store: Store, alert_ids: list[str]) -> list[float]:
    """Seconds from release until each reached target (alert × subscriber) was first reached, sorted."""
    delays = []
    for alert_id in alert_ids:
        alert = await store.get_alert(alert_id)
        assert alert is not None
        rows, _ = await store.list_deliveries(alert_id, 10_000, None)
        first: dict[str, float] = {}
        for row in rows:
            if row.delivered_at is not None:
                first[row.subscriber_id] = min(first.get(row.subscriber_id, row.delivered_at), row.delivered_at)
        delays += [max(0.0, at - alert.released_at()) for at in first.values()]
    return sorted(delays)


async def expected_quantile(store: Store, alert_ids: list[str], q: float, targeted: int) -> float | None:
    """The q-quantile of time to reach over these alerts' `targeted` targets; None while too few are reached."""
    delays = await reach_delays(store, alert_ids)
    k = max(1, math.ceil(q * targeted))
    return delays[k - 1] if len(delays) >= k else None
