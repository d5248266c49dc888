"""A long-running process, once ready (notifier.settle): it freezes what it built while starting (notifier.heap),
so that the collector's full passes during a fan-out scan only what delivering makes, and hands the GIL to
SQLite's threads quickly (notifier.gil)."""

from __future__ import annotations

import gc
import sys

from notifier.gil import SWITCH_INTERVAL
from notifier.heap import freeze_startup_heap
from notifier.settle import settle_long_running


def test_what_exists_at_start_up_is_kept_out_of_the_collectors_passes() -> None:
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # modules, classes, the application: thousands of objects
    finally:
        gc.unfreeze()


def test_a_settled_process_hands_the_gil_over_within_half_a_millisecond() -> None:
    before = sys.getswitchinterval()
    try:
        settle_long_running()
        assert sys.getswitchinterval() == SWITCH_INTERVAL < before
        assert gc.get_freeze_count() > 1000
    finally:
        sys.setswitchinterval(before)
        gc.unfreeze()
