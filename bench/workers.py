"""Scale-out on one machine: the same fan-out delivered by 1 and then by N `notifier worker` processes sharing one
SQLite database (leases keep them from sending a delivery twice), against the fake receiver in another process.

    .venv/bin/python bench/workers.py [--subscribers 30000] [--workers 2]

Prints publish → last delivery and deliveries/s for each worker count, and the speed-up, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
import fanout  # the sibling benchmark's receiver and subscriber helpers

from notifier.config import load_settings
from notifier.models import AlertIn, Policy, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service


async def deliver_with(workers: int, count: int, url: str, folder: Path) -> float:
    """Seconds from publish until the receiver has seen every delivery, with `workers` worker processes."""
    config = folder / f"workers-{workers}.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{folder / f"workers-{workers}.db"}"\n'
                      "[worker]\nclaim_batch = 1000\npoll_interval = 0.05\n"
                      "[channels.webhook]\nallow_private_networks = true\n", encoding="utf-8")
    settings = load_settings(config, {})
    idle = settings.model_copy(update={"worker": settings.worker.model_copy(update={"enabled": False})})
    async with Service(idle) as service, aiohttp.ClientSession() as http:
        start_count = await fanout.receiver_count(http, url)
        records, secrets = fanout.subscribers(count, url)
        await service.store.bulk_create_subscribers(records, secrets)
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "notifier.worker", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL) for _ in range(workers)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                await proc.stdout.readline()  # WORKER READY
            t0 = time.perf_counter()
            await publish_alert(service.store, AlertIn(
                topic="env.heavy-pollution", headline="重污染天气红色预警", severity=Severity.SEVERE,
                urgency=Urgency.IMMEDIATE, policy=Policy.ALL), None)
            # The receiver is another process: polling its counter is the only way to see the last delivery.
            while await fanout.receiver_count(http, url) - start_count < count:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            return time.perf_counter() - t0
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()


async def with_fresh_receiver(workers: int, count: int, folder: Path) -> float:
    """A receiver per run, so that neither run pays for the other's recorded ids."""
    proc, url = fanout.start_receiver(0)
    try:
        return await deliver_with(workers, count, url, folder)
    finally:
        fanout.stop_receiver(proc)


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="notifier-workers-") as tmp:
        one = await with_fresh_receiver(1, args.subscribers, Path(tmp))
        many = await with_fresh_receiver(args.workers, args.subscribers, Path(tmp))
    n = args.subscribers
    print(f"{'workers':<10}{'publish → last delivery':>26}{'deliveries/s':>16}")
    print(f"{1:<10}{one:>24.2f} s{n / one:>16,.0f}")
    print(f"{args.workers:<10}{many:>24.2f} s{n / many:>16,.0f}")
    print(f"speed-up with {args.workers} workers: {one / many:.2f}×")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=30_000)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(bench(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
