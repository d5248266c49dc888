"""A provider account's rate holds however many workers send: the token bucket lives in the database."""

from __future__ import annotations

import asyncio

import pytest

from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

RATE, SENDS = 5.0, 16


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_two_workers_share_one_rate(make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """Two worker processes' dispatchers on one database together stay within the account's requests per second."""
    settings = make_settings(channels={"webhook": {"allow_private_networks": True, "rate_per_second": RATE}})
    async with Service(settings) as first, Service(settings) as second:
        for i in range(SENDS):
            body = SubscriberIn.model_validate({"contacts": {"webhook": receiver.url_for(f"/r{i}")},
                                                "region": "140402", "subscriptions": [
                                                    {"topic": "env.heavy-pollution", "channels": ["webhook"]}]})
            await create_subscriber(first.store, body, allow_private_webhooks=True)
        await publish_alert(first.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
        # Small claims so that both workers get a share of the deliveries.
        first.dispatcher.settings = second.dispatcher.settings = settings.worker.model_copy(
            update={"claim_batch": 4})
        await asyncio.gather(first.dispatcher.drain(60), second.dispatcher.drain(60))
    times = [r.received_at for r in receiver.received]
    assert len(times) == SENDS
    assert _busiest_second(times) <= 2 * RATE  # one second's steady rate plus one burst of the bucket
    assert max(times) - min(times) >= (SENDS - RATE) / RATE * 0.8  # the rest was paced, not sent at once
