"""/metrics: Prometheus text with delivery outcomes, queue depth and HTTP latency by route template."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from notifier.fakes.webhook_receiver import RunningReceiver
from tests.web.conftest import Api, ApiFactory

pytestmark = pytest.mark.both_backends

COUNT = "notifier_http_request_duration_seconds_count"


async def _samples(api: Api) -> list[Sample]:
    response = await api.client.get("/metrics")
    assert response.status == 200
    return [s for family in text_string_to_metric_families(await response.text()) for s in family.samples]


async def test_metrics_parse_and_hold_the_http_histogram(api: Api) -> None:
    """/metrics parses as Prometheus text and contains notifier_http_request_duration_seconds."""
    await api.client.get("/healthz")
    names = {s.name for s in await _samples(api)}
    assert "notifier_http_request_duration_seconds_bucket" in names
    assert "notifier_http_request_duration_seconds_count" in names


async def test_http_route_label_is_the_path_template(api: Api) -> None:
    """A request for one alert is counted under route /v1/alerts/{id}, not under its id."""
    _, accepted = await api.publish()
    await api.client.get(f"/v1/alerts/{accepted['id']}", headers=api.auth())
    routes = {s.labels["route"] for s in await _samples(api) if s.name == COUNT}
    assert "/v1/alerts/{id}" in routes
    assert not any(accepted["id"] in route for route in routes)


async def test_http_status_label_records_refusals(api: Api) -> None:
    """A refused call is counted with its status (401)."""
    await api.client.get("/v1/topics")
    samples = await _samples(api)
    assert any(s.name == COUNT and s.labels == {
        "method": "GET", "route": "/v1/topics", "status": "401"} for s in samples)


async def test_unknown_paths_share_one_route_label(api: Api) -> None:
    """Requests for paths that do not exist are counted under one label, whatever the path."""
    await api.client.get("/wp-login.php")
    await api.client.get("/.env")
    routes = {s.labels["route"] for s in await _samples(api) if s.name == COUNT}
    assert "unmatched" in routes and "/.env" not in routes


async def test_queue_depth_counts_queued_deliveries(api: Api) -> None:
    """After a publish with the worker off, the queue depth gauge shows the queued delivery."""
    await api.subscriber(subscriptions=[{"topic": "env.heavy-pollution", "channels": ["sms"]}])
    await api.publish()
    depth = {s.labels["status"]: s.value for s in await _samples(api) if s.name == "notifier_queue_depth"}
    assert depth["queued"] == 1


async def test_several_apps_in_one_process_keep_their_own_metrics(make_api: ApiFactory) -> None:
    """Two apps in one process each count only their own requests."""
    first, second = await make_api("one"), await make_api("two")
    await first.client.get("/healthz")
    counts = [s for s in await _samples(second)
              if s.name == COUNT and s.labels["route"] == "/healthz"]
    assert counts == []


async def test_delivery_outcomes_are_counted(make_api: ApiFactory, receiver: RunningReceiver) -> None:
    """With the worker running, a webhook delivery to the fake receiver shows in notifier_deliveries_total."""
    api = await make_api("worker", worker={"enabled": True, "poll_interval": 0.05})
    await api.subscriber(contacts={"webhook": receiver.url_for("/hook")},
                         subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    await api.publish()
    for _ in range(200):
        delivered = [s for s in await _samples(api) if s.name == "notifier_deliveries_total"
                     and s.labels == {"channel": "webhook", "status": "delivered"}]
        if delivered:
            break
        await asyncio.sleep(0.05)
    assert delivered and delivered[0].value == 1
    assert receiver.count == 1
