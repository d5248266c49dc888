"""How fast delivery reports are applied, the store alone: a copy of an SMS case's database (`python -m bench.run
--only sms --keep DIR`), every delivery back to `sent`, its reports kept as Aliyun pushes of 500 and applied 2,000 at
a time (`Store.apply_waiting`, as `notifier/report_applier.py` does after a fan-out's sends), nothing else running.
Prints µs a report, each statement's share, and with `--compare CHECKOUT` the same with that checkout's notifier,
turn about, in the same run.

    python -m bench.run --only sms --sms 300000 --keep /tmp/kept
    python -m bench.apply_reports --db /tmp/kept/case-00/bench.db --reports 200000 --compare /tmp/base --pairs 2

Each measurement runs in a process of its own, on a fresh copy, with the checkout's `notifier` first on its path.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import child_env

PUSH = 500  # reports a push, as Aliyun sends them
BATCH = 2_000  # reports a transaction (notifier.report_applier.BATCH)


def _prepared(source: Path, folder: Path, reports: int) -> tuple[Path, list[tuple[str, str]]]:
    """A copy of `source` with its first `reports` SMS deliveries back to `sent` and no report kept; each one's
    (provider id, number)."""
    db = folder / "apply.db"
    shutil.copy(source, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE deliveries SET status = 'sent', delivered_at = NULL, finished_at = NULL")
        conn.execute("UPDATE alert_targets SET reached_at = NULL")
        conn.execute("DELETE FROM receipts")
        conn.execute("DELETE FROM report_pushes")
        rows = conn.execute(
            "SELECT d.provider_message_id, c.address FROM deliveries d JOIN contacts c ON c.subscriber_id = "
            "d.subscriber_id AND c.channel = d.channel WHERE d.channel = 'sms' ORDER BY d.rowid LIMIT ?",
            (reports,)).fetchall()
    return db, rows


async def _measure(db: Path, rows: list[tuple[str, str]]) -> dict[str, Any]:
    """Keep the reports, then apply them all, timing each statement of the writer's (by its first words)."""
    from channels.base import Receipt
    from notifier.config import Settings
    from notifier.store import open_store, sqlite_db

    spent: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    timed = sqlite_db._ThreadDb

    def timing(method: Any) -> Any:
        async def run(self: Any, sql: str, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(self, sql, *args)
            finally:
                entry = spent[" ".join(sql.split())[:60]]
                entry[0] += 1
                entry[1] += time.perf_counter() - started
        return run

    timed.fetch, timed.execute = timing(timed.fetch), timing(timed.execute)  # type: ignore[method-assign]
    store = await open_store(Settings.model_validate({"database": {"url": f"sqlite:///{db}"}}))
    try:
        store.number_key = b"k" * 32
        at = time.time()
        for start in range(0, len(rows), PUSH):
            await store.store_reports("sms", [
                Receipt(pmid, True, f"{pmid}:2026-12-07 10:00:00:DELIVERED", address=number, occurred_at=at)
                for pmid, number in rows[start:start + PUSH]], time.time())
        spent.clear()
        started = time.perf_counter()
        while (await store.apply_waiting({}, BATCH)).more:
            pass
        elapsed = time.perf_counter() - started
        applied = await store.backend.reader.fetchval("SELECT COUNT(*) FROM receipts WHERE outcome = 'applied'")
    finally:
        await store.close()
    return {"reports": len(rows), "applied": applied, "seconds": elapsed, "us_a_report": elapsed / len(rows) * 1e6,
            "statements": {sql: [count, seconds / len(rows) * 1e6] for sql, (count, seconds) in spent.items()}}


def _run(checkout: Path, source: Path, reports: int) -> dict[str, Any]:
    """One measurement with `checkout`'s notifier, in a process of its own."""
    done = subprocess.run([sys.executable, __file__, "--measure", "--db", str(source), "--reports", str(reports)],
                          env=child_env(checkout), cwd=checkout, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measurement with {checkout} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print(label: str, result: dict[str, Any]) -> None:
    print(f"{label}: {result['reports']:,} reports ({result['applied']:,} applied) in {result['seconds']:.2f} s, "
          f"{result['us_a_report']:.1f} µs a report")
    for sql, (count, us) in sorted(result["statements"].items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"    {us:5.1f} µs  {count:5d}×  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="bench.db of a kept SMS case (bench.run --keep)")
    parser.add_argument("--reports", type=int, default=200_000, help="reports applied (at most the case's SMS)")
    parser.add_argument("--compare", type=Path, help="a checkout (git worktree) to measure turn about with ours")
    parser.add_argument("--pairs", type=int, default=1, help="with --compare: measurements of each")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        with tempfile.TemporaryDirectory() as folder:
            db, rows = _prepared(args.db, Path(folder), args.reports)
            print(json.dumps(asyncio.run(_measure(db, rows))))
        return
    ours = Path(__file__).resolve().parent.parent
    runs: dict[str, list[float]] = {"ours": [], "before": []}
    for pair in range(args.pairs if args.compare else 1):
        order = [("ours", ours), ("before", args.compare)] if args.compare else [("ours", ours)]
        for label, checkout in order if pair % 2 == 0 else reversed(order):
            result = _run(checkout, args.db, args.reports)
            _print(f"{label} #{pair + 1}", result)
            runs[label].append(result["us_a_report"])
    if args.compare:
        before, after = statistics.median(runs["before"]), statistics.median(runs["ours"])
        print(f"median µs a report: before {before:.1f}, ours {after:.1f} ({after / before - 1:+.0%})")


if __name__ == "__main__":
    main()
