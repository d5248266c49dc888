"""The ceiling: a plain aiohttp POST loop against the fake receiver — no store, no signing, no rendering — run in
its own process by bench.run, printing one JSON line.

    python -m bench.bare --url http://127.0.0.1:PORT --requests 30000 [--concurrency 100] [--shape notifier]

`--shape notifier` sends notifier's own webhook requests instead — the benchmark topic's alert rendered by the
bundled webhook template, sent by the channel adapter, signed, each body with its recipient's two links, in the
dispatcher's routine chunks on a session like the service's, in a process settled like the service's (its collector,
`notifier.settle`) — with no store and no dispatcher: what the same requests cost without the durable pipeline
around them, so that a run tells the request's distance to the bare loop from the pipeline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import time
import uuid

import aiohttp

from bench.world import TOPIC
from channels.ssrf import GuardedResolver
from channels.webhook import WebhookChannel, WebhookConfig
from notifier.config import Settings
from notifier.dispatch import recipient_of, sending_shape
from notifier.links import MessageLinks
from notifier.rendering import load_samples, sample_alert
from notifier.service import catalogue_and_renderer, outbound_session
from notifier.settle import settle_long_running
from notifier.store.records import ClaimedDelivery
from subscriptions.contacts import generate_webhook_secret

MB = 1024 * 1024


async def bare(url: str, requests: int, concurrency: int) -> float:
    """Seconds for `requests` POSTs of a webhook-sized body, `concurrency` at a time on as many connections."""
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
        return time.perf_counter() - t


async def notifier_shaped(url: str, requests: int) -> float:
    """Seconds for `requests` of notifier's webhook requests, sent as the dispatcher sends a routine fan-out."""
    settings = Settings()  # the product's defaults: worker, bundled catalogue and templates
    channel_config = WebhookConfig(allow_private_networks=True)
    slots, chunk = sending_shape(settings.worker, channel_config.max_batch)
    # The benchmark's topic, rendered by the bundled webhook template from the templates' own sample alert.
    catalogue, renderer = catalogue_and_renderer(settings)
    topic = next(t for t in catalogue.topics if t.key == TOPIC)
    alert = sample_alert(topic, load_samples(renderer.templates_dir))
    message = renderer.render(alert, topic, "webhook", "zh-CN")
    links = MessageLinks(settings.server.base_url(), secrets.token_urlsafe(32), topic.key, issued=alert.created_at)
    secret = generate_webhook_secret()
    # The claimed deliveries as the claim's read hands them to the dispatcher (that read is the store's: not timed).
    claimed = [ClaimedDelivery(id=i, alert_id=alert.id, subscriber_id=i, channel="webhook", position=1, attempts=0,
                               address=f"{url}/org/{i}", secret=secret, locale="zh-CN", quiet_start=None,
                               quiet_end=None, created_at=alert.created_at.timestamp())
               for i in (uuid.uuid4().hex for _ in range(requests))]
    in_flight = asyncio.Semaphore(slots)
    settle_long_running()  # a process settled like the service's once it is ready (its collector, the GIL)
    async with outbound_session(GuardedResolver(allow_private=True), settings.worker.concurrency) as http:
        channel = WebhookChannel(channel_config, http)

        async def send(part: list[ClaimedDelivery]) -> None:
            recipients = [recipient_of(d, links) for d in part]  # as the dispatcher's chunk does
            async with in_flight:
                await channel.send(message, recipients)

        t = time.perf_counter()
        await asyncio.gather(*(send(claimed[i:i + chunk]) for i in range(0, requests, chunk)))
        return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--shape", choices=("bare", "notifier"), default="bare")
    args = parser.parse_args()
    cpu0 = time.process_time()
    elapsed = asyncio.run(bare(args.url, args.requests, args.concurrency) if args.shape == "bare"
                          else notifier_shaped(args.url, args.requests))
    print(json.dumps({"requests": args.requests, "seconds": elapsed, "per_s": args.requests / elapsed,
                      "cpu_s": time.process_time() - cpu0,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
