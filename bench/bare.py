"""The ceiling: a plain aiohttp POST loop against the fake receiver — no store, no signing, no rendering — run in
its own process by bench.run, printing one JSON line.

    python -m bench.bare --url http://127.0.0.1:PORT --requests 30000 [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import aiohttp

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    cpu0 = time.process_time()
    elapsed = asyncio.run(bare(args.url, args.requests, args.concurrency))
    print(json.dumps({"requests": args.requests, "seconds": elapsed, "per_s": args.requests / elapsed,
                      "cpu_s": time.process_time() - cpu0,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
