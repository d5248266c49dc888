"""How a long-running process stops: on SIGINT (Ctrl+C) or SIGTERM (systemd, docker stop), gracefully.

`notifier serve`, `notifier worker` (and `python -m notifier.worker`) and the serving demo wait here; the batches
in flight are then finished and recorded before the process exits, rather than left to lease expiry and resent.
"""

from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; the handlers are installed on the running loop now, so a signal sent
    as soon as the caller says it is ready stops it gracefully rather than killing it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


async def wait_for_signal() -> None:
    """Until SIGINT or SIGTERM."""
    await stop_event().wait()
