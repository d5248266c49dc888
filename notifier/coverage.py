"""The coverage object (SPEC "Coverage"): who of those an alert was meant for it actually reached.

Population figures (`population`, `population_rate` at the top level and in by_region / by_group / cells) are
added by `notifier.population.with_population` once a population table is loaded. Their denominator is the
residents of exactly the cells the alert was meant for: target regions (none: all) × target groups (none: the
region's total row, group null); a group outside the alert's target groups and cells of subscribers in no group
get none; a figure needing a row the table lacks is null. The full rule is in `notifier.population`.
"""

from __future__ import annotations

from notifier.models import CellCoverage, ChannelCoverage, Coverage, RegionGroupCell, TimeToReach
from notifier.population import with_population
from notifier.store import Store


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _cell(targeted: int, reached: int, suppress_below: int | None) -> CellCoverage:
    if suppress_below is not None and targeted < suppress_below:
        return CellCoverage(targeted=None, reached=None, coverage_rate=None, suppressed=True)
    return CellCoverage(targeted=targeted, reached=reached, coverage_rate=_rate(reached, targeted))


async def alert_coverage(store: Store, alert_id: str, *, suppress_below: int | None = None) -> Coverage:
    """Build the coverage of one alert. `suppress_below` (viewers) hides region/group cells under k people."""
    rows = await store.coverage_rows(alert_id)
    by_channel = {
        kind: ChannelCoverage(**counts, reach_rate=_rate(counts["delivered"], counts["attempted"]))
        for kind, counts in rows.by_channel.items()
    }
    cells = []
    for region, group, targeted, reached in rows.cells:
        cell = _cell(targeted, reached, suppress_below)
        cells.append(RegionGroupCell(region=region, group=group, **cell.model_dump()))
    p50, p90, p99 = rows.reach_times
    return await with_population(store, Coverage(
        alert_id=alert_id, targeted=rows.targeted, reached=rows.reached, accepted=rows.accepted,
        coverage_rate=_rate(rows.reached, rows.targeted), accepted_rate=_rate(rows.accepted, rows.targeted),
        by_channel=by_channel,
        by_region={code: _cell(t, r, suppress_below) for code, (t, r) in sorted(rows.by_region.items())},
        by_group={code: _cell(t, r, suppress_below) for code, (t, r) in sorted(rows.by_group.items())},
        cells=cells, time_to_reach=TimeToReach(p50=p50, p90=p90, p99=p99), unreachable=rows.unreachable))
