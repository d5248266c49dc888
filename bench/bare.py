"""The ceiling: a plain aiohttp POST loop against the fake receiver — no store, no signing, no rendering — run in
its own process by bench.run, printing one JSON line.

    python -m bench.bare --url http://127.0.0.1:PORT --requests 30000 [--concurrency 100] [--shape notifier]

`--shape notifier` sends notifier's own webhook requests instead — the channel adapter's, signed, each body with
its recipient's two links, in the dispatcher's routine chunks on a session like the service's — with no store and
no dispatcher: what the same requests cost without the durable pipeline around them, so that a run tells the
request's distance to the bare loop from the pipeline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import time
import uuid
from datetime import UTC, datetime

import aiohttp

from channels.base import Message, Recipient
from channels.ssrf import GuardedResolver
from channels.webhook import WebhookChannel, WebhookConfig
from notifier.config import WorkerSettings
from notifier.dispatch import sending_shape
from notifier.links import MessageLinks
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
    settings = WorkerSettings()
    channel_config = WebhookConfig(allow_private_networks=True)
    slots, chunk = sending_shape(settings, channel_config.max_batch)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private=True), limit=settings.concurrency)
    issued = datetime.now(UTC)
    # The benchmark's alert (bench.cases), as the adapter gets it: its words, its rendered text, its payload.
    headline, body = "重污染天气红色预警", "长治市发布重污染天气红色预警，请减少户外活动。"
    instruction, page = "老年人、儿童减少户外活动。", "https://notify.example.gov.cn/d/1"
    message = Message(alert_id=uuid.uuid4().hex, topic="env.heavy-pollution", msg_type="alert", severity="severe",
                      urgency="immediate", level=None, locale="zh-CN", headline=headline,
                      text=f"【长治市生态环境局】{headline} {body} {instruction} {page}", url=page,
                      payload={"id": uuid.uuid4().hex, "topic": "env.heavy-pollution", "msg_type": "alert",
                               "headline": headline, "body": body, "instruction": instruction,
                               "severity": "severe", "url": page},
                      sent_at=issued.timestamp())
    links = MessageLinks("https://notify.example.gov.cn", secrets.token_urlsafe(32), message.topic, issued=issued)
    secret = generate_webhook_secret()
    ids = [uuid.uuid4().hex for _ in range(requests)]
    in_flight = asyncio.Semaphore(slots)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        channel = WebhookChannel(channel_config, http)

        async def send(part: list[str]) -> None:
            async with in_flight:
                recipients = [Recipient(delivery_id=i, subscriber_id=i, address=f"{url}/org/{i}", secret=secret,
                                        manage_url=links.manage_url(i), unsubscribe_url=links.unsubscribe_url(i))
                              for i in part]
                await channel.send(message, recipients)

        t = time.perf_counter()
        await asyncio.gather(*(send(ids[i:i + chunk]) for i in range(0, requests, chunk)))
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
