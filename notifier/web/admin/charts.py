"""Geometry of the dashboard's server-rendered SVG charts: coverage bars (per district, per group) and the
reach-over-time curve.

This module only computes numbers and the text of labels; the markup is written by the `charts.html` Jinja macros
with autoescaping on, so no text that came from the catalogue or the store is ever pasted into SVG by hand.
Every chart carries its figures as text beside the marks (not colour alone) and a title and description for
assistive technology.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from gettext import NullTranslations

from notifier.web.pages import percent

WIDTH = 760
ROW_HEIGHT = 26
BAR_HEIGHT = 16
VALUE_WIDTH = 150  # right-hand column with "reached/targeted · rate"
TOP = 26  # room for the percentage axis labels


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar's data: a district or a group."""

    code: str
    label: str
    targeted: int | None  # None: suppressed for this viewer
    reached: int | None
    rate: float | None
    suppressed: bool = False
    in_target: bool = True  # False: the alert was not aimed at this district/group at all
    population: int | None = None  # residents on record, where a population table is loaded
    population_rate: float | None = None

    @property
    def muted(self) -> bool:
        """No figures to draw: not aimed at, nobody there, or suppressed."""
        return not self.in_target or self.suppressed or self.targeted == 0


@dataclass(frozen=True, slots=True)
class BarRow:
    bar: Bar
    y: float  # top of the row
    bar_y: float
    text_y: float  # baseline of the row's labels
    width: float  # drawn length of the coverage bar
    value: str  # the figures, as text


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    id: str
    title: str
    desc: str
    width: int
    height: int
    plot_x: float
    plot_width: float
    value_x: float
    rows: list[BarRow]
    ticks: list[Tick]


def text_width(text: str, size: float = 13.0) -> float:
    """A width estimate for laying out labels without a font: wide (CJK) characters count one em, others half."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.56 for c in text)


def bar_value(bar: Bar, texts: BarTexts) -> str:
    if not bar.in_target:
        return texts.not_targeted
    if bar.suppressed or bar.targeted is None:
        return texts.suppressed
    if bar.targeted == 0:
        return texts.nobody
    return f"{bar.reached}/{bar.targeted} · {percent(bar.rate)}"


@dataclass(frozen=True, slots=True)
class BarTexts:
    """What a bar says when it has no figures to show."""

    suppressed: str  # "<5": a viewer's small cell
    not_targeted: str  # the alert was not aimed here
    nobody: str  # aimed here, but no subscriber was targeted


def bar_chart(chart_id: str, title: str, desc: str, bars: Sequence[Bar], texts: BarTexts) -> BarChart:
    """Horizontal bars, one row per item, length = coverage rate on a 0–100 % axis."""
    label_width = min(280.0, max(64.0, max((text_width(b.label) for b in bars), default=0.0) + 14))
    plot_x = label_width
    plot_width = WIDTH - label_width - VALUE_WIDTH
    rows = []
    for index, bar in enumerate(bars):
        y = TOP + index * ROW_HEIGHT
        width = plot_width * min(1.0, bar.rate) if bar.rate is not None else 0.0
        rows.append(BarRow(bar=bar, y=y, bar_y=y + (ROW_HEIGHT - BAR_HEIGHT) / 2, text_y=y + ROW_HEIGHT / 2 + 4.5,
                           width=round(width, 1), value=bar_value(bar, texts)))
    ticks = [Tick(pos=round(plot_x + plot_width * f, 1), label=f"{int(f * 100)}%") for f in (0, .25, .5, .75, 1)]
    return BarChart(id=chart_id, title=title, desc=desc, width=WIDTH, height=TOP + len(bars) * ROW_HEIGHT + 6,
                    plot_x=plot_x, plot_width=plot_width, value_x=plot_x + plot_width + 8, rows=rows, ticks=ticks)


# ---------------------------------------------------------------- the reach curve

CURVE_HEIGHT = 260
LEFT, RIGHT, CURVE_TOP, BOTTOM = 64.0, 96.0, 16.0, 44.0


@dataclass(frozen=True, slots=True)
class Curve:
    id: str
    title: str
    desc: str
    width: int
    height: int
    left: float
    top: float
    right: float  # x of the plot's right edge
    bottom: float  # y of the plot's bottom edge (the time axis)
    path: str  # SVG path data of the cumulative curve ("" when nobody is reached yet)
    target_y: float
    target_label: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    y_label: str


def nice_step(span: float, count: int = 5) -> float:
    """A 1-2-5 step that cuts `span` into about `count` parts."""
    if span <= 0:
        return 1.0
    raw = span / count
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def time_step(span: float) -> float:
    """A step for a time axis in seconds: whole seconds, minutes or hours."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400):
        if span / step <= 6:
            return float(step)
    return 86400.0 * nice_step(span / 86400)


def duration(seconds: float, tr: NullTranslations) -> str:
    """`45 秒`, `2 分钟`, `1.5 小时` (or English), for axis labels and time to reach."""
    if seconds < 60:
        return tr.gettext("%(n)s s") % {"n": f"{seconds:.3g}"}
    if seconds < 3600:
        return tr.gettext("%(n)s min") % {"n": f"{seconds / 60:.3g}"}
    return tr.gettext("%(n)s h") % {"n": f"{seconds / 3600:.3g}"}


def reach_curve(chart_id: str, points: Sequence[tuple[float, int]], bucket: float, targeted: int, *, title: str,
                desc: str, tr: NullTranslations) -> Curve:
    """The cumulative number reached against seconds since release, with the targeted count as a dashed line.
    `points` are (end of a bucket `bucket` seconds wide, reached by then): the line stays flat through empty
    buckets and rises within the bucket in which people were reached, so a gap never looks like steady progress."""
    right, bottom = WIDTH - RIGHT, CURVE_HEIGHT - BOTTOM
    span = max((p[0] for p in points), default=0.0) or 60.0
    x_step = time_step(span)
    x_max = x_step * math.ceil(span / x_step)
    top_count = max(targeted, max((p[1] for p in points), default=0), 1)
    y_step = max(1.0, nice_step(top_count, 4))
    y_max = y_step * math.ceil(top_count / y_step)

    def x(seconds: float) -> float:
        return round(LEFT + (right - LEFT) * seconds / x_max, 1)

    def y(count: float) -> float:
        return round(bottom - (bottom - CURVE_TOP) * count / y_max, 1)

    path, before = "", 0
    if points:
        path = f"M{x(0)},{y(0)}"
        for end, count in points:
            path += f" L{x(max(0.0, end - bucket))},{y(before)} L{x(end)},{y(count)}"
            before = count
    x_ticks = [Tick(pos=x(i * x_step), label=duration(i * x_step, tr)) for i in range(int(x_max / x_step) + 1)]
    y_ticks = [Tick(pos=y(i * y_step), label=f"{int(i * y_step)}") for i in range(int(y_max / y_step) + 1)]
    return Curve(id=chart_id, title=title, desc=desc, width=WIDTH, height=CURVE_HEIGHT, left=LEFT, top=CURVE_TOP,
                 right=right, bottom=bottom, path=path, target_y=y(targeted),
                 target_label=tr.gettext("targeted %(n)s") % {"n": targeted}, x_ticks=x_ticks, y_ticks=y_ticks,
                 x_label=tr.gettext("time since publishing"), y_label=tr.gettext("people reached"))
