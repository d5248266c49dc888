"""The benchmark: notifier against the bundled fake gateways, every one in its own process, in one run.

    .venv/bin/python -m bench.run                 # every case at its default size (~11 minutes on 2 cores)
    .venv/bin/python -m bench.run --smoke         # tiny sizes: checks the harness and every case (~1 minute)
    .venv/bin/python -m bench.run --only webhook,sms --webhook 100000 --sms 1000000

Cases (see bench/README.md): the bare aiohttp ceiling (before and after the rest); notifier on SQLite: webhook
fan-out (with small red warnings probed while it runs), WeChat template messages, SMS through Aliyun's and
Tencent's batch APIs, mixed channels under 0/50 ms gateway latency and 0/5 % transient failures; notifier on
PostgreSQL with 1, 2, 4 `notifier worker` processes; the peers (a naive sequential sender, Apprise `json://`) on a
slice. Prints a table and a JSON line per case, and writes the table with the machine described into
bench/RESULTS.md (between its markers).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench import slow_fsync, world
from bench.cases import Case, run_case
from bench.procs import Child, start
from bench.world import Weather

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MIXED = {"webhook": 0.5, "sms": 0.25, "wechat": 0.25}
WEATHERS = [Weather(0, 0), Weather(0, 0.05), Weather(0.05, 0), Weather(0.05, 0.05)]
ALL = ("bare", "webhook", "wechat", "sms", "reports", "tencent", "mixed", "pg", "peers")
# Cases only asked for by name: `apart`, the SMS case with reports and its worker in a process of its own.
EXTRA = ("apart",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes (a test runs this)")
    p.add_argument("--only", default=",".join(ALL),
                   help=f"comma-separated subset of {','.join(ALL)} (default: all), or {','.join(EXTRA)}")
    p.add_argument("--bare", type=int, default=30_000, help="POSTs of the bare loop (default 30,000)")
    p.add_argument("--webhook", type=int, default=100_000, help="webhook subscribers (default 100,000)")
    p.add_argument("--probes", type=int, default=20, help="small red warnings during the webhook fan-out")
    p.add_argument("--wechat", type=int, default=100_000, help="WeChat subscribers (default 100,000)")
    p.add_argument("--sms", type=int, default=100_000, help="SMS subscribers (default 100,000; try 1000000)")
    p.add_argument("--mixed", type=int, default=100_000, help="subscribers of each mixed-channel case")
    p.add_argument("--pg", type=int, default=100_000, help="webhook subscribers of the PostgreSQL cases")
    p.add_argument("--pg-workers", default="1,2,4", help="worker process counts on PostgreSQL")
    p.add_argument("--pg-latency", type=float, default=0.0, metavar="MS",
                   help="the PostgreSQL cases' gateway answers MS late (workers bound by the gateway, not the "
                        "cores: the scale-out curve where it is not the machine's; default 0)")
    p.add_argument("--peers", type=int, default=2_000, help="recipients of the peers' slice (and ours)")
    p.add_argument("--claim-batch", type=int, help="[worker] claim_batch for every case (default: the product's)")
    p.add_argument("--concurrency", type=int, help="[worker] concurrency for every case (default: the product's)")
    p.add_argument("--compare", type=Path, metavar="CHECKOUT",
                   help="run every notifier case twice (or --pairs times twice): with the notifier of CHECKOUT "
                        "(e.g. a `git worktree` of main), each case on its own schema, and with ours — before and "
                        "after in the same run")
    p.add_argument("--pairs", type=int, default=1, metavar="N",
                   help="with --compare: N pairs of every case, the order turned round in every second pair (the "
                        "second case of a pair tends to be the slower one on a shared machine)")
    p.add_argument("--profile", type=Path, help="write pyinstrument profiles of the delivering process here")
    p.add_argument("--results", type=Path, default=RESULTS, help="the Markdown file to write (default %(default)s)")
    p.add_argument("--keep", type=Path, help="keep each case's folder (databases, logs) under this directory")
    p.add_argument("--fsync-delay-ms", type=float, metavar="MS",
                   help="every fsync of the processes it starts MS longer (a slower disk: bench/slow_fsync.py)")
    args = p.parse_args(argv)
    if args.pairs < 1:
        p.error("--pairs must be 1 or more")
    if args.pg_latency < 0:
        p.error("--pg-latency is a delay in milliseconds: 0 or more")
    if args.pairs > 1 and args.compare is None:
        p.error("--pairs compares two checkouts: give the other one with --compare CHECKOUT")
    if args.smoke:
        args.bare, args.webhook, args.probes, args.wechat, args.sms, args.mixed, args.pg, args.peers = (
            500, 300, 3, 300, 2_500, 300, 300, 100)
        args.pg_workers = "1,2"
    return args


# ------------------------------------------------------------------ the cases


def notifier_cases(args: argparse.Namespace, only: set[str]) -> Iterator[Case]:
    for case in _cases(args, only):
        if not args.compare:
            yield case
            continue
        for n in range(1, args.pairs + 1):
            mark = "" if n == 1 else f" #{n}"
            pair = [dataclasses.replace(case, name=f"{case.name} [before{mark}]", code=args.compare.resolve()),
                    dataclasses.replace(case, name=f"{case.name} [after{mark}]")]
            yield from pair if n % 2 else reversed(pair)  # before, after; then after, before; …


def _cases(args: argparse.Namespace, only: set[str]) -> Iterator[Case]:
    worker = {k: v for k, v in (("claim_batch", args.claim_batch), ("concurrency", args.concurrency)) if v}
    if "webhook" in only:
        yield Case("sqlite webhook", {"webhook": 1.0}, args.webhook, probes=args.probes, worker_settings=worker)
    if "wechat" in only:  # one request a recipient like a webhook's, at the benchmark account's rate (world.py)
        yield Case("sqlite wechat", {"wechat": 1.0}, args.wechat, worker_settings=worker)
    if "reports" in only:  # the same, with WeChat's TEMPLATESENDJOBFINISH events pushed back, one a message — at
        # a fifth of the rate: the fake, one Python process pushing a signed request an event, cannot push 4,000 a
        # second on these two cores (at the full rate it sat at 100 % of a core and half its events timed out)
        yield Case("sqlite wechat + reports", {"wechat": 1.0}, args.wechat // 5, probes=args.probes,
                   worker_settings=worker, reports=True, wechat_rate=1000)
    if "sms" in only:
        yield Case("sqlite sms (aliyun)", {"sms": 1.0}, args.sms, probes=args.probes, worker_settings=worker)
    if "reports" in only:  # the same, with Aliyun's delivery reports pushed back while the fan-out runs
        yield Case("sqlite sms (aliyun) + reports", {"sms": 1.0}, args.sms, probes=args.probes,
                   worker_settings=worker, reports=True)
    if "apart" in only:  # the same, `notifier serve` (the API, the callbacks, the applier) beside a `notifier worker`
        yield Case("sqlite sms (aliyun) + reports, worker apart", {"sms": 1.0}, args.sms, probes=args.probes,
                   worker_settings=worker, reports=True, workers=1)
    if "tencent" in only:  # the same SMS fan-out through Tencent's SendSms, 200 numbers a request
        yield Case("sqlite sms (tencent)", {"sms": 1.0}, args.sms, worker_settings=worker, sms_provider="tencent")
    if "mixed" in only:
        weathers = [WEATHERS[0], WEATHERS[3]] if args.smoke else WEATHERS
        for w in weathers:
            yield Case(f"sqlite mixed {w.latency * 1000:.0f}ms {w.fail_rate:.0%}", MIXED, args.mixed, weather=w,
                       worker_settings=worker)
    if "pg" in only:
        for n in (int(x) for x in args.pg_workers.split(",")):
            # Red warnings into it too: published through the API, sent by the worker processes.
            late = f" {args.pg_latency:.0f}ms" if args.pg_latency else ""
            yield Case(f"postgresql webhook ×{n}{late}", {"webhook": 1.0}, args.pg, backend="postgresql", workers=n,
                       probes=args.probes, worker_settings=worker, weather=Weather(latency=args.pg_latency / 1000))


def bare(requests: int, logs: Path, label: str, shape: str = "bare") -> dict[str, Any]:
    receiver = start("receiver", ["-m", "notifier.fakes.webhook_receiver", "--count-repeats"],
                     log=logs / "bare-receiver.log")
    try:
        out = subprocess.run([sys.executable, "-m", "bench.bare", "--url", receiver.url, "--requests",
                              str(requests), "--shape", shape], capture_output=True, text=True, check=True,
                             cwd=HERE.parent)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        tally = _tally(receiver)
    finally:
        receiver.stop()
    name = f"bare aiohttp ceiling ({label})" if shape == "bare" else f"bare: {label}"
    return {"case": name, "subscribers": requests,
            "deliveries_per_s": figures["per_s"], "last_s": figures["seconds"], "handed_over": tally["accepted"],
            "duplicates": tally["repeats"], "peak_rss_mb": figures["peak_rss_mb"], "cpu_s": figures["cpu_s"],
            "requests": tally["accepted_requests"]}


def _tally(receiver: Child) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(receiver.url + "/_tally") as response:
            return dict(await response.json())

    return asyncio.run(read())


def peer(name: str, recipients: int, folder: Path) -> dict[str, Any] | None:
    if name == "apprise":
        try:
            version("apprise")
        except Exception:
            print("  (apprise not installed: pip install -e '.[bench]'; peer skipped)", file=sys.stderr)
            return None
    folder.mkdir(parents=True, exist_ok=True)
    receiver = start("receiver", ["-m", "notifier.fakes.webhook_receiver", "--count-repeats"],
                     log=folder / "receiver.log")
    try:
        started = time.time()
        out = subprocess.run([sys.executable, "-m", "bench.peers", name, "--url", receiver.url, "--recipients",
                              str(recipients), "--db", str(folder / "naive.db")],
                             capture_output=True, text=True, check=True, cwd=HERE.parent)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        tally = _tally(receiver)
    finally:
        receiver.stop()
    return {"case": f"peer: {name}", "subscribers": recipients, "handed_over": tally["accepted"],
            "duplicates": tally["repeats"], "deliveries_per_s": tally["accepted"] / figures["seconds"],
            "first_s": (tally["first_at"] - started) if tally["first_at"] else None,
            "last_s": (tally["last_at"] - started) if tally["last_at"] else None,
            "accepted_rate": tally["accepted"] / recipients, "peak_rss_mb": figures["peak_rss_mb"],
            "cpu_s": figures["cpu_s"], "requests": tally["accepted_requests"]}


# ------------------------------------------------------------------ the report


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cores": os.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30), "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "aiohttp": version("aiohttp"), "sqlite": sqlite3.sqlite_version,
            "load_start": os.getloadavg()}


def _f(value: Any, fmt: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{unit}"


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("case", lambda r: r["case"]),
    ("n", lambda r: f"{r['subscribers']:,}"),
    ("deliveries/s", lambda r: _f(r.get("deliveries_per_s"), ",.0f")),
    ("× ceiling", lambda r: _f(r.get("ratio_ceiling"), ".2f")),
    ("API", lambda r: _f(r.get("api_latency_s"), ".2f", " s")),
    ("→ first", lambda r: _f(r.get("first_s"), ".3f", " s")),
    ("→ last", lambda r: _f(r.get("last_s"), ".1f", " s")),
    ("→ recorded", lambda r: _f(r.get("recorded_s"), ".1f", " s")),
    ("→ reached", lambda r: _f(r.get("reached_s"), ".1f", " s")),
    ("reports/s", lambda r: _f(r.get("reports_per_s"), ",.0f")),
    ("accepted", lambda r: _f(r.get("accepted_rate"), ".2%")),
    ("dup", lambda r: _f(r.get("duplicates"), "d")),
    ("requests", lambda r: _f(r.get("requests"), ",d")),
    ("RSS MB", lambda r: _f(r.get("peak_rss_mb"), ".0f")),
    ("CPU s", lambda r: _f(r.get("cpu_s"), ".1f")),
    ("CPU µs/item", lambda r: _f(r["cpu_s"] / r["handed_over"] * 1e6 if r.get("cpu_s") and r.get("handed_over")
                                 else None, ",.0f")),
    ("DB CPU µs/item", lambda r: _f(r["db_cpu_s"] / r["handed_over"] * 1e6 if r.get("db_cpu_s") and
                                    r.get("handed_over") else None, ",.0f")),
    ("fakes CPU s", lambda r: _f(r.get("fakes_cpu_s"), ".1f")),
    ("WAL B/item", lambda r: _f(r["wal_bytes"] / r["handed_over"] if r.get("wal_bytes") and r.get("handed_over")
                                else None, ",.0f")),
    ("probe p99", lambda r: _f(r.get("probe_p99_ms"), ".0f", " ms")),
    ("red in publish", lambda r: _f(r.get("red_in_publish_ms"), ",.0f", " ms")),
    ("fallback p50", lambda r: _f(r.get("fallback_p50_ms"), ",.0f", " ms")),
    ("coverage read", lambda r: _f(r.get("coverage_read_ms"), ",.0f", " ms")),
]


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[name for name, _ in COLUMNS]] + [[show(r) for _, show in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
                     for row in cells)


def markdown(rows: list[dict[str, Any]], where: dict[str, Any], args: argparse.Namespace) -> str:
    head = "| " + " | ".join(name for name, _ in COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(show(r) for _, show in COLUMNS) + " |\n" for r in rows)
    return (f"{BEGIN}\nRun of {where['date']}: `python -m bench.run {' '.join(sys.argv[1:])}`. Machine: "
            f"{where['cores']} × {where['cpu']}, {where['ram_gb']} GB RAM, {where['os']}, CPython {where['python']}, "
            f"aiohttp {where['aiohttp']}, SQLite {where['sqlite']}; load average at start "
            f"{where['load_start'][0]:.2f}, at end {where['load_end'][0]:.2f}.\n\n{head}{body}\n"
            "Every row's JSON line (all figures, unrounded):\n\n```\n"
            + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + f"```\n{END}")


def write_results(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row, ensure_ascii=False), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only.split(","))
    unknown = only - set(ALL) - set(EXTRA)
    if unknown:
        print(f"unknown cases: {', '.join(sorted(unknown))} (choose from {', '.join(ALL + EXTRA)})", file=sys.stderr)
        return 2
    if "pg" in only and (why := world.pg_reachable()) is not None:
        print(f"PostgreSQL not reachable at {world.PG_MAINTENANCE.split('@')[-1]} ({why}): its cases skipped",
              file=sys.stderr)
        only.discard("pg")
    where = machine()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="notifier-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.fsync_delay_ms:
            try:
                slow_fsync.slow_down(args.fsync_delay_ms, Path(tmp))
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 2
        ceilings = []
        if "bare" in only:
            rows.append(bare(args.bare, root, "before"))
            ceilings.append(rows[-1]["deliveries_per_s"])
            emit(rows[-1])
            rows.append(bare(args.bare, root, "notifier's webhook requests, no store", shape="notifier"))
            emit(rows[-1])
        for i, case in enumerate(notifier_cases(args, only)):
            print(f"== {case.name}: {case.subscribers:,}", file=sys.stderr, flush=True)
            profile = args.profile / f"{i:02d}-{case.name.replace(' ', '-')}.txt" if args.profile else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
            rows.append(run_case(case, root / f"case-{i:02d}", profile))
            emit(rows[-1])
        if "peers" in only:
            ours = Case("sqlite webhook (peers' slice)", {"webhook": 1.0}, args.peers)
            rows.append(run_case(ours, root / "peers-ours"))
            emit(rows[-1])
            for name in ("naive", "apprise"):
                if (row := peer(name, args.peers, root / f"peer-{name}")) is not None:
                    rows.append(row)
                    emit(row)
        if "bare" in only:
            rows.append(bare(args.bare, root, "after"))
            ceilings.append(rows[-1]["deliveries_per_s"])
            emit(rows[-1])
    ceiling = sum(ceilings) / len(ceilings) if ceilings else None
    per_request = ("webhook", "peer", "bare")
    for row in rows:
        if ceiling and row.get("deliveries_per_s") and any(k in row["case"] for k in per_request):
            row["ratio_ceiling"] = row["deliveries_per_s"] / ceiling
    where["load_end"] = os.getloadavg()
    print(table(rows))
    write_results(args.results, markdown(rows, where, args))
    print(f"written: {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
