"""The event loop every notifier command runs on: uvloop (libuv, the loop asyncpg's authors maintain) where it is
installed — every Linux and macOS install, from pyproject — and asyncio's own elsewhere, or when the operator asks.

Why: a webhook fan-out is one event loop sending thousands of requests; uvloop's transports and scheduling cost
less per request than asyncio's pure-Python ones. Measured on the 2-core benchmark VM, six alternating runs each
(bench/RESULTS.md, twelfth round): notifier's own webhook requests 4,612 -> 5,587 a second, CPU 226 -> 189 µs a
request; the bare aiohttp loop 5,171 -> 5,903. Nothing else changes: the same asyncio API, the same aiohttp.

`NOTIFIER_EVENT_LOOP=asyncio` runs on asyncio's loop instead (a fallback should uvloop ever misbehave on a host).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "NOTIFIER_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


class UnknownEventLoop(ValueError):
    """`NOTIFIER_EVENT_LOOP` names no loop we run on."""

    def __init__(self, value: str) -> None:
        super().__init__(f"{ENV} must be one of {', '.join(CHOICES)}, not {value!r}")
        self.value = value


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default loop (asked for, or uvloop not installed)."""
    choice = os.environ.get(ENV, "").strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise UnknownEventLoop(os.environ[ENV])
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # a platform without wheels (Windows): asyncio's loop does the same work, slower
        return None
    return uvloop.new_event_loop


def running_loop_name() -> str:
    """The loop this coroutine runs on, with its version: the service's start-up log and the benchmark's record of
    the machine say it."""
    module = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    return f"uvloop {version('uvloop')}" if module == "uvloop" else "asyncio"


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` on the loop `loop_factory` names — chosen before the coroutine is made, so that a bad
    choice leaves no coroutine never awaited."""
    factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
