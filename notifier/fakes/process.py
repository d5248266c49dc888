"""Running a fake gateway as its own process (crash tests, benchmarks, manual runs): print the READY line that
scripts wait for, serve until SIGTERM or SIGINT, then stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable


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
