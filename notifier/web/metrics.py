"""Prometheus metrics of one application, on a registry the application owns (several apps in one process, as in
tests, must not clash on the global default registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from notifier.models import PENDING_STATUSES
from notifier.store.protocol import Store

# Latencies of an API call range from a cached read (~1 ms) to a publish fanning out to many subscribers (seconds).
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WebMetrics:
    """The service's metrics: deliveries by outcome, queue depth, HTTP latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "notifier_deliveries_total", "Delivery outcomes written by the dispatcher",
            ["channel", "status"], registry=self.registry)
        self.queue_depth = Gauge(
            "notifier_queue_depth", "Deliveries still to be sent, by status (read from the store at scrape time)",
            ["status"], registry=self.registry)
        self.http_duration = Histogram(
            "notifier_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=self.registry)

    def count_delivery(self, channel: str, status: str) -> None:
        """The dispatcher's `on_result` hook."""
        self.deliveries.labels(channel=channel, status=status).inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_duration.labels(method=method, route=route, status=str(status)).observe(seconds)

    async def render(self, store: Store) -> bytes:
        """The Prometheus text exposition, with the queue gauge refreshed from the store."""
        stats = await store.queue_stats()
        for status in PENDING_STATUSES:
            self.queue_depth.labels(status=status.value).set(stats.get(status.value, 0))
        return generate_latest(self.registry)
