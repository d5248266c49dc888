"""Disclosure control for the viewer role: which figures of one alert's region × group table a viewer may see, so
that no hidden count of fewer than k people can be worked out from the ones shown (SPEC "Privacy of figures").

The table a viewer sees is the alert's total, `by_region`, `by_group` and `cells` (region × group, group null for
people in no group). Everything shown is an equation an attacker may use: a district is the sum of its cells, a
group the sum of its cells over the districts, the total the sum of the districts and (with the people in no group)
of the groups. Written as one table with its margins (districts as a margin column, groups as a margin row, the
total in the corner, the unpublished number of people in no group as a hidden margin), every line of the table has a
known sum, and the hidden entries are the edges of a bipartite graph between lines. Whatever values the hidden
entries may take are exactly the flows around its cycles (the table's matrix is totally unimodular, so the integer
bounds are the linear ones), so the attacker's best bounds on a hidden entry are a maximum flow — computed here
in pure Python, small graphs only.

A viewer also sees how many of each entry were reached. Reached (R) and not reached (U = targeted − reached) are
two such tables with the same hidden entries; an entry's targeted count can only move with one of them, so each is
solved on its own (which is what someone holding both tables can do).

The rule, for every entry with fewer than k targeted (a *primary*, `k = [auth] viewer_min_cell`):
1. its targeted count could be k or more, given everything shown: the largest value consistent with the shown
   figures, moving reached people or not-reached people, is at least k (the viewer cannot even tell the group is
   small); where the alert is too small for that, at least two values remain possible;
2. its reached and its not-reached counts are not a single value either — unless a shown figure containing it
   already says it for everyone (a district with nobody reached says so of each of its groups);
3. complementary entries are hidden until 1 and 2 hold, cheapest first: cells before margins, small before large
   (a cheapest augmenting path in the residual graph, Dijkstra); the targeted-only part of the rule is met first,
   so that the entries it hides do not change while the alert goes out.
If no set of hidden entries meets the rule (a tiny alert spread one person a cell), the alert is withheld from
viewers as a whole (`Pattern.withheld`). Alerts with fewer than k targeted are withheld before any of this.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

Key = tuple[str, ...]  # ("cell", region, group or ""), ("region", code), ("group", code), ("nogroup",)
Measure = Literal["targeted", "reached", "unreached", "swap"]
TOTAL: Key = ("total",)
NO_GROUP: Key = ("nogroup",)
MARGIN_ROW, MARGIN_COL, NO_GROUP_COL = "row:*", "col:*", "col:"
MARGIN_COST = 1_000_000  # a district or group bar is hidden only when no set of cells will do
UNBOUNDED = 1 << 40


def cell_key(region: str, group: str | None) -> Key:
    return ("cell", region, group or "")


def region_key(code: str) -> Key:
    return ("region", code)


def group_key(code: str) -> Key:
    return ("group", code)


@dataclass(frozen=True, slots=True)
class Entry:
    """One published (or, for the people in no group, derivable) figure of the table, as an edge between its row
    line and its column line. `margin`: a district, group or no-group total (its sign in the lines is reversed)."""

    key: Key
    row: str
    col: str
    margin: bool
    targeted: int
    reached: int
    listed: bool = True  # shown as an entry, so the viewer knows it holds at least one person
    within: tuple[Key, ...] = ()  # the entries (and the total) that contain its people

    def value(self, measure: Measure) -> int:
        if measure == "targeted":
            return self.targeted
        return self.targeted - self.reached if measure == "unreached" else self.reached

    def caps(self, measure: Measure) -> tuple[int, int]:
        """How far the entry's `measure` can rise and fall while the entry stays possible: a listed entry keeps one
        person; a swap (one more reached, one fewer not reached, or back) keeps its size and needs someone to turn."""
        if measure == "swap":
            return self.targeted - self.reached, self.reached
        return UNBOUNDED, max(0, min(self.value(measure), self.targeted - (1 if self.listed else 0)))

    def arcs(self, measure: Measure) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
        """(from, to, capacity) for a rise and for a fall of the entry's `measure`, as flow between its lines."""
        up, down = (self.row, self.col), (self.col, self.row)  # a rise of an inner entry is flow row → column
        if self.margin:
            up, down = down, up
        rise, fall = self.caps(measure)
        return (*up, rise), (*down, fall)


@dataclass(frozen=True, slots=True)
class Table:
    """An alert's region × group table with its margins: every entry a viewer could be shown."""

    entries: dict[Key, Entry]
    total_targeted: int
    total_reached: int

    def shown(self, key: Key, hidden: frozenset[Key] | set[Key]) -> tuple[int, int] | None:
        """(targeted, reached) of a figure the viewer sees, or None when it is hidden."""
        if key == TOTAL:
            return self.total_targeted, self.total_reached
        entry = self.entries.get(key)
        return None if entry is None or key in hidden else (entry.targeted, entry.reached)


def build_table(cells: Iterable[tuple[str, str | None, int, int]], by_region: dict[str, tuple[int, int]],
                by_group: dict[str, tuple[int, int]], total: tuple[int, int]) -> Table:
    """The table of one alert from its coverage rows (cells: region, group or None, targeted, reached)."""
    entries: dict[Key, Entry] = {}
    no_group = [0, 0]
    for region, group, targeted, reached in cells:
        key = cell_key(region, group)
        within = (region_key(region), *((group_key(group),) if group else ()), TOTAL)
        entries[key] = Entry(key, f"row:{region}", f"col:{group or ''}", False, targeted, reached, within=within)
        if group is None:
            no_group[0] += targeted
            no_group[1] += reached
    for code, (targeted, reached) in by_region.items():
        entries[region_key(code)] = Entry(region_key(code), f"row:{code}", MARGIN_COL, True, targeted, reached,
                                          within=(TOTAL,))
    for code, (targeted, reached) in by_group.items():
        entries[group_key(code)] = Entry(group_key(code), MARGIN_ROW, f"col:{code}", True, targeted, reached,
                                         within=(TOTAL,))
    # Never published; in the table so that the groups' line is right (it is often derivable: then it is a bridge).
    entries[NO_GROUP] = Entry(NO_GROUP, MARGIN_ROW, NO_GROUP_COL, True, no_group[0], no_group[1], listed=False,
                              within=(TOTAL,))
    return Table(entries, *total)


# ---------------------------------------------------------------- flows


class _Flow:
    """Maximum flow (Edmonds–Karp) over the arcs of the hidden entries; small graphs, so plain dictionaries."""

    def __init__(self, arcs: Iterable[tuple[str, str, int]]) -> None:
        self.cap: dict[tuple[str, str], int] = defaultdict(int)
        self.adj: dict[str, set[str]] = defaultdict(set)
        for u, v, c in arcs:
            self.cap[(u, v)] += c
            self.adj[u].add(v)
            self.adj[v].add(u)
        self.flow: dict[tuple[str, str], int] = defaultdict(int)

    def residual(self, u: str, v: str) -> int:
        return self.cap[(u, v)] - self.flow[(u, v)]

    def run(self, source: str, sink: str, limit: int) -> int:
        """Push up to `limit` from source to sink; the amount pushed."""
        pushed = 0
        while pushed < limit:
            parent = self._bfs(source, sink)
            if parent is None:
                break
            path, v = [], sink
            while v != source:
                path.append((parent[v], v))
                v = parent[v]
            amount = min(limit - pushed, *(self.residual(u, w) for u, w in path))
            for u, w in path:
                self.flow[(u, w)] += amount
                self.flow[(w, u)] -= amount
            pushed += amount
        return pushed

    def _bfs(self, source: str, sink: str) -> dict[str, str] | None:
        parent = {source: source}
        queue = [source]
        for u in queue:
            for v in sorted(self.adj[u]):
                if v not in parent and self.residual(u, v) > 0:
                    parent[v] = u
                    if v == sink:
                        return parent
                    queue.append(v)
        return None


def _ends(entry: Entry, rise: bool) -> tuple[str, str]:
    """(source, sink) of the flow that lets `entry` rise (or fall): its own arc's head back to its tail."""
    return (entry.col, entry.row) if entry.margin != rise else (entry.row, entry.col)


def _flow(table: Table, hidden: set[Key], entry: Entry, measure: Measure, rise: bool,
          limit: int) -> tuple[int, _Flow]:
    arcs = [arc for key in sorted(hidden) if key != entry.key for arc in table.entries[key].arcs(measure)]
    flow = _Flow(arcs)
    source, sink = _ends(entry, rise)
    cap = min(limit, entry.caps(measure)[0 if rise else 1])
    return flow.run(source, sink, cap) if cap > 0 else 0, flow


def bounds(table: Table, hidden: set[Key] | frozenset[Key], key: Key, measure: Measure) -> tuple[int, int]:
    """The attacker's (lowest, highest) value of one hidden entry's `measure`, from its own table alone."""
    entry = table.entries[key]
    up, _ = _flow(table, set(hidden), entry, measure, True, UNBOUNDED)
    down, _ = _flow(table, set(hidden), entry, measure, False, UNBOUNDED)
    value = entry.value(measure)
    return value - down, value + up


# ---------------------------------------------------------------- choosing complementary entries


def _cheapest_path(table: Table, hidden: set[Key], flow: _Flow, measure: Measure, source: str,
                   sink: str, exclude: Key) -> list[Key] | None:
    """The visible entries whose hiding opens the cheapest augmenting path (Dijkstra over the residual graph of
    the hidden entries, at no cost, and the arcs of visible entries at their cost)."""
    extra: dict[str, list[tuple[str, int, Key | None]]] = defaultdict(list)
    for (u, v) in list(flow.cap):
        if flow.residual(u, v) > 0:
            extra[u].append((v, 0, None))
    for key, entry in sorted(table.entries.items()):
        if key in hidden or key == exclude or not entry.listed:
            continue
        for u, v, cap in entry.arcs(measure):
            if cap > 0:
                extra[u].append((v, _cost(entry), key))
    best: dict[str, int] = {source: 0}
    via: dict[str, tuple[str, Key | None]] = {}
    heap = [(0, source)]
    while heap:
        cost, u = heapq.heappop(heap)
        if u == sink:
            break
        if cost > best.get(u, UNBOUNDED):
            continue
        for v, step, through in sorted(extra[u], key=lambda item: (item[1], item[0], item[2] or ())):
            if cost + step < best.get(v, UNBOUNDED):
                best[v] = cost + step
                via[v] = (u, through)
                heapq.heappush(heap, (cost + step, v))
    if sink not in best:
        return None
    out, v = [], sink
    while v != source:
        v, step_key = via[v]
        if step_key is not None:
            out.append(step_key)
    return out


def _reach(table: Table, hidden: set[Key], entry: Entry, measures: tuple[Measure, ...], rises: tuple[bool, ...],
           need: int) -> bool:
    """Hide entries until some measure of `measures` can move `entry` by `need` in some direction of `rises`;
    False when no set of entries allows it."""
    while True:
        options = []
        for measure in measures:
            for rise in rises:
                moved, flow = _flow(table, hidden, entry, measure, rise, need)
                if moved >= need:
                    return True
                options.append((measure, rise, flow))
        paths = []
        for measure, rise, flow in options:
            path = _cheapest_path(table, hidden, flow, measure, *_ends(entry, rise), entry.key)
            if path:
                paths.append((sum(_cost(table.entries[k]) for k in path), sorted(path)))
        if not paths:
            return False
        hidden.update(min(paths)[1])


def _cost(entry: Entry) -> int:
    return entry.targeted + (MARGIN_COST if entry.margin else 0)


def _said_for_everyone(table: Table, hidden: set[Key], entry: Entry, measure: Measure) -> bool:
    """A shown figure containing the entry has none reached (or none unreached): so has the entry."""
    for key in entry.within:
        shown = table.shown(key, hidden)
        if shown is not None and (shown[1] if measure == "reached" else shown[0] - shown[1]) == 0:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Pattern:
    """What a viewer may not see: the hidden entries, or the whole alert (`withheld`)."""

    hidden: frozenset[Key]
    withheld: bool = False

    def hides(self, key: Key) -> bool:
        return self.withheld or key in self.hidden


def _primaries(table: Table, k: int) -> list[Entry]:
    return [e for _, e in sorted(table.entries.items()) if e.listed and e.targeted < k]


def _targeted_rule(table: Table, hidden: set[Key], entry: Entry, k: int, measures: tuple[Measure, ...]) -> bool:
    """Rule 1: could be k or more; failing that, at least not a single value."""
    if _reach(table, hidden, entry, measures, (True,), k - entry.targeted):
        return True
    return _reach(table, hidden, entry, measures, (True, False), 1)


def _stage(table: Table, hidden: set[Key], k: int, rules: Iterator[tuple[Entry, str]]) -> bool:
    for entry, rule in rules:
        if rule == "targeted":
            ok = _targeted_rule(table, hidden, entry, k, ("targeted",))
        elif rule == "either":
            ok = _targeted_rule(table, hidden, entry, k, ("reached", "unreached"))
        else:
            measure: Measure = "reached" if rule == "reached" else "unreached"
            ok = (_said_for_everyone(table, hidden, entry, measure)
                  or _reach(table, hidden, entry, (measure, "swap"), (True, False), 1))
        if not ok:
            return False
    return True


def pattern(table: Table, k: int) -> Pattern:
    """The entries to hide from a viewer (see the module's docstring for the rule)."""
    if table.total_targeted < k:
        return Pattern(frozenset(), withheld=True)
    primaries = _primaries(table, k)
    hidden = {e.key for e in primaries} | {NO_GROUP}
    if not primaries:
        return Pattern(frozenset(hidden))
    stages = (("targeted",), ("either", "reached", "unreached"))
    for rules in stages:
        while True:  # hiding more for one entry never undoes another's protection; one more pass proves it
            before = len(hidden)
            if not _stage(table, hidden, k, ((e, r) for e in primaries for r in rules)):
                return Pattern(frozenset(), withheld=True)
            if len(hidden) == before:
                break
    return Pattern(frozenset(hidden))


# ---------------------------------------------------------------- the other forms


def alert_withheld(targeted: int, k: int | None) -> bool:
    """An alert of fewer than k targeted shows a viewer no figure anywhere (its coverage, breakdown, the alert
    list, the dashboard), and is left out of a viewer's period aggregates."""
    return k is not None and targeted < k


def breakdown_shown(hidden: Pattern, row_sizes: Iterable[int], k: int) -> bool:
    """Whether a viewer may see an alert's region × group × channel breakdown: only when nothing of its table is
    hidden and every row has at least k targeted. Which channel served whom changes while an alert goes out
    (fallbacks), so no set of hidden rows chosen at one moment stays safe at the next, and the rows per channel
    would add a third dimension to the table above; the breakdown is then withheld as a whole — the one safe
    choice, as the per-channel totals (`by_channel`) stay published."""
    return not hidden.withheld and hidden.hidden <= {NO_GROUP} and all(size >= k for size in row_sizes)
