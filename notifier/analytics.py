"""Coverage beyond one alert's object: aggregates over a period per topic and per department
(`GET /v1/coverage`), and one alert broken down by region × group × channel.

Period aggregates count `alert` messages only (updates and cancel notices go to an earlier alert's targets and
would count the same people twice), published (created) in `[since, until)`. Figures are sums over the alerts'
frozen target sets, so a subscriber targeted by two alerts counts twice — they are "targets", not people.
`time_to_reach` is computed over all targets of the selected alerts together: p50 is the time from release by
which half of all those targets were reached (null until that many are). `unreachable` always lists the five
causes (no_contact, all_failed, pending, expired, cancelled).

Viewers (k = `auth.viewer_min_cell`; the rules are `notifier.disclosure_control`'s): alerts with fewer than k
targeted are left out of every sum (each aggregate says how many in `suppressed_alerts`), so that no difference of
two answers — two periods, a department and its topics — gives one of them away; an aggregate all of whose alerts
were left out shows `suppressed: true` and no figures. What remains is a sum of alerts whose own totals a viewer
sees anyway. One alert's breakdown is shown to a viewer whole or not at all (`disclosure_control.breakdown_shown`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, field_validator, model_validator

from notifier.coverage import viewer_pattern
from notifier.disclosure_control import breakdown_shown
from notifier.models import ChannelCoverage, Frozen, TimeToReach
from notifier.store import Store
from notifier.store.records import BreakdownRecord, PeriodCell, PeriodFilter

CAUSES = ("no_contact", "all_failed", "pending", "expired", "cancelled")
QUANTILES = (50, 90, 99)  # percent
TOPIC_PATTERN = r"^[a-z0-9*][a-z0-9.*-]*$"
# `+08:00` in a query string arrives as ` 08:00` when the client did not percent-encode the plus sign.
_SPACED_OFFSET = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d[T ][\d:.]+) (?P<offset>\d\d:?\d\d)$")


def _rate(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else part / whole


# ---------------------------------------------------------------- models


class PeriodQuery(Frozen):
    """Which alerts a period aggregate covers."""

    topic: str | None = Field(default=None, max_length=100, pattern=TOPIC_PATTERN,
                              description="a topic key, or a pattern where * stands for any text (env.*)")
    department: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="responsible department, exactly as topics name it (市环保局)")
    since: AwareDatetime | None = Field(default=None, description="alerts published at or after (ISO 8601 with offset)")
    until: AwareDatetime | None = Field(default=None, description="alerts published before (ISO 8601 with offset)")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _unencoded_plus(cls, value: Any) -> Any:
        if isinstance(value, str) and (match := _SPACED_OFFSET.fullmatch(value.strip())):
            return f"{match['time']}+{match['offset']}"
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PeriodQuery:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self

    def to_filter(self, min_targeted: int | None = None) -> PeriodFilter:
        return PeriodFilter(topic_like=self.topic.replace("*", "%") if self.topic else None,
                            department=self.department,
                            since=self.since.timestamp() if self.since else None,
                            until=self.until.timestamp() if self.until else None, min_targeted=min_targeted)


class Aggregate(Frozen):
    """Coverage of many alerts together (counts are of targets: alert × subscriber)."""

    alerts: int
    targeted: int | None
    reached: int | None
    accepted: int | None
    coverage_rate: float | None
    accepted_rate: float | None
    by_channel: dict[str, ChannelCoverage]
    time_to_reach: TimeToReach
    unreachable: dict[str, int] = Field(description="targeted but not reached, by cause: " + ", ".join(CAUSES))
    suppressed: bool | None = None
    suppressed_alerts: int | None = Field(default=None, description="viewers: alerts left out of these figures "
                                                                    "(each had fewer than k targeted)")


class PeriodCoverage(Frozen):
    since: datetime | None
    until: datetime | None
    topic: str | None
    department: str | None
    total: Aggregate
    by_topic: dict[str, Aggregate]
    by_department: dict[str, Aggregate] = Field(description="keyed by department name ('' when none was recorded)")


class BreakdownRow(Frozen):
    region: str
    group: str | None = Field(description="null: subscribers in no group")
    channel: str | None = Field(description="null: subscribers with no usable contact on any subscribed channel")
    targeted: int | None = Field(description="subscribers of the cell this channel was used for (skipped "
                                             "fallbacks left out)")
    attempted: int | None
    sent: int | None
    delivered: int | None
    failed: int | None
    pending: int | None
    reached: int | None = Field(description="subscribers of the cell this channel reached first: the rows of a "
                                            "cell add up to its reached")
    suppressed: bool | None = None


class Breakdown(Frozen):
    alert_id: str
    rows: list[BreakdownRow]
    suppressed: bool | None = Field(default=None, description="viewers: true when the breakdown is withheld (no "
                                                              "rows) because some of it would have to be hidden")


# ---------------------------------------------------------------- period aggregates


@dataclass
class _Sum:
    alerts: int = 0
    left_out: int = 0
    targeted: int = 0
    reached: int = 0
    accepted: int = 0
    channels: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    unreachable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))

    def add(self, cell: PeriodCell) -> None:
        self.alerts += cell.alerts
        self.left_out += cell.left_out
        self.targeted += cell.targeted
        self.reached += cell.reached
        self.accepted += cell.accepted
        for kind, counts in cell.by_channel.items():
            for name, value in counts.items():
                self.channels[kind][name] += value
        for cause, value in cell.unreachable.items():
            self.unreachable[cause] = self.unreachable.get(cause, 0) + value

    def ranks(self) -> dict[int, int]:
        """Quantile (percent) → the rank of the target whose reach time it is, for those reached so far."""
        out = {}
        for q in QUANTILES:
            k = max(1, -(-q * self.targeted // 100))  # ceil in integers: no float rounding at the boundary
            if self.targeted and self.reached >= k:
                out[q] = k
        return out


def _sums(cells: Iterable[PeriodCell], key: str | None) -> dict[str, _Sum]:
    out: dict[str, _Sum] = defaultdict(_Sum)
    for cell in cells:
        out[getattr(cell, key) if key else ""].add(cell)
    return dict(sorted(out.items()))


async def _times(store: Store, period: PeriodFilter, dimension: str | None,
                 sums: dict[str, _Sum]) -> dict[str, TimeToReach]:
    ranks = sorted({k for s in sums.values() for k in s.ranks().values()})
    found = await store.period_reach_times(period, dimension, ranks)
    out = {}
    for key, s in sums.items():
        seconds = {q: found.get(key, {}).get(k) for q, k in s.ranks().items()}
        values = {f"p{q}": max(0.0, v) if (v := seconds.get(q)) is not None else None for q in QUANTILES}
        out[key] = TimeToReach(**values)
    return out


def _aggregate(s: _Sum, times: TimeToReach, viewer: bool) -> Aggregate:
    left_out = s.left_out if viewer else None
    if viewer and s.alerts == 0 and s.left_out:
        return Aggregate(alerts=0, targeted=None, reached=None, accepted=None, coverage_rate=None,
                         accepted_rate=None, by_channel={}, time_to_reach=TimeToReach(p50=None, p90=None, p99=None),
                         unreachable={}, suppressed=True, suppressed_alerts=left_out)
    channels = {kind: ChannelCoverage(**counts, reach_rate=_rate(counts["delivered"], counts["attempted"]))
                for kind, counts in sorted(s.channels.items())}
    return Aggregate(alerts=s.alerts, targeted=s.targeted, reached=s.reached, accepted=s.accepted,
                     coverage_rate=_rate(s.reached, s.targeted), accepted_rate=_rate(s.accepted, s.targeted),
                     by_channel=channels, time_to_reach=times, unreachable=dict(s.unreachable),
                     suppressed_alerts=left_out)


async def period_coverage(store: Store, query: PeriodQuery, *, suppress_below: int | None = None) -> PeriodCoverage:
    """Coverage of the alerts a period query selects: in total, per topic and per department."""
    period = query.to_filter(min_targeted=suppress_below)
    cells = await store.period_cells(period)
    parts: dict[str, dict[str, Aggregate]] = {}
    for dimension in (None, "topic", "department"):
        sums = _sums(cells, dimension)
        if dimension is None:
            sums = sums or {"": _Sum()}
        times = await _times(store, period, dimension, sums)
        parts[dimension or "total"] = {k: _aggregate(s, times[k], suppress_below is not None)
                                       for k, s in sums.items()}
    return PeriodCoverage(since=query.since, until=query.until, topic=query.topic, department=query.department,
                          total=parts["total"][""], by_topic=parts["topic"], by_department=parts["department"])


# ---------------------------------------------------------------- one alert's breakdown


def _breakdown_row(r: BreakdownRecord) -> BreakdownRow:
    return BreakdownRow(region=r.region, group=r.group, channel=r.channel, targeted=r.targeted,
                        attempted=r.attempted, sent=r.sent, delivered=r.delivered, failed=r.failed,
                        pending=r.pending, reached=r.reached)


async def alert_breakdown(store: Store, alert_id: str, *, suppress_below: int | None = None) -> Breakdown:
    """The alert's region × group × channel rows; a viewer gets them only when none would have to be hidden."""
    records = await store.coverage_breakdown(alert_id)
    if suppress_below is not None and not breakdown_shown(
            viewer_pattern(await store.coverage_rows(alert_id), suppress_below), (r.targeted for r in records),
            suppress_below):
        return Breakdown(alert_id=alert_id, rows=[], suppressed=True)
    return Breakdown(alert_id=alert_id, rows=[_breakdown_row(r) for r in records])
