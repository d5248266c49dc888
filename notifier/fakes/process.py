"""Running a fake gateway as its own process (crash tests, benchmarks, manual runs): print the READY line that
scripts wait for, serve until SIGTERM or SIGINT, then stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


async def serve_until_signalled(ready: str, stop_fake: Callable[[], Awaitable[None]]) -> None:
    """Print `READY <ready>` once listening and serve until told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers in asyncio
            loop.add_signal_handler(sig, stop.set)
    print(f"READY {ready}", flush=True)  # the line scripts wait for
    try:
        await stop.wait()
    finally:
        await stop_fake()


class Background:
    """The pushes a fake has scheduled (receipts, events): started, waited for, cancelled together."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait until every task started so far (and any they start) has finished."""
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
