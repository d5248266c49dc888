"""What a viewer may see of one alert's region × group table, checked by an attacker's integer program
(tests/figure_solver.py): no count of fewer than k people can be worked out from the figures shown."""

from __future__ import annotations

import random
from typing import Any

from notifier.disclosure_control import (
    Key,
    Pattern,
    Table,
    bounds,
    build_table,
    cell_key,
    pattern,
    region_key,
)
from tests.figure_solver import Attacker

K = 5
Cell = tuple[str, str | None, int, int]  # region, group (None: in no group), targeted, reached


def table_of(cells: list[Cell]) -> Table:
    regions: dict[str, tuple[int, int]] = {}
    groups: dict[str, tuple[int, int]] = {}
    for region, group, targeted, reached in cells:
        t, r = regions.get(region, (0, 0))
        regions[region] = (t + targeted, r + reached)
        if group:
            t, r = groups.get(group, (0, 0))
            groups[group] = (t + targeted, r + reached)
    return build_table(cells, regions, groups, (sum(c[2] for c in cells), sum(c[3] for c in cells)))


def shown(table: Table, hidden: Pattern | frozenset[Key]) -> dict[str, Any]:
    """The coverage object's table as a viewer receives it."""
    keys = hidden.hidden if isinstance(hidden, Pattern) else hidden

    def figures(key: Key) -> dict[str, Any]:
        entry = table.entries[key]
        if key in keys:
            return {"targeted": None, "reached": None, "suppressed": True}
        return {"targeted": entry.targeted, "reached": entry.reached}

    cells = [k for k in table.entries if k[0] == "cell"]
    return {"targeted": table.total_targeted, "reached": table.total_reached,
            "cells": [{"region": k[1], "group": k[2] or None, **figures(k)} for k in cells],
            "by_region": {k[1]: figures(k) for k in table.entries if k[0] == "region"},
            "by_group": {k[1]: figures(k) for k in table.entries if k[0] == "group"}}


def leaks(table: Table, hidden: Pattern) -> list[str]:
    """Every way the attacker gets further than the rule allows (an empty list: nothing)."""
    attacker = Attacker(shown(table, hidden))
    everything = Attacker(shown(table, frozenset(table.entries)))
    found = []
    for key in attacker.hidden:
        entry = table.entries[key]
        if entry.targeted >= K:
            continue  # a complementary entry: hidden for the others' sake
        size = attacker.range(key, "targeted")
        if size.single or size.high < min(K, everything.range(key, "targeted").high):
            found.append(f"{key} targeted {size}")
        for measure in ("reached", "unreached"):
            values = attacker.range(key, measure)
            if values.single and not said_for_everyone(table, hidden, key, measure):
                found.append(f"{key} {measure} {values}")
    return found


def said_for_everyone(table: Table, hidden: Pattern, key: Key, measure: str) -> bool:
    """A shown district, group or total containing the entry has nobody reached (or nobody left unreached)."""
    for outer in table.entries[key].within:
        figures = table.shown(outer, hidden.hidden)
        if figures is not None and (figures[1] if measure == "reached" else figures[0] - figures[1]) == 0:
            return True
    return False


# A district of 16 all reached, one of 15 none reached, one mixed; the elderly of 城区 are one person.
TOWN: list[Cell] = [("140402", "elderly", 1, 1), ("140402", "child", 8, 8), ("140402", None, 7, 7),
                    ("140411", "elderly", 9, 0), ("140411", "child", 6, 0),
                    ("140481", "elderly", 6, 3), ("140481", None, 5, 2)]


def test_the_attacker_recovers_a_cell_hidden_alone() -> None:
    """Hiding only the one-person cell gives it away: 城区's 16 minus its two other cells is 1."""
    table = table_of(TOWN)
    naive = Pattern(frozenset({cell_key("140402", "elderly")}))
    assert Attacker(shown(table, naive)).range(cell_key("140402", "elderly"), "targeted").single
    assert leaks(table, naive)


def test_complements_are_hidden_until_nothing_can_be_worked_out() -> None:
    """The rule's pattern leaves the attacker no single value and a range reaching k for the small cell."""
    table = table_of(TOWN)
    hidden = pattern(table, K)
    assert not hidden.withheld and cell_key("140402", "elderly") in hidden.hidden
    assert len(hidden.hidden) > 2
    assert leaks(table, hidden) == []


def test_a_small_district_hides_its_cells_and_a_complement() -> None:
    """A district of 3 is hidden with its cells, and another district with it (else total − others = 3)."""
    table = table_of([("140402", "elderly", 12, 6), ("140411", "elderly", 3, 1), ("140481", "elderly", 10, 4)])
    hidden = pattern(table, K)
    assert {region_key("140411"), cell_key("140411", "elderly")} <= hidden.hidden
    assert region_key("140402") in hidden.hidden or region_key("140481") in hidden.hidden
    assert leaks(table, hidden) == []


def test_nothing_small_hides_nothing() -> None:
    """When every entry has k or more, the viewer sees the whole table."""
    table = table_of([("140402", "elderly", 12, 6), ("140411", "elderly", 7, 1), ("140411", None, 9, 9)])
    assert pattern(table, K).hidden <= {("nogroup",)}


def test_an_alert_under_k_is_withheld() -> None:
    """Four people in all: no figure of the alert is shown."""
    assert pattern(table_of([("140402", "elderly", 3, 1), ("140411", None, 1, 1)]), K).withheld


def test_bounds_match_the_attackers_program() -> None:
    """The service's own flow bounds for a hidden targeted count equal the attacker's integer bounds."""
    table = table_of(TOWN)
    hidden = pattern(table, K)
    attacker = Attacker(shown(table, hidden))
    for key in attacker.hidden:
        size = attacker.range(key, "targeted")
        assert bounds(table, hidden.hidden, key, "targeted") == (size.low, size.high), key


def test_a_group_total_minus_visible_cells_gives_nothing_away() -> None:
    """A group of 2 in one district among large ones: the group's column cannot be subtracted out either."""
    table = table_of([("140402", "elderly", 10, 5), ("140402", "disabled", 2, 1), ("140411", "elderly", 8, 8),
                      ("140411", "disabled", 9, 3), ("140481", "disabled", 7, 0)])
    hidden = pattern(table, K)
    assert cell_key("140402", "disabled") in hidden.hidden
    assert leaks(table, hidden) == []


def test_random_tables_leak_nothing() -> None:
    """Twelve random tables of up to 4 districts × 3 groups (and people in no group), reached at random, some
    districts all reached or none: the pattern never leaves the attacker more than the rule allows."""
    for seed in range(12):
        rnd = random.Random(seed)
        cells: list[Cell] = []
        for region in ("140402", "140411", "140481", "140421")[:rnd.randint(2, 4)]:
            everyone = rnd.choice((None, None, 0, 1))  # some districts: nobody or everybody reached
            for group in ("elderly", "child", "disabled", None)[:rnd.randint(2, 4)]:
                if rnd.random() < 0.7:
                    targeted = rnd.choice((1, 1, 2, 3, 4, 6, 9, 14, 30))
                    reached = rnd.randint(0, targeted) if everyone is None else everyone * targeted
                    cells.append((region, group, targeted, reached))
        table = table_of(cells)
        hidden = pattern(table, K)
        if table.total_targeted < K:
            assert hidden.withheld
            continue
        assert not hidden.withheld, cells
        assert leaks(table, hidden) == [], (seed, cells)
