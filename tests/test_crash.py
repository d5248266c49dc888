"""Crash and freeze of delivery workers, with real processes (SPEC "Durability", reliability.md §2 and §4).

The fake webhook receiver and the workers (`python -m notifier.worker`) run as subprocesses over loopback; the
database is a SQLite file in tmp_path that this test reads directly. Each test publishes one `all` alert to a few
thousand subscribers with one webhook each, then:

- SIGKILL: a worker is killed after about a third of the deliveries reached the receiver; a fresh worker
  reclaims the dead worker's leases once they expire and finishes. Every targeted subscriber ends with exactly
  one `delivered` delivery, the receiver saw every delivery id, and ids seen twice are only the sends that
  were in flight at the kill (at most claim_batch × batches in flight), re-sent with the same `webhook-id`.
- SIGSTOP: a frozen worker's leases expire, a second worker takes its deliveries over and finishes; then the
  first is thawed and stopped: its late results are refused by the lease fence, so not one delivery row
  changes any more.
"""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from notifier.config import Settings, load_settings
from notifier.coverage import alert_coverage
from notifier.dispatch import Dispatcher
from notifier.models import AlertIn, Coverage, Policy, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret

pytestmark = pytest.mark.slow

SUBSCRIBERS = 3000
CLAIM_BATCH = 100
LEASE_SECONDS = 2.0
BATCHES_IN_FLIGHT: int = inspect.signature(Dispatcher.run).parameters["batches_in_flight"].default
# A crash can re-send at most what was claimed and not yet recorded: every claim in flight.
MAX_IN_FLIGHT = CLAIM_BATCH * BATCHES_IN_FLIGHT
ROOT = Path(__file__).resolve().parents[1]
PENDING = ("queued", "deferred", "sending")

# ------------------------------------------------------------------ processes


def _child_env() -> dict[str, str]:
    """The environment of our children: no NOTIFIER_* overrides from the developer's shell, no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NOTIFIER_") and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=_child_env(), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL)


def _read_line(proc: subprocess.Popen[bytes], prefix: str, timeout: float = 20.0) -> str:
    """Wait for the first stdout line starting with `prefix` (without blocking past `timeout`)."""
    assert proc.stdout is not None
    fd, buffer, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
    raise AssertionError(f"{proc.args!r} printed no {prefix!r} line (exit code {proc.poll()}); output {buffer!r}")


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process if it still runs, reap it and close its pipe."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def running(args: list[str], log: Path, ready: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A child process, once it printed its `ready` line; killed and reaped on the way out, whatever happened."""
    proc = _spawn(args, log)
    try:
        yield proc, _read_line(proc, ready)
    finally:
        _end(proc)


def receiver_stats(url: str) -> tuple[int, dict[str, int]]:
    """(requests counted, {webhook-id: times seen}) from the receiver's `GET /_stats`."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/_stats")
        data = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return int(data["count"]), {str(k): int(v) for k, v in data["ids"].items()}


def script_receiver(url: str, path: str, statuses: list[int]) -> None:
    """Make the receiver answer the next requests to `path` with `statuses` (`POST /_script`)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("POST", "/_script", json.dumps({"path": path, "replies": [{"status": s} for s in statuses]}),
                     {"Content-Type": "application/json"})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def wait_for(condition: str, check: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting until {condition}")


# ------------------------------------------------------------------ database


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "crash.db"}"\n\n'
        f"[worker]\nlease_seconds = {LEASE_SECONDS}\npoll_interval = 0.05\nclaim_batch = {CLAIM_BATCH}\n\n"
        "[channels.webhook]\nallow_private_networks = true\n", encoding="utf-8")
    return path


def _settings(config: Path) -> Settings:
    return load_settings(config, {}, {"worker": {"enabled": False}})


async def _publish(config: Path, receiver_url: str, count: int) -> tuple[str, dict[str, str]]:
    """Create `count` subscribers with one webhook each, publish one `all` alert to them all; returns the alert id
    and each subscriber's webhook path."""
    now = time.time()
    paths = {uuid.uuid4().hex: f"/org/{i}" for i in range(count)}
    records = [SubscriberRecord(
        id=subscriber_id, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
        consent_source="test", consent_at=now, created_at=now, contacts={"webhook": receiver_url + path},
        subscriptions=[("env.heavy-pollution", ["webhook"], 0)]) for subscriber_id, path in paths.items()]
    async with Service(_settings(config)) as service:
        await service.store.bulk_create_subscribers(records, [{"webhook": generate_webhook_secret()}] * count)
        alert, _ = await publish_alert(service.store, AlertIn(
            topic="env.heavy-pollution", headline="重污染天气红色预警", body="crash test", severity=Severity.SEVERE,
            urgency=Urgency.IMMEDIATE, policy=Policy.ALL), None)
    assert alert.targeted == count
    return alert.id, paths


def query(config: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """A read-only look at the workers' database."""
    conn = sqlite3.connect(f"file:{config.parent / 'crash.db'}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def pending(config: Path, alert_id: str) -> int:
    marks = ",".join("?" * len(PENDING))
    return int(query(config, f"SELECT COUNT(*) FROM deliveries WHERE alert_id = ? AND status IN ({marks})",  # noqa: S608
                     alert_id, *PENDING)[0][0])


class Row(NamedTuple):
    subscriber_id: str
    status: str
    attempts: int
    delivered_at: float | None
    updated_at: float
    lease_owner: str | None


def rows(config: Path, alert_id: str) -> dict[str, Row]:
    """Every delivery of the alert, by id."""
    return {str(r[0]): Row(*r[1:]) for r in query(
        config, "SELECT id, subscriber_id, status, attempts, delivered_at, updated_at, lease_owner FROM deliveries "
        "WHERE alert_id = ?", alert_id)}


class Snapshot(NamedTuple):
    deliveries: dict[str, Row]
    targets: dict[str, tuple[float | None, float | None]]  # subscriber id → (accepted_at, reached_at)


def snapshot(config: Path, alert_id: str) -> Snapshot:
    """Everything a worker's write can change about an alert: its delivery rows and its targets' reach marks."""
    targets = {str(r[0]): (r[1], r[2]) for r in query(
        config, "SELECT subscriber_id, accepted_at, reached_at FROM alert_targets WHERE alert_id = ?", alert_id)}
    return Snapshot(rows(config, alert_id), targets)


def writable(config: Path) -> bool:
    """Whether nobody holds the SQLite write lock right now."""
    conn = sqlite3.connect(config.parent / "crash.db", timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


# ------------------------------------------------------------------ shared checks


def assert_all_delivered_once(config: Path, alert_id: str, subscribers: set[str], receiver_url: str) -> None:
    """The invariants after any crash: one delivered row per target, every id received, few duplicates."""
    final = rows(config, alert_id)
    assert sorted(r.subscriber_id for r in final.values()) == sorted(subscribers)  # one per subscriber
    assert {r.status for r in final.values()} == {"delivered"}
    count, ids = receiver_stats(receiver_url)
    assert count == sum(ids.values())  # every request carried a webhook-id
    assert set(ids) == set(final)  # every delivery received, under its own delivery id and no other
    duplicates = {i for i, n in ids.items() if n > 1}
    assert len(duplicates) <= MAX_IN_FLIGHT
    # A duplicate is a send in flight at the crash: its lease was reclaimed (+1 attempt) and it was sent again.
    assert all(final[i].attempts >= 2 for i in duplicates)
    assert max(ids.values()) <= 2


async def _coverage(config: Path, alert_id: str) -> Coverage:
    async with Service(_settings(config)) as service:
        return await alert_coverage(service.store, alert_id)


async def _coverage_check(config: Path, alert_id: str, targeted: int) -> None:
    coverage = await _coverage(config, alert_id)
    assert (coverage.targeted, coverage.reached, coverage.accepted) == (targeted, targeted, targeted)
    webhook = coverage.by_channel["webhook"]
    assert (webhook.delivered, webhook.pending, webhook.failed) == (targeted, 0, 0)


# ------------------------------------------------------------------ tests


def test_sigkill_mid_fanout_loses_nothing_and_resends_only_in_flight(tmp_path: Path) -> None:
    """A worker SIGKILLed mid-fan-out: a fresh worker finishes, each target gets one delivery, few resends."""
    log, config = tmp_path / "children.log", write_config(tmp_path)
    with running(["notifier.fakes.webhook_receiver", "--port", "0"], log, "READY") as (_, ready):
        url = ready.split()[1]
        alert_id, paths = asyncio.run(_publish(config, url, SUBSCRIBERS))
        with running(["notifier.worker", "--config", str(config)], log, "WORKER READY") as (first, _):
            wait_for("a third was delivered", lambda: receiver_stats(url)[0] >= SUBSCRIBERS // 3, timeout=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        at_kill = receiver_stats(url)[0]
        assert at_kill < SUBSCRIBERS, "the worker finished before it was killed: nothing was tested"
        with running(["notifier.worker", "--config", str(config)], log, "WORKER READY") as (second, _):
            wait_for("every delivery is final", lambda: pending(config, alert_id) == 0, timeout=40, interval=0.1)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0  # a graceful stop
        assert_all_delivered_once(config, alert_id, set(paths), url)
        asyncio.run(_coverage_check(config, alert_id, SUBSCRIBERS))


def _freeze_holding_leases(proc: subprocess.Popen[bytes], config: Path, alert_id: str) -> set[str]:
    """SIGSTOP the worker at a moment it holds leases but not SQLite's write lock; returns the leased ids.

    (A process frozen inside a write transaction would block every writer of the file: SQLite has one.)"""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        leased = {i for i, r in rows(config, alert_id).items() if r.status == "sending"}
        if leased and writable(config):
            return leased
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("could not freeze the worker while it held leases")


class Takeover(NamedTuple):
    alert_id: str
    paths: dict[str, str]  # subscriber id → its webhook path
    leased: set[str]  # deliveries the frozen worker held
    before: Snapshot  # when the other worker had finished
    after: Snapshot  # when the frozen worker, thawed, had stopped


def freeze_and_take_over(tmp_path: Path, url: str, *, refuse_resends: bool = False) -> Takeover:
    """Publish, freeze the first worker holding leases, let a second finish, thaw and stop the first.

    With `refuse_resends`, the receiver answers 400 to the second worker's send of each frozen delivery."""
    log, config = tmp_path / "children.log", tmp_path / "notifier.toml"
    alert_id, paths = asyncio.run(_publish(config, url, SUBSCRIBERS))
    with running(["notifier.worker", "--config", str(config)], log, "WORKER READY") as (frozen, _):
        wait_for("a quarter was delivered", lambda: receiver_stats(url)[0] >= SUBSCRIBERS // 4, timeout=30)
        leased = _freeze_holding_leases(frozen, config, alert_id)
        try:
            if refuse_resends:
                held = rows(config, alert_id)
                for delivery_id in leased:
                    script_receiver(url, paths[held[delivery_id].subscriber_id], [400])
            with running(["notifier.worker", "--config", str(config)], log, "WORKER READY") as (other, _):
                wait_for("the other worker finished", lambda: pending(config, alert_id) == 0, timeout=40,
                         interval=0.1)
                other.send_signal(signal.SIGTERM)
                assert other.wait(timeout=15) == 0
            before = snapshot(config, alert_id)
        finally:
            frozen.send_signal(signal.SIGCONT)
        # Thawed, the first worker finishes its batches (recording them) and stops gracefully: that is when
        # the fence must refuse its results.
        frozen.send_signal(signal.SIGTERM)
        assert frozen.wait(timeout=15) == 0
    return Takeover(alert_id, paths, leased, before, snapshot(config, alert_id))


def test_frozen_worker_late_results_are_refused_by_the_lease_fence(tmp_path: Path) -> None:
    """A SIGSTOPped worker's leases pass to another worker; thawed, its late writes change no delivery."""
    config = write_config(tmp_path)
    with running(["notifier.fakes.webhook_receiver", "--port", "0"], tmp_path / "children.log", "READY") as (_, ready):
        url = ready.split()[1]
        run = freeze_and_take_over(tmp_path, url)
        assert run.after == run.before  # not one status, attempt count, timestamp or reach mark changed
        # The leased deliveries were reclaimed (+1) and delivered by the other worker (+1); a write that got
        # past the fence would have made it 3.
        assert {run.after.deliveries[i].attempts for i in run.leased} == {2}
        assert_all_delivered_once(config, run.alert_id, set(run.paths), url)
        asyncio.run(_coverage_check(config, run.alert_id, SUBSCRIBERS))


def test_frozen_worker_late_success_does_not_count_as_reached(tmp_path: Path) -> None:
    """A late 'delivered' from a fenced-out worker leaves reach alone when its successor's send failed."""
    config = write_config(tmp_path)
    with running(["notifier.fakes.webhook_receiver", "--port", "0"], tmp_path / "children.log", "READY") as (_, ready):
        url = ready.split()[1]
        run = freeze_and_take_over(tmp_path, url, refuse_resends=True)
        assert {run.after.deliveries[i].status for i in run.leased} == {"failed"}
        assert run.after == run.before
        failed = len(run.leased)
        coverage = asyncio.run(_coverage(config, run.alert_id))
        assert coverage.by_channel["webhook"].delivered == SUBSCRIBERS - failed
        assert coverage.reached == SUBSCRIBERS - failed
