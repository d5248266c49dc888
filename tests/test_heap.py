"""A long-running process, once ready (notifier.settle): it freezes what it built while starting and collects young
objects less often (notifier.heap), so that the collector's passes during a fan-out scan only what delivering makes,
and hands the GIL to SQLite's threads quickly (notifier.gil)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from notifier.gil import SWITCH_INTERVAL
from notifier.heap import YOUNG_OBJECTS, settle_collector
from notifier.settle import settle_long_running


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_what_exists_at_start_up_is_kept_out_of_the_collectors_passes() -> None:
    gc.unfreeze()
    settle_collector()
    assert gc.get_freeze_count() > 1000  # modules, classes, the application: thousands of objects


def test_young_objects_are_collected_after_thousands_not_hundreds() -> None:
    settle_collector()
    assert gc.get_threshold()[0] == YOUNG_OBJECTS > 700  # CPython's default is 700
    assert gc.isenabled()  # cyclic garbage is still collected, only less often


def test_a_settled_process_hands_the_gil_over_within_a_tenth_of_a_millisecond() -> None:
    before = sys.getswitchinterval()
    try:
        settle_long_running()
        # Python keeps the interval in whole microseconds: 0.0001 comes back as 9.999999999999999e-05
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL, abs=1e-6)
        assert SWITCH_INTERVAL < before
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold()[0] == YOUNG_OBJECTS
    finally:
        sys.setswitchinterval(before)
