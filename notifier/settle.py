"""What a process that serves or delivers for long does once it is ready (`notifier serve`, `notifier worker`)."""

from __future__ import annotations

from notifier.gil import hand_over_quickly
from notifier.heap import settle_collector


def settle_long_running() -> None:
    """Freeze the start-up heap out of the collector's passes, collect young objects less often, and hand the GIL
    to SQLite's threads quickly."""
    settle_collector()
    hand_over_quickly()
