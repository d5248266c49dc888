"""The service's Prometheus metrics, on a registry each Service owns (several services in one process, as in
tests, must not clash on the global default registry). The dispatcher, the receipt handlers and the web layer
record into it; `/metrics` renders it."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from notifier.states import DeliveryStatus
from notifier.store import Store

# Latencies of an API call range from a cached read (~1 ms) to a publish fanning out to many subscribers (seconds).
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A provider call: a loopback fake answers in a millisecond, a congested SMS gateway in tens of seconds.
PROVIDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Deliveries by outcome, provider latency, retries, receipts, queue depth and age, HTTP latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter("notifier_deliveries_total", "Delivery outcomes written by the dispatcher",
                                  ["channel", "status"], registry=r)
        self.provider_latency = Histogram(
            "notifier_provider_request_duration_seconds", "Time a channel's send() took for one batch",
            ["channel"], buckets=PROVIDER_BUCKETS, registry=r)
        self.retries = Counter("notifier_retries_total", "Transient failures scheduled for another attempt",
                               ["channel"], registry=r)
        self.receipts = Counter("notifier_receipts_total", "Provider receipts by what they did",
                                ["channel", "outcome"], registry=r)
        self.queue_depth = Gauge("notifier_queue_depth",
                                 "Deliveries still to be sent, by status (read from the store at scrape time)",
                                 ["status"], registry=r)
        self.to_add = Gauge("notifier_fan_out_people_to_add",
                            "People targeted by large publishes whose deliveries are still being added, a slice at a "
                            "time after the publish answered (read from the store at scrape time)", registry=r)
        self.oldest_due = Gauge("notifier_oldest_due_delivery_age_seconds",
                                "How long the oldest due delivery has been waiting (0 when none is due)", registry=r)
        self.http_duration = Histogram(
            "notifier_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=r)

        self.limited = Counter("notifier_rate_limited_total",
                               "Requests refused by an abuse limit: verification codes and links by the limit that "
                               "tripped (verify-client, sms-code, email-link, verify-all), dashboard sign-ins "
                               "(admin-login-locked)", ["limit"], registry=r)

    def count_limited(self, limit: str) -> None:
        self.limited.labels(limit=limit).inc()

    def count_delivery(self, channel: str, status: str, n: int = 1) -> None:
        """`n` outcomes of one kind (the dispatcher counts a claim's outcomes, then adds each kind once)."""
        self.deliveries.labels(channel=channel, status=status).inc(n)
        if status == "queued":
            self.retries.labels(channel=channel).inc(n)

    def observe_send(self, channel: str, seconds: float) -> None:
        self.provider_latency.labels(channel=channel).observe(seconds)

    def count_receipts(self, channel: str, counts: dict[str, int]) -> None:
        for outcome, n in counts.items():
            if n:
                self.receipts.labels(channel=channel, outcome=outcome).inc(n)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_duration.labels(method=method, route=route, status=str(status)).observe(seconds)

    async def render(self, store: Store) -> bytes:
        """The Prometheus text exposition, with the queue gauges refreshed from the store."""
        stats = await store.queue_stats()
        for status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING):
            self.queue_depth.labels(status=status.value).set(stats.get(status.value, 0))
        self.to_add.set(sum((await store.people_to_come()).values()))
        due = await store.next_due()
        self.oldest_due.set(max(0.0, time.time() - due) if due is not None else 0.0)
        return generate_latest(self.registry)
