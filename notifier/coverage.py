"""The coverage object (SPEC "Coverage"): who of those an alert was meant for it actually reached.

Population figures (`population`, `population_rate` at the top level and in by_region / by_group / cells) are
added by `notifier.population.with_population` once a population table is loaded. Their denominator is the
residents of exactly the cells the alert was meant for: target regions (none: all) × target groups (none: the
region's total row, group null); a group outside the alert's target groups and cells of subscribers in no group
get none; a figure needing a row the table lacks is null. The full rule is in `notifier.population`.

For a viewer (`suppress_below` = k) the figures go through `notifier.disclosure_control`: an alert of fewer than k
targeted shows none at all; otherwise the districts, groups and cells it hides (small ones and their complements)
show `suppressed: true` and null figures.
"""

from __future__ import annotations

import functools

from notifier.disclosure_control import Pattern, build_table, cell_key, group_key, pattern, region_key
from notifier.models import CellCoverage, ChannelCoverage, Coverage, RegionGroupCell, TimeToReach
from notifier.population import with_population
from notifier.store import Store
from notifier.store.records import CoverageRows

NO_TIMES = TimeToReach(p50=None, p90=None, p99=None)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _cell(targeted: int, reached: int, hidden: bool) -> CellCoverage:
    if hidden:
        return CellCoverage(targeted=None, reached=None, coverage_rate=None, suppressed=True)
    return CellCoverage(targeted=targeted, reached=reached, coverage_rate=_rate(reached, targeted))


def viewer_pattern(rows: CoverageRows, k: int) -> Pattern:
    """What a viewer may not see of an alert with these coverage rows (the same figures give the same answer, so a
    dashboard polled every 2 s recomputes it only when a figure changed)."""
    return _pattern(tuple(rows.cells), tuple(sorted(rows.by_region.items())), tuple(sorted(rows.by_group.items())),
                    (rows.targeted, rows.reached), k)


@functools.lru_cache(maxsize=256)
def _pattern(cells: tuple[tuple[str, str | None, int, int], ...], by_region: tuple[tuple[str, tuple[int, int]], ...],
             by_group: tuple[tuple[str, tuple[int, int]], ...], total: tuple[int, int], k: int) -> Pattern:
    return pattern(build_table(cells, dict(by_region), dict(by_group), total), k)


def withheld(alert_id: str) -> Coverage:
    """The coverage object of an alert a viewer may see no figure of."""
    return Coverage(alert_id=alert_id, targeted=None, reached=None, accepted=None, coverage_rate=None,
                    accepted_rate=None, by_channel={}, by_region={}, by_group={}, cells=[], time_to_reach=NO_TIMES,
                    unreachable={}, suppressed=True)


async def alert_coverage(store: Store, alert_id: str, *, suppress_below: int | None = None) -> Coverage:
    """Build the coverage of one alert. `suppress_below` (viewers: k) applies the disclosure control."""
    rows = await store.coverage_rows(alert_id)
    hidden = viewer_pattern(rows, suppress_below) if suppress_below is not None else Pattern(frozenset())
    if hidden.withheld:
        return withheld(alert_id)
    by_channel = {
        kind: ChannelCoverage(**counts, reach_rate=_rate(counts["delivered"], counts["attempted"]))
        for kind, counts in rows.by_channel.items()
    }
    cells = []
    for region, group, targeted, reached in rows.cells:
        cell = _cell(targeted, reached, hidden.hides(cell_key(region, group)))
        cells.append(RegionGroupCell(region=region, group=group, **cell.model_dump()))
    p50, p90, p99 = rows.reach_times
    return await with_population(store, Coverage(
        alert_id=alert_id, targeted=rows.targeted, reached=rows.reached, accepted=rows.accepted,
        coverage_rate=_rate(rows.reached, rows.targeted), accepted_rate=_rate(rows.accepted, rows.targeted),
        by_channel=by_channel,
        by_region={c: _cell(t, r, hidden.hides(region_key(c))) for c, (t, r) in sorted(rows.by_region.items())},
        by_group={c: _cell(t, r, hidden.hides(group_key(c))) for c, (t, r) in sorted(rows.by_group.items())},
        cells=cells, time_to_reach=TimeToReach(p50=p50, p90=p90, p99=p99), unreachable=rows.unreachable))
