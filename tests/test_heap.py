"""A long-running process freezes what it built while starting (notifier.heap), so that the collector's full
passes during a fan-out scan only what delivering makes."""

from __future__ import annotations

import gc

from notifier.heap import freeze_startup_heap


def test_what_exists_at_start_up_is_kept_out_of_the_collectors_passes() -> None:
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # modules, classes, the application: thousands of objects
    finally:
        gc.unfreeze()
