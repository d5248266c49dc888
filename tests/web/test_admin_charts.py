"""Geometry of the dashboard's SVG charts: bars as long as the coverage rate, texts that carry the figures, and a
reach curve that never draws a gap as progress."""

from __future__ import annotations

import itertools
import re

from notifier.i18n import translator
from notifier.store.admin import bucket_for
from notifier.web.admin.charts import Bar, BarTexts, bar_chart, duration, reach_curve, text_width

TEXTS = BarTexts(suppressed="<5", not_targeted="未定向", nobody="无定向对象")


def test_bar_length_is_the_coverage_rate_and_the_text_gives_the_figures() -> None:
    """A 3-of-4 bar is three quarters of the plot wide and reads "3/4 · 75.0%"."""
    chart = bar_chart("c", "title", "desc", [Bar("140402", "城区", 4, 3, 0.75)], TEXTS)
    row = chart.rows[0]
    assert row.width == round(chart.plot_width * 0.75, 1)
    assert row.value == "3/4 · 75.0%"


def test_bars_without_figures_say_why() -> None:
    """Suppressed, not aimed at, and nobody-targeted bars have no length and a text instead of figures."""
    chart = bar_chart("c", "t", "d", [Bar("a", "A", None, None, None, suppressed=True),
                                      Bar("b", "B", 0, 0, None, in_target=False), Bar("c", "C", 0, 0, None)], TEXTS)
    assert [(r.width, r.value) for r in chart.rows] == [(0.0, "<5"), (0.0, "未定向"), (0.0, "无定向对象")]
    assert all(r.bar.muted for r in chart.rows)


def test_label_column_fits_the_longest_name() -> None:
    """Wide (Chinese) characters count a full em, so the label column grows with the longest name."""
    short = bar_chart("c", "t", "d", [Bar("a", "城区", 1, 1, 1.0)], TEXTS)
    long = bar_chart("c", "t", "d", [Bar("a", "建档立卡贫困户", 1, 1, 1.0)], TEXTS)
    assert long.plot_x > short.plot_x >= text_width("城区")


def test_reach_curve_stays_flat_through_empty_buckets() -> None:
    """5 reached in the first second and 3 more in the third: the line is flat through the second one."""
    curve = reach_curve("c", [(1.0, 5), (3.0, 8)], 1.0, 10, title="t", desc="d", tr=translator("zh-CN"))
    points = [tuple(map(float, p)) for p in re.findall(r"([\d.]+),([\d.]+)", curve.path)]
    ys = [y for _, y in points]
    assert ys[0] == curve.bottom  # starts at 0 reached
    flat = [(a, b) for a, b in itertools.pairwise(points) if a[1] == b[1] and a[0] < b[0]]
    assert flat, "a horizontal segment spans the empty second"
    assert curve.target_label == "定向 10"


def test_curve_without_reach_has_no_line() -> None:
    """Before anyone is reached the curve has axes and the targeted line but no path."""
    curve = reach_curve("c", [], 1.0, 10, title="t", desc="d", tr=translator("en"))
    assert curve.path == "" and curve.x_label == "time since publishing"


def test_buckets_keep_the_curve_readable_at_any_length() -> None:
    """A second-long alert is drawn in tenths of a second, an hour-long one in 15-second steps, a week in hours."""
    assert bucket_for(1.0) == 0.1
    assert bucket_for(3600.0) == 15.0
    assert bucket_for(7 * 86400.0) == 3600.0


def test_durations_read_naturally() -> None:
    """Seconds under a minute, minutes under an hour, hours beyond."""
    t = translator("zh-CN")
    assert (duration(45, t), duration(120, t), duration(5400, t)) == ("45 秒", "2 分钟", "1.5 小时")
