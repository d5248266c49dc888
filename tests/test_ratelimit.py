"""A provider account's rate holds however many workers send: the token bucket lives in the database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory
from tests.test_crash import running

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

RATE, SENDS = 5.0, 16


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def _worker_config(folder: Path, database_url: str, name: str) -> Path:
    """A worker's configuration: the shared database and webhook rate; its own public_url, so that the links in
    what it sends say which process sent it."""
    config = folder / f"{name}.toml"
    config.write_text(f'[server]\npublic_url = "http://{name}.test"\n[database]\nurl = "{database_url}"\n'
                      f'[channels.webhook]\nallow_private_networks = true\nrate_per_second = {RATE}\n'
                      '[worker]\nclaim_batch = 1\npoll_interval = 0.05\n', encoding="utf-8")
    return config


async def test_two_workers_share_one_rate(make_settings: SettingsFactory, database_url: str, tmp_path: Path,
                                          receiver: RunningReceiver) -> None:
    """Two `notifier worker` processes on one database, both sending, together stay within the account's requests
    per second."""
    settings = make_settings(channels={"webhook": {"allow_private_networks": True, "rate_per_second": RATE}})
    async with Service(settings) as publisher:  # migrates the database; its own worker stays off
        log = tmp_path / "workers.log"
        with running(["notifier.worker", "--config", str(_worker_config(tmp_path, database_url, "w1"))], log,
                     "WORKER READY"), \
             running(["notifier.worker", "--config", str(_worker_config(tmp_path, database_url, "w2"))], log,
                     "WORKER READY"):
            for i in range(SENDS):
                body = SubscriberIn.model_validate({"contacts": {"webhook": receiver.url_for(f"/r{i}")},
                                                    "region": "140402", "subscriptions": [
                                                        {"topic": "env.heavy-pollution", "channels": ["webhook"]}]})
                await create_subscriber(publisher.store, body, allow_private_webhooks=True)
            await publish_alert(publisher.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
            for _ in range(600):  # the workers pace 16 sends at 5/s: about 3 s; give up after 60
                if len(receiver.received) >= SENDS:
                    break
                await asyncio.sleep(0.1)
    times = [r.received_at for r in receiver.received]
    assert len(times) == SENDS
    senders = {json.loads(r.body)["manage_url"].split("/manage/")[0] for r in receiver.received}
    assert senders == {"http://w1.test", "http://w2.test"}  # both processes sent
    assert _busiest_second(times) <= 2 * RATE  # one second's steady rate plus one burst of the bucket
    assert max(times) - min(times) >= (SENDS - RATE) / RATE * 0.8  # the rest was paced, not sent at once
