"""`python -m notifier.worker --config FILE`: delivery workers without the API.

For scale-out: several worker processes can run against one database, beside or instead of `notifier serve`;
leases keep them from sending the same delivery twice, and a worker that dies has its claims reclaimed by the
others. Prints `WORKER READY` once it is working; SIGTERM or SIGINT stops it gracefully (the batches in flight
are finished and recorded first).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from notifier.config import Settings, load_settings
from notifier.logs import setup_logging
from notifier.service import Service

READY_LINE = "WORKER READY"


async def run_worker(settings: Settings) -> int:
    """Deliver until SIGTERM/SIGINT; the worker runs whatever `[worker] enabled` says (that is this process's job)."""
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"enabled": True})})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers first: a signal sent as soon as READY is seen must stop us gracefully, not kill us.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Service(settings) as service:
        service.start_worker()
        print(READY_LINE, flush=True)
        await stop.wait()
        await service.stop_worker()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.worker",
                                     description="Run delivery workers without the API.")
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, os.environ)
    except (OSError, ValueError) as exc:
        print(f"notifier worker: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging()
    return asyncio.run(run_worker(settings))


if __name__ == "__main__":
    sys.exit(main())
