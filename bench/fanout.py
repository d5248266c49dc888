"""Fan-out benchmark: one alert to N webhook subscribers, end to end, against a fake receiver in another process.

    .venv/bin/python bench/fanout.py [--subscribers 100000] [--bare-requests 30000] [--json]

Phases (see bench/README.md for the figures measured):
1. setup — N subscribers with one webhook each, bulk-inserted into a fresh SQLite file (not measured as a result);
2. publish — `publish_alert`: the alert, its frozen target set and N delivery rows in one transaction (fan-out);
3. delivery — the in-process worker (`Service.start_worker`, claim_batch 1000, concurrency 256) claims, signs,
   POSTs and records every delivery; timed until the last delivery was recorded `delivered`;
4. bare loop — the ceiling: a plain aiohttp POST loop (100 concurrent, no store, no signing) against the same
   receiver, to put our deliveries/s in proportion.
Peak RSS is this process's (the receiver is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from notifier.config import Settings, load_settings
from notifier.coverage import alert_coverage
from notifier.models import AlertIn, Policy, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret

MB = 1024 * 1024


@dataclass
class Figures:
    subscribers: int
    setup_s: float
    publish_s: float
    delivered: int
    failed: int
    delivery_s: float
    deliveries_per_s: float
    publish_to_last_delivery_s: float
    peak_rss_mb: float
    peak_rss_delivery_mb: float
    receiver_requests: int
    coverage_rate: float | None
    bare_requests: int
    bare_s: float
    bare_req_per_s: float
    ratio: float


# ------------------------------------------------------------------ the receiver, in its own process


def start_receiver(port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m notifier.fakes.webhook_receiver --port N`, once it printed `READY <url>`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    proc = subprocess.Popen([sys.executable, "-m", "notifier.fakes.webhook_receiver", "--port", str(port)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    buffer, deadline = b"", time.monotonic() + 20
    while time.monotonic() < deadline and b"\n" not in buffer:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            chunk = os.read(proc.stdout.fileno(), 1024)
            if not chunk:
                break
            buffer += chunk
    line = buffer.decode().strip()
    if not line.startswith("READY "):
        stop_receiver(proc)
        raise SystemExit(f"the fake receiver did not start: {line!r}")
    return proc, line.split()[1]


def stop_receiver(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def receiver_count(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/_stats") as response:
        return int((await response.json())["count"])


# ------------------------------------------------------------------ our pipeline


def settings_for(db: Path) -> Settings:
    return load_settings(None, {}, {
        "database": {"url": f"sqlite:///{db}"},
        "worker": {"claim_batch": 1000, "concurrency": 256, "poll_interval": 0.05},
        "channels": {"webhook": {"allow_private_networks": True}},
    })


def subscribers(count: int, url: str) -> tuple[list[SubscriberRecord], list[dict[str, str]]]:
    now = time.time()
    records = [SubscriberRecord(
        id=uuid.uuid4().hex, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
        consent_source="bench", consent_at=now, created_at=now, contacts={"webhook": f"{url}/org/{i}"},
        subscriptions=[("env.heavy-pollution", ["webhook"], 0)]) for i in range(count)]
    return records, [{"webhook": generate_webhook_secret()} for _ in range(count)]


class Tally:
    """Counts final results as the dispatcher records them (its `on_result` hook); no polling of the store."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.expected = -1
        self.last = 0.0
        self.done = asyncio.Event()

    def __call__(self, channel: str, status: str) -> None:
        self.statuses[status] += 1
        if status in ("delivered", "failed"):
            self.last = time.perf_counter()
            if self.statuses["delivered"] + self.statuses["failed"] >= self.expected >= 0:
                self.done.set()


async def sample_rss(peak: list[int], stop: asyncio.Event) -> None:
    me = psutil.Process()
    while not stop.is_set():
        peak[0] = max(peak[0], me.memory_info().rss)
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except TimeoutError:
            pass


async def progress(tally: Tally, total: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 5)
        except TimeoutError:
            done = tally.statuses["delivered"] + tally.statuses["failed"]
            print(f"  … {done}/{total} final", file=sys.stderr, flush=True)


async def run_ours(count: int, url: str, db: Path) -> dict[str, Any]:
    settings = settings_for(db)
    tally = Tally()
    t = time.perf_counter()
    async with Service(settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"enabled": False})})) as setup:
        records, secrets = subscribers(count, url)
        await setup.store.bulk_create_subscribers(records, secrets)
    del records, secrets
    setup_s = time.perf_counter() - t
    async with Service(settings, on_result=tally) as service:
        stop, peak = asyncio.Event(), [psutil.Process().memory_info().rss]
        watchers = [asyncio.create_task(sample_rss(peak, stop)), asyncio.create_task(progress(tally, count, stop))]
        service.start_worker()  # idle, polling: as in production, it finds the alert as soon as it is committed
        t0 = time.perf_counter()
        alert, _ = await publish_alert(service.store, AlertIn(
            topic="env.heavy-pollution", headline="重污染天气红色预警", body="长治市发布重污染天气红色预警，"
            "请减少户外活动。", instruction="老年人、儿童减少户外活动。", severity=Severity.SEVERE,
            urgency=Urgency.IMMEDIATE, policy=Policy.ALL), None)
        t1 = time.perf_counter()
        tally.expected = alert.targeted
        if tally.statuses["delivered"] + tally.statuses["failed"] >= alert.targeted:
            tally.done.set()
        service.dispatcher.wake()
        await asyncio.wait_for(tally.done.wait(), timeout=max(600.0, count / 50))
        stop.set()
        await asyncio.gather(*watchers)
        await service.stop_worker()
        coverage = await alert_coverage(service.store, alert.id)
        received = await receiver_count(service.http, url)
    delivered, failed = tally.statuses["delivered"], tally.statuses["failed"]
    return {"setup_s": setup_s, "publish_s": t1 - t0, "delivered": delivered, "failed": failed,
            "delivery_s": tally.last - t1, "deliveries_per_s": delivered / (tally.last - t1),
            "publish_to_last_delivery_s": tally.last - t0, "peak_rss_delivery_mb": peak[0] / MB,
            "receiver_requests": received, "coverage_rate": coverage.coverage_rate}


# ------------------------------------------------------------------ the ceiling


async def run_bare(url: str, requests: int, concurrency: int = 100) -> tuple[float, float]:
    """(seconds, requests/s) of a plain aiohttp POST loop: no store, no signing, no rendering."""
    body = json.dumps({"type": "alert.alert", "text": "长治市发布重污染天气红色预警" * 8, "pad": "x" * 300},
                      ensure_ascii=False).encode()
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:

        async def worker() -> None:
            for i in counter:
                headers = {"Content-Type": "application/json", "webhook-id": f"bare-{i}"}
                async with http.post(f"{url}/bare/{i}", data=body, headers=headers) as response:
                    await response.read()
                    response.raise_for_status()

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t
    return elapsed, requests / elapsed


# ------------------------------------------------------------------ report


def table(f: Figures) -> str:
    lines = [
        ("subscribers (one webhook each)", f"{f.subscribers:,}"),
        ("setup: bulk insert", f"{f.setup_s:.2f} s"),
        ("publish (fan-out, one transaction)", f"{f.publish_s:.2f} s"),
        ("delivered / failed", f"{f.delivered:,} / {f.failed:,}"),
        ("delivery: publish returned → last delivered", f"{f.delivery_s:.2f} s"),
        ("deliveries/s", f"{f.deliveries_per_s:,.0f}"),
        ("publish start → last delivery", f"{f.publish_to_last_delivery_s:.2f} s"),
        ("peak RSS, whole run", f"{f.peak_rss_mb:.0f} MB"),
        ("peak RSS, publish + delivery", f"{f.peak_rss_delivery_mb:.0f} MB"),
        ("receiver: requests seen", f"{f.receiver_requests:,}"),
        ("coverage rate", "-" if f.coverage_rate is None else f"{f.coverage_rate:.2%}"),
        (f"bare aiohttp loop: {f.bare_requests:,} POSTs", f"{f.bare_s:.2f} s"),
        ("bare aiohttp loop req/s (100 concurrent)", f"{f.bare_req_per_s:,.0f}"),
        ("ratio ours / bare", f"{f.ratio:.2f}"),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v:>14}" for k, v in lines)


async def bench(args: argparse.Namespace) -> Figures:
    proc, url = start_receiver(args.port)
    try:
        with tempfile.TemporaryDirectory(prefix="notifier-bench-") as tmp:
            ours = await run_ours(args.subscribers, url, Path(tmp) / "bench.db")
        bare_s, bare_rate = await run_bare(url, args.bare_requests)
    finally:
        stop_receiver(proc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return Figures(subscribers=args.subscribers, peak_rss_mb=peak / MB, bare_requests=args.bare_requests,
                   bare_s=bare_s, bare_req_per_s=bare_rate, ratio=ours["deliveries_per_s"] / bare_rate, **ours)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--bare-requests", type=int, default=30_000, help="POSTs of the bare aiohttp loop")
    parser.add_argument("--port", type=int, default=0, help="port of the fake receiver (0: a free one)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    figures = asyncio.run(bench(args))
    print(table(figures))
    if args.json:
        print(json.dumps(asdict(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
