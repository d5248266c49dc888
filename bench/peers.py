"""The peers, each run in its own process by bench.run against a fresh fake receiver, on the same slice of webhook
recipients, printing one JSON line:

- `naive`: what a first attempt looks like — a SQLite queue (WAL, synchronous=FULL, as ours) read one row at a
  time, one POST at a time, one commit per delivery;
- `apprise`: Apprise (https://github.com/caronc/apprise) with one `json://` URL per recipient and one `notify()`
  call: its own fan-out (the optional `bench` extra installs it).

    python -m bench.peers naive --url http://127.0.0.1:PORT --recipients 2000 --db /tmp/naive.db
    python -m bench.peers apprise --url http://127.0.0.1:PORT --recipients 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import time
from pathlib import Path

import aiohttp

MB = 1024 * 1024
BODY = {"type": "alert.alert", "topic": "env.heavy-pollution", "headline": "重污染天气红色预警",
        "body": "长治市发布重污染天气红色预警，请减少户外活动。", "instruction": "老年人、儿童减少户外活动。"}


async def naive(url: str, recipients: int, db_path: Path) -> int:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, url TEXT NOT NULL, status TEXT NOT NULL, "
               "delivered_at REAL)")
    db.execute("CREATE INDEX deliveries_status ON deliveries (status, id)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO deliveries (url, status) VALUES (?, 'queued')",
                   ((f"{url}/org/{i}",) for i in range(recipients)))
    db.execute("COMMIT")
    body = json.dumps(BODY, ensure_ascii=False).encode()
    sent = 0
    async with aiohttp.ClientSession(trust_env=False) as http:
        while (row := db.execute("SELECT id, url FROM deliveries WHERE status = 'queued' ORDER BY id LIMIT 1")
               .fetchone()) is not None:
            headers = {"Content-Type": "application/json", "webhook-id": f"naive-{row[0]}"}
            async with http.post(row[1], data=body, headers=headers) as response:
                await response.read()
                status = "delivered" if response.status < 300 else "failed"
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE deliveries SET status = ?, delivered_at = ? WHERE id = ?", (status, time.time(),
                                                                                          row[0]))
            db.execute("COMMIT")
            sent += 1
    db.close()
    return sent


def apprise_fanout(url: str, recipients: int) -> int:
    import apprise  # the optional `bench` extra

    host = url.removeprefix("http://")
    notifier = apprise.Apprise()
    for i in range(recipients):
        notifier.add(f"json://{host}/org/{i}")
    notifier.notify(title=BODY["headline"], body=BODY["body"])
    return recipients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=("naive", "apprise"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    cpu0, t = time.process_time(), time.perf_counter()
    if args.peer == "naive":
        asyncio.run(naive(args.url, args.recipients, args.db))
    else:
        apprise_fanout(args.url, args.recipients)
    elapsed = time.perf_counter() - t
    print(json.dumps({"peer": args.peer, "seconds": elapsed, "cpu_s": time.process_time() - cpu0,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
