"""One notifier case, end to end: fakes and database up, subscribers in, `notifier serve` (the API, and the worker
in the same process unless the case names worker processes) and any `notifier worker` processes started, one
alert published over HTTP, and the fakes' tallies polled until every targeted person was handed over (or the run
stalled). Then the alert's coverage is read through the API and everything is stopped.

Times are wall-clock (`time.time()`) in every process of the machine: the fakes stamp their first and last
acceptance, this process stamps the publish request, so "publish → first/last delivery" needs no polling
precision."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench import procs, world
from bench.procs import Child, Sampler, start
from bench.world import FALLBACK_REGIONS, FALLBACK_TOPIC, PROBE_TOPIC, TOPIC, Weather, fallback_number

T = TypeVar("T")
STALL_SECONDS = 120.0  # no progress at all for this long: the case is reported as it stands
INTO_PUBLISH_SECONDS = 0.3  # the red warning "in publish" is sent this long after the fan-out's publish request
FALLBACK_FIRST_AFTER = 1.0  # seconds after the fan-out's publish answered the first fallback probe is published
FALLBACK_GRACE = 10.0  # seconds a fallback probe under way at the case's end is still waited for


@dataclass(frozen=True)
class Case:
    name: str
    shares: dict[str, float]  # channel kind → share of the subscribers (each has exactly one channel)
    subscribers: int
    backend: str = "sqlite"
    workers: int = 0  # notifier worker processes; 0: the worker runs inside `notifier serve`
    weather: Weather = field(default_factory=Weather)
    probes: int = 0  # small life-safety alerts published one by one while the fan-out runs
    worker_settings: dict[str, float | int] = field(default_factory=dict)
    code: Path | None = None  # another checkout's notifier (the "before" of a before/after run)
    sms_provider: str = "aliyun"  # the "sms" share's gateway: aliyun (1,000 numbers a request) or tencent (200)
    # The gateways push their delivery reports to notifier, as they do in production (Aliyun's SmsReport, 500 a
    # push; WeChat's TEMPLATESENDJOBFINISH, one event a message): the case then also waits until every report was
    # applied (every person reached).
    reports: bool = False
    wechat_rate: int = 5000  # the WeChat account's messages a second (`[channels.wechat] rate_per_second`)


async def _tallies(http: aiohttp.ClientSession, fakes: dict[str, Child]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, child in fakes.items():
        if kind in ("probe", "fallback"):
            continue
        path = "/_tally" if kind == "webhook" else "/_stats"
        async with http.get(child.url + path) as response:
            body = await response.json()
        out[kind] = body if kind == "webhook" else body["tally"]
    return out


async def _publish(http: aiohttp.ClientSession, api: str, key: str, topic: str, severity: str,
                   headline: str, *, idempotent: bool = False, policy: str = "all",
                   regions: list[str] | None = None) -> tuple[str, float, float]:
    """POST /v1/alerts; (alert id, wall time the request started, seconds until the 202). `idempotent`: with an
    `Idempotency-Key` of its own, as a warning system that retries sends its warnings (thirtieth round on)."""
    body = {"topic": topic, "headline": headline, "body": "长治市发布重污染天气红色预警，请减少户外活动。",
            "instruction": "老年人、儿童减少户外活动。", "severity": severity, "urgency": "immediate",
            "policy": policy, "regions": regions or []}
    headers = {"Authorization": f"Bearer {key}", **({"Idempotency-Key": uuid.uuid4().hex} if idempotent else {})}
    started, t = time.time(), time.perf_counter()
    async with http.post(f"{api}/v1/alerts", json=body, headers=headers) as response:
        answer = await response.json()
        elapsed = time.perf_counter() - t
        if response.status != 202:
            raise RuntimeError(f"publish answered {response.status}: {answer}")
    return str(answer["id"]), started, elapsed


async def _probe(http: aiohttp.ClientSession, api: str, key: str, probe: Child, *,
                 fallback_region: str | None = None) -> tuple[float, float]:
    """Publish one small red warning (with an idempotency key) to the one probe subscriber — with `fallback_region`,
    to the fallback probes' person there, whose SMS fails by its report —; seconds from the request to its answer
    (the publish) and to the receiver (with a region, to the webhook that the failed report queued)."""
    async with http.get(probe.url + "/_tally") as response:
        seen = (await response.json())["accepted"]
    topic, headline = PROBE_TOPIC, "暴雨红色预警（探测）"
    if fallback_region:
        topic, headline = FALLBACK_TOPIC, "暴雨红色预警（回退探测）"
    _, started, api_s = await _publish(http, api, key, topic, "extreme", headline, idempotent=True,
                                       policy="fallback" if fallback_region else "all",
                                       regions=[fallback_region] if fallback_region else None)
    while True:
        async with http.get(probe.url + "/_tally") as response:
            tally = await response.json()
        if tally["accepted"] > seen:
            return api_s, float(tally["last_at"]) - started
        await asyncio.sleep(0.005)


async def _wait(http: aiohttp.ClientSession, fakes: dict[str, Child], expected: int, api: str, key: str,
                probes: int) -> tuple[dict[str, dict[str, Any]], list[tuple[float, float]]]:
    """Poll the fakes until `expected` items were accepted (or nothing moved for STALL_SECONDS); meanwhile send
    the probes, one a second."""
    latencies: list[tuple[float, float]] = []
    last_total, last_move, next_probe = -1, time.monotonic(), time.monotonic()
    while True:
        tallies = await _tallies(http, fakes)
        total = sum(t["accepted"] for t in tallies.values())
        if total >= expected:
            return tallies, latencies
        if total != last_total:
            last_total, last_move = total, time.monotonic()
        elif time.monotonic() - last_move > STALL_SECONDS:
            print(f"  ! stalled at {total}/{expected}", file=sys.stderr, flush=True)
            return tallies, latencies
        if len(latencies) < probes and time.monotonic() >= next_probe:
            latencies.append(await _probe(http, api, key, fakes["probe"]))
            next_probe = time.monotonic() + 1.0
        await asyncio.sleep(0.1)


async def _fallback_probes(http: aiohttp.ClientSession, api: str, key: str, fakes: dict[str, Child],
                           most: int, sending: asyncio.Event, fell_back: list[float]) -> None:
    """Red warnings that fall back, one at a time, a second apart, from FALLBACK_FIRST_AFTER seconds into the fan-out
    while its sends are under way (`sending`; the first one whatever, so that a smoke run's tiny fan-out has one), at
    most `most`: each one's seconds from the publish request to its webhook, queued by the report that failed its
    SMS, appended to `fell_back` as it arrives."""
    for n in range(len(FALLBACK_REGIONS)):
        async with http.post(fakes["sms"].url + "/_script", json={
                "phone": fallback_number(n), "behaviour": "receipt_fail", "times": None}) as response:
            response.raise_for_status()
    await asyncio.sleep(FALLBACK_FIRST_AFTER)
    while len(fell_back) < min(most, len(FALLBACK_REGIONS)) and (sending.is_set() or not fell_back):
        region = FALLBACK_REGIONS[len(fell_back)]
        fell_back.append((await _probe(http, api, key, fakes["fallback"], fallback_region=region))[1])
        await asyncio.sleep(1.0)


async def _until(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], progress: Callable[[T], object],
                 every: float, stalled: Callable[[T], str] | None = None) -> T:
    """`read()` every `every` seconds until `done` holds of what it read, or until its `progress` has not moved for
    STALL_SECONDS (then `stalled`'s line, if given, goes to stderr); the last read."""
    last, last_move = None, time.monotonic()
    while True:
        value = await read()
        if done(value):
            return value
        if progress(value) != last:
            last, last_move = progress(value), time.monotonic()
        elif time.monotonic() - last_move > STALL_SECONDS:
            if stalled is not None:
                print(f"  ! {stalled(value)}", file=sys.stderr, flush=True)
            return value
        await asyncio.sleep(every)


async def _coverage(http: aiohttp.ClientSession, api: str, key: str, alert_id: str) -> tuple[dict[str, Any], float]:
    """The alert's coverage, and the seconds its `GET …/coverage` took."""
    asked = time.perf_counter()
    async with http.get(f"{api}/v1/alerts/{alert_id}/coverage",
                        headers={"Authorization": f"Bearer {key}"}) as response:
        coverage: dict[str, Any] = await response.json()
    return coverage, time.perf_counter() - asked


def _count(coverage: tuple[dict[str, Any], float], field: str) -> int:
    return int(coverage[0].get(field) or 0)


async def _recorded(http: aiohttp.ClientSession, api: str, key: str, alert_id: str,
                    handed: int) -> tuple[dict[str, Any], float]:
    """The alert's coverage once the store has recorded every send the gateways took (or nothing moved for
    STALL_SECONDS), and the seconds that last `GET …/coverage` took: what an operator waits for, whole alert."""
    return await _until(lambda: _coverage(http, api, key, alert_id),
                        lambda c: _count(c, "accepted") >= min(handed, _count(c, "targeted")),
                        lambda c: _count(c, "accepted"), 0.2)


async def _reached(http: aiohttp.ClientSession, api: str, key: str, alert_id: str, handed: int,
                   db: Path) -> tuple[int, float]:
    """Wait until every delivery report is stored and none waits to be applied — read from the case's SQLite file
    `db`, beside notifier: a coverage read is a load of its own on the process measured (~0.3 s at 100,000 people,
    ~3 s at 1,000,000), which polled every 0.2 s slowed the very reports it waited for — or until nothing moved for
    STALL_SECONDS; then the alert's coverage, until `handed` people were reached or it too stalls. How many were,
    and when (wall time) the last report was applied."""
    await _until(lambda: asyncio.to_thread(_reports_state, db), lambda s: s[0] >= handed and s[1] == 0,
                 lambda s: s, 0.1, lambda s: f"reports stalled: {s[0]}/{handed} stored, {s[1]} waiting")
    applied_at = time.time()
    coverage = await _until(lambda: _coverage(http, api, key, alert_id), lambda c: _count(c, "reached") >= handed,
                            lambda c: _count(c, "reached"), 1.0,
                            lambda c: f"reports stalled at {_count(c, 'reached')}/{handed}")
    return _count(coverage, "reached"), applied_at


def _reports_state(db: Path) -> tuple[int, int]:
    """(reports stored — the table's last row number: no report is deleted during a case —, pushes of reports
    waiting to be applied: none on a notifier that applies them as they come) in a SQLite database, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        stored = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM receipts").fetchone()[0]
        try:
            waiting = conn.execute("SELECT COUNT(*) FROM report_pushes").fetchone()[0]
        except sqlite3.OperationalError:  # a notifier from before the table (`--compare`)
            waiting = 0
    return int(stored), int(waiting)


def _notifier(case: Case, config: Path, logs: Path, profile: Path | None) -> list[Child]:
    """`notifier serve` (with the worker, unless the case has worker processes) and the worker processes."""
    serve = ["-m", "notifier.cli", "serve", "--config", str(config)]
    if profile is not None and case.workers == 0:
        serve = ["-m", "pyinstrument", "-o", str(profile), *serve]
    children = [start("notifier serve", serve, ready=None, log=logs / "serve.log", timeout=120, code=case.code)]
    try:
        for i in range(case.workers):
            worker = ["-m", "notifier.worker", "--config", str(config)]
            if profile is not None and i == 0:
                worker = ["-m", "pyinstrument", "-o", str(profile), *worker]
            children.append(start(f"notifier worker {i + 1}", worker, ready="WORKER READY",
                                  log=logs / f"worker-{i + 1}.log", timeout=120, code=case.code))
    except BaseException:
        for child in children:
            child.stop()
        raise
    return children


async def _healthy(http: aiohttp.ClientSession, api: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{api}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("notifier serve did not answer /healthz")


def run_case(case: Case, folder: Path, profile: Path | None = None) -> dict[str, Any]:
    """Run one case in `folder` (its database, configuration and logs); its figures as one dict."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = world.mix(case.subscribers, case.shares)
    port = world.free_port()  # notifier's, known to the fakes that push reports to it
    fakes = world.start_fakes(set(sizes), case.weather, folder, case.sms_provider,
                              f"http://127.0.0.1:{port}" if case.reports else None)
    try:
        return asyncio.run(_run(case, folder, profile, sizes, fakes, port))
    finally:
        for child in fakes.values():
            child.stop()


async def _run(case: Case, folder: Path, profile: Path | None, sizes: dict[str, int],
               fakes: dict[str, Child], port: int) -> dict[str, Any]:
    async with world.database(case.backend, folder) as db_url:
        worker: dict[str, float | int | str] = {"poll_interval": 0.1, **case.worker_settings}
        if case.workers:
            worker["enabled"] = "false"
        config = folder / "notifier.toml"
        text = world.config_text(db_url, port, fakes, worker, case.sms_provider, case.wechat_rate)
        await asyncio.to_thread(config.write_text, text, "utf-8")
        t = time.perf_counter()
        # The schema is the code's under test: created by the case's own notifier (a before/after pair of a
        # migration measures the migration); the subscribers are then added without migrating again.
        await asyncio.to_thread(procs.run, ["-m", "notifier.cli", "db", "upgrade", "--config", str(config)],
                                log=folder / "setup.log", code=case.code)
        key = await world.populate(world.load(config), sizes, fakes, case.probes > 0)
        setup_s = time.perf_counter() - t
        return await _measure(case, config, port, key, fakes, folder, profile, setup_s)


async def _measure(case: Case, config: Path, port: int, key: str, fakes: dict[str, Child], folder: Path,
                   profile: Path | None, setup_s: float) -> dict[str, Any]:
    api = f"http://127.0.0.1:{port}"
    children = _notifier(case, config, folder, profile)
    try:
        async with aiohttp.ClientSession() as http:
            await _healthy(http, api)
            sampler = Sampler([c.proc.pid for c in children],
                              server="postgres" if case.backend == "postgresql" else None,
                              others=[c.proc.pid for c in fakes.values()])
            sampler.begin()
            wal = await world.wal_position() if case.backend == "postgresql" else None
            publishing = asyncio.create_task(_publish(http, api, key, TOPIC, "severe", "重污染天气红色预警"))
            in_publish = None
            if case.probes:  # one red warning while the fan-out's publish is being stored (if it still is)
                await asyncio.wait({publishing}, timeout=INTO_PUBLISH_SECONDS)
                if not publishing.done():
                    in_publish = await _probe(http, api, key, fakes["probe"])
            alert_id, started, api_s = await publishing
            sending, fell_back = asyncio.Event(), list[float]()
            sending.set()
            falling_back = None
            if case.probes and "fallback" in fakes:
                falling_back = asyncio.create_task(_fallback_probes(
                    http, api, key, fakes, max(1, case.probes // 4), sending, fell_back))
            tallies, probes = await _wait(http, fakes, case.subscribers, api, key, case.probes)
            sending.clear()  # no fallback probe starts after the sends; the one under way may still arrive
            coverage, coverage_read_s = await _recorded(http, api, key, alert_id,
                                                        sum(t["accepted"] for t in tallies.values()))
            recorded_s = time.time() - started
            reached = reached_s = None
            if case.reports:
                db = world.load(config).sqlite_path()
                assert db is not None, "the cases with reports are SQLite's"
                reached, applied_at = await _reached(http, api, key, alert_id, coverage.get("accepted") or 0, db)
                reached_s = applied_at - started
            unfinished = await _stopped(falling_back)
            usage = sampler.end()
            if wal is not None:
                wal = await world.wal_position() - wal
    finally:
        for child in reversed(children):
            child.stop()
    accepted = sum(t["accepted"] for t in tallies.values())
    firsts = [t["first_at"] for t in tallies.values() if t["first_at"]]
    lasts = [t["last_at"] for t in tallies.values() if t["last_at"]]
    first, last = (min(firsts) - started if firsts else None), (max(lasts) - started if lasts else None)
    delivery_s = (last - api_s) if last is not None else None
    return {
        "case": case.name, "backend": case.backend, "workers": case.workers or 1,
        "channels": "+".join(f"{k}" for k in case.shares), "subscribers": case.subscribers,
        "latency_ms": case.weather.latency * 1000, "fail_rate": case.weather.fail_rate,
        "setup_s": setup_s, "api_latency_s": api_s, "first_s": first, "last_s": last, "recorded_s": recorded_s,
        "deliveries_per_s": accepted / delivery_s if delivery_s else None,
        "handed_over": accepted, "duplicates": sum(t["repeats"] or 0 for t in tallies.values()),
        "requests": sum(t.get("accepted_requests", 0) for t in tallies.values()),
        "targeted": coverage.get("targeted"), "accepted_rate": coverage.get("accepted_rate"),
        "coverage_rate": coverage.get("coverage_rate"),
        "peak_rss_mb": usage.peak_rss_mb, "peak_rss_sum_mb": usage.peak_rss_sum_mb, "cpu_s": usage.cpu_s,
        "db_cpu_s": sampler.server_cpu_s, "wal_bytes": wal, "fakes_cpu_s": sampler.others_cpu_s,
        "probe_p50_ms": statistics.median(p for _, p in probes) * 1000 if probes else None,
        "probe_p99_ms": _p99([p for _, p in probes]) * 1000 if probes else None,
        "probe_api_p50_ms": statistics.median(a for a, _ in probes) * 1000 if probes else None,
        "probes": len(probes),
        # Each probe's (publish answered, first recipient) in ms, in the order sent: where a tail comes from.
        "probes_ms": [[round(a * 1000, 1), round(p * 1000, 1)] for a, p in probes],
        "red_in_publish_ms": in_publish[1] * 1000 if in_publish else None,
        # Red warnings whose SMS failed by report during the fan-out: seconds to their next channel, the one not
        # arrived by the case's end (its reports all applied) aside.
        "fallback_p50_ms": statistics.median(fell_back) * 1000 if fell_back else None,
        "fallback_ms": [round(s * 1000, 1) for s in fell_back], "fallback_unfinished": unfinished,
        "coverage_read_ms": coverage_read_s * 1000,
        "reached": reached, "reached_s": reached_s,
        # From the first number handed over, when the first reports can come, to the last report applied.
        "reports_per_s": reached / (reached_s - first) if reached and reached_s and first is not None else None,
    }


async def _stopped(task: asyncio.Task[None] | None) -> int:
    """The fallback probes stopped at the case's end, the one under way given FALLBACK_GRACE seconds more: 1 when it
    was still waiting for its next channel (or the task failed: said on stderr), else 0."""
    if task is None:
        return 0
    await asyncio.wait({task}, timeout=FALLBACK_GRACE)
    if task.done():
        if task.exception() is not None:
            print(f"  ! fallback probes failed: {task.exception()!r}", file=sys.stderr, flush=True)
            return 1
        return 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return 1


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
