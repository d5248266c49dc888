"""How long the viewer's disclosure control takes for one alert's table (notifier/disclosure_control.py).

    .venv/bin/python bench/disclosure_control.py [--tables 5] [--seed 0]

Random tables of the 13 districts × 9 groups and people in no group (80 % of cells filled, sizes from 1 to 1000,
a third of them under k = 5), reached at random: prints the cells, the small entries, how many entries a viewer
gets hidden and the milliseconds `pattern` took (the coverage route caches it while the figures do not change).
"""

from __future__ import annotations

import argparse
import random
import time

from notifier.disclosure_control import build_table, pattern

REGIONS = [f"1404{i:02d}" for i in range(13)]
GROUPS = ["elderly", "child", "student", "disabled", "military", "low_income", "extreme_poverty", "orphan",
          "poverty_household", None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n in range(args.tables):
        rnd = random.Random(args.seed + n)
        cells = []
        for region in REGIONS:
            for group in GROUPS:
                if rnd.random() < 0.8:
                    size = rnd.choice([1, 2, 3, 4, 8, 20, 50, 200, 1000])
                    cells.append((region, group, size, rnd.randint(0, size)))
        regions: dict[str, tuple[int, int]] = {}
        groups: dict[str, tuple[int, int]] = {}
        for region, group, t, r in cells:
            regions[region] = (regions.get(region, (0, 0))[0] + t, regions.get(region, (0, 0))[1] + r)
            if group:
                groups[group] = (groups.get(group, (0, 0))[0] + t, groups.get(group, (0, 0))[1] + r)
        table = build_table(cells, regions, groups, (sum(c[2] for c in cells), sum(c[3] for c in cells)))
        small = sum(1 for e in table.entries.values() if e.listed and e.targeted < 5)
        started = time.perf_counter()
        hidden = pattern(table, 5)
        took = (time.perf_counter() - started) * 1000
        print(f"table {n}: {len(cells)} cells, {small} small entries, {len(hidden.hidden) - 1} hidden, {took:.0f} ms")


if __name__ == "__main__":
    main()
