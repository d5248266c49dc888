"""Scale-out crash on PostgreSQL (issue 8 §4): three `notifier worker` processes share one fan-out of tens of
thousands; one is SIGKILLed mid-way. The other two reclaim its leases and finish: every target ends with exactly
one delivered row, the gateway's count reconciles with the delivery rows, and the only duplicates are the killed
worker's sends in flight, re-sent with the same delivery id."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from notifier.config import load_settings
from notifier.models import AlertIn, Policy, Severity, Urgency
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from subscriptions.contacts import generate_webhook_secret
from tests.test_crash import CLAIM_BATCH, MAX_IN_FLIGHT, receiver_stats, running, wait_for

pytestmark = pytest.mark.slow

SUBSCRIBERS = 30_000
WORKERS = 3
# Long enough that a live worker on a loaded machine keeps its leases (its heartbeat renews them every third of
# this), so that the only resends are the killed worker's; short enough that its leases run out soon.
LEASE_SECONDS = 6.0


def _query(url: str, sql: str, *params: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return list(await conn.fetch(sql, *params))
        finally:
            await conn.close()

    return asyncio.run(run())


def _write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n'
                    f"[worker]\nlease_seconds = {LEASE_SECONDS}\npoll_interval = 0.05\nclaim_batch = {CLAIM_BATCH}\n\n"
                    "[channels.webhook]\nallow_private_networks = true\n", encoding="utf-8")
    return path


async def _publish(config: Path, receiver_url: str) -> str:
    now = time.time()
    records = [SubscriberRecord(
        id=uuid.uuid4().hex, region="140402", locale="zh-CN", quiet_start=None, quiet_end=None, status="active",
        consent_source="test", consent_at=now, created_at=now, contacts={"webhook": f"{receiver_url}/org/{i}"},
        subscriptions=[("env.heavy-pollution", ["webhook"], 0)]) for i in range(SUBSCRIBERS)]
    async with Service(load_settings(config, {}, {"worker": {"enabled": False}})) as service:
        for start in range(0, SUBSCRIBERS, 5000):
            part = records[start:start + 5000]
            await service.store.bulk_create_subscribers(part, [{"webhook": generate_webhook_secret()} for _ in part])
        alert, _ = await publish_alert(service.store, AlertIn(
            topic="env.heavy-pollution", headline="重污染天气红色预警", severity=Severity.SEVERE,
            urgency=Urgency.IMMEDIATE, policy=Policy.ALL), None)
    assert alert.targeted == SUBSCRIBERS
    return alert.id


def _pending(url: str, alert_id: str) -> int:
    return int(_query(url, "SELECT COUNT(*) FROM deliveries WHERE alert_id = $1 "
                           "AND status IN ('queued', 'deferred', 'sending')", alert_id)[0][0])


def test_three_workers_one_killed_every_delivery_ends_exactly_once(tmp_path: Path, pg_schema_url: str) -> None:
    """Kill one of three PostgreSQL workers at a third of a 30,000 fan-out: nothing lost, nothing sent twice but
    what the killed worker had in flight."""
    log, config = tmp_path / "children.log", _write_config(tmp_path, pg_schema_url)
    with running(["notifier.fakes.webhook_receiver", "--port", "0"], log, "READY") as (_, ready):
        url = ready.split()[1]
        alert_id = asyncio.run(_publish(config, url))
        with ExitStack() as stack:
            workers = [stack.enter_context(running(["notifier.worker", "--config", str(config)], log,
                                                   "WORKER READY"))[0] for _ in range(WORKERS)]
            wait_for("a third was delivered", lambda: receiver_stats(url)[0] >= SUBSCRIBERS // 3, timeout=60)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)
            assert receiver_stats(url)[0] < SUBSCRIBERS, "finished before the kill: nothing was tested"
            wait_for("every delivery is final", lambda: _pending(pg_schema_url, alert_id) == 0, timeout=120,
                     interval=0.2)
            for worker in workers[1:]:
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=15) == 0  # a graceful stop
        rows = {r["id"]: (r["subscriber_id"], r["status"], r["attempts"]) for r in _query(
            pg_schema_url, "SELECT id, subscriber_id, status, attempts FROM deliveries WHERE alert_id = $1",
            alert_id)}
        count, ids = receiver_stats(url)
    assert len({subscriber for subscriber, _, _ in rows.values()}) == SUBSCRIBERS == len(rows)
    assert {status for _, status, _ in rows.values()} == {"delivered"}
    assert count == sum(ids.values()) and set(ids) == set(rows)  # the gateway's count reconciles with the rows
    duplicates = {i for i, n in ids.items() if n > 1}
    assert len(duplicates) <= MAX_IN_FLIGHT and max(ids.values()) <= 2
    assert all(rows[i][2] >= 2 for i in duplicates)  # each one a reclaimed lease, re-sent
