"""What operators scrape: delivery outcomes, provider latency, retries and the queue, from the service registry."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def _scrape(service: Service) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = (await service.metrics.render(service.store)).decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


async def test_outcomes_latency_and_retries_are_counted(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """A webhook that fails once shows one retry, one delivery and a provider latency observation per attempt."""
    receiver.script("/m", [503])
    await make_subscriber(contacts={"webhook": receiver.url_for("/m")})
    await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    await settle(service)
    samples = await _scrape(service)
    outcomes = {(s["channel"], s["status"]): v for s, v in samples["notifier_deliveries_total"]}
    assert outcomes[("webhook", "queued")] == 1 and outcomes[("webhook", "delivered")] == 1
    assert [v for s, v in samples["notifier_retries_total"] if s["channel"] == "webhook"] == [1]
    counts = [v for s, v in samples["notifier_provider_request_duration_seconds_count"] if s["channel"] == "webhook"]
    assert counts == [2]


async def test_queue_depth_and_oldest_due_age_come_from_the_store(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Before any worker runs, the queued delivery shows in the queue depth and the oldest-due age is known."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/q")})
    await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    samples = await _scrape(service)
    depth = {s["status"]: v for s, v in samples["notifier_queue_depth"]}
    assert depth["queued"] == 1
    [(_, age)] = samples["notifier_oldest_due_delivery_age_seconds"]
    assert age >= 0
