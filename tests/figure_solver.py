"""An attacker's solver for the figures a viewer sees: every hidden figure of an alert's region × group table
becomes an integer unknown, every shown figure and every sum that ties them an equation, and a mixed-integer
program (scipy's HiGHS) finds the lowest and highest value each hidden figure can take.

The equations are those a reader of the coverage object can write down: a district is the sum of its cells, a group
the sum of its cells over the districts, the total the sum of the districts and of the groups with the people in no
group (unknown, or the sum of the no-group cells), for targeted and for reached; a hidden entry holds at least one
person (it is listed) and reached never exceeds targeted. The test data puts every person in at most one group,
so these sums are exact — the strongest position for the attacker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

Key = tuple[str, ...]


@dataclass(frozen=True)
class Range:
    low: int
    high: int

    @property
    def single(self) -> bool:
        return self.low == self.high


class Attacker:
    """Unknowns for the hidden entries of one viewer's coverage object, and the equations between them."""

    def __init__(self, coverage: dict[str, Any]) -> None:
        self.total = (coverage["targeted"], coverage["reached"])
        self.entries: dict[Key, dict[str, Any]] = {}
        for cell in coverage["cells"]:
            self.entries[("cell", cell["region"], cell["group"] or "")] = cell
        for code, cell in coverage["by_region"].items():
            self.entries[("region", code)] = cell
        for code, cell in coverage["by_group"].items():
            self.entries[("group", code)] = cell
        self.hidden = sorted(k for k, c in self.entries.items() if c.get("suppressed"))
        self.index: dict[tuple[Key, str], int] = {}
        for key in [*self.hidden, ("nogroup",)]:
            for measure in ("targeted", "reached"):
                self.index[(key, measure)] = len(self.index)
        self.rows: list[tuple[dict[int, int], int]] = []
        self._equations()

    def _term(self, key: Key, measure: str, row: dict[int, int], sign: int) -> int:
        """Add the entry to an equation; its known value (moved to the right-hand side) when it is shown."""
        if (key, measure) in self.index:
            slot = self.index[(key, measure)]
            row[slot] = row.get(slot, 0) + sign
            return 0
        return -sign * int(self.entries[key][measure])

    def _line(self, parts: list[Key], whole: Key | None, measure: str) -> None:
        row: dict[int, int] = {}
        rhs = sum(self._term(p, measure, row, 1) for p in parts)
        if whole is None:
            rhs += self.total[0 if measure == "targeted" else 1]
        else:
            rhs += self._term(whole, measure, row, -1)
        self.rows.append((row, rhs))

    def _equations(self) -> None:
        cells = [k for k in self.entries if k[0] == "cell"]
        for measure in ("targeted", "reached"):
            for key in [k for k in self.entries if k[0] == "region"]:
                self._line([c for c in cells if c[1] == key[1]], key, measure)
            for key in [k for k in self.entries if k[0] == "group"]:
                self._line([c for c in cells if c[2] == key[1]], key, measure)
            self._line([k for k in self.entries if k[0] == "region"], None, measure)
            self._line([k for k in self.entries if k[0] == "group"] + [("nogroup",)], None, measure)
            self._line([c for c in cells if c[2] == ""], ("nogroup",), measure)

    def range(self, key: Key, measure: str) -> Range:
        """Lowest and highest value of a hidden entry's targeted, reached or unreached (targeted − reached)."""
        n = len(self.index)
        objective = np.zeros(n)
        if measure in ("targeted", "reached"):
            objective[self.index[(key, measure)]] = 1
        else:
            objective[self.index[(key, "targeted")]] = 1
            objective[self.index[(key, "reached")]] = -1
        matrix, lows, highs = [], [], []
        for row, rhs in self.rows:
            line = np.zeros(n)
            for slot, coefficient in row.items():
                line[slot] = coefficient
            matrix.append(line)
            lows.append(rhs)
            highs.append(rhs)
        for entry in [*self.hidden, ("nogroup",)]:  # reached <= targeted
            line = np.zeros(n)
            line[self.index[(entry, "reached")]] = 1
            line[self.index[(entry, "targeted")]] = -1
            matrix.append(line)
            lows.append(-np.inf)
            highs.append(0)
        lower = np.zeros(n)
        for entry in self.hidden:
            lower[self.index[(entry, "targeted")]] = 1
        constraints = LinearConstraint(np.array(matrix), lows, highs)
        found = []
        for sign in (1, -1):
            result = milp(sign * objective, constraints=constraints, integrality=np.ones(n),
                          bounds=Bounds(lower, np.full(n, self.total[0])))
            assert result.status == 0, result.message
            found.append(round(sign * result.fun))
        return Range(found[0], found[1])
