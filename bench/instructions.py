"""Instructions a request, counted by callgrind: the bare loop's and notifier's own webhook requests (no store),
and, with `--compare`, another checkout's — a measure no busy or throttled machine moves.

    python -m bench.instructions                         # bare and notifier, ~2 minutes on 2 cores
    python -m bench.instructions --compare /tmp/base     # notifier's requests, that checkout's and ours

Wall-clock rates on a shared VM move by a third within the hour (bench/RESULTS.md, twelfth round), which hides a
change of a few per cent; the instructions a request do not move (two runs of the same 1,000 requests: 0.04 %). Each
shape runs twice under `valgrind --tool=callgrind` (`bench.bare`, `--requests` small and large, against one fake
receiver), and the difference of the two counts over the difference of the requests is one request's instructions:
start-up and imports cancel out. Instructions are not time — system calls and cache misses are not in them — so
this judges changes to our own Python work, not the machine. Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.procs import child_env, start

HERE = Path(__file__).parent
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(shape: str, requests: int, url: str, code: Path | None, out: Path) -> int:
    """Instructions of one `bench.bare` process sending `requests` of `shape`."""
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                           "bench.bare", "--url", url, "--requests", str(requests), "--shape", shape],
                          capture_output=True, text=True, env=child_env(code), cwd=code or HERE.parent, check=True)
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count for {shape}")
    return int(found.group(1).replace(",", ""))


def per_request(shape: str, small: int, large: int, url: str, code: Path | None, folder: Path) -> float:
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs of a shape side by side: one core each
        low, high = pool.map(lambda n: count(shape, n, url, code, folder / f"{shape}-{n}.out"), (small, large))
    return (high - low) / (large - small)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="requests of the first run (default 1,000)")
    parser.add_argument("--large", type=int, default=3_000, help="requests of the second run (default 3,000)")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="count notifier's requests with that checkout's code too")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found: install it (apt-get install valgrind) to count instructions", file=sys.stderr)
        return 2
    if not 0 < args.small < args.large:
        print("--small must be positive and below --large", file=sys.stderr)
        return 2
    runs: list[tuple[str, str, Path | None]] = [("bare aiohttp loop", "bare", None),
                                                ("notifier's webhook requests, no store", "notifier", None)]
    if args.compare is not None:
        runs.append((f"notifier's webhook requests, no store ({args.compare})", "notifier", args.compare.resolve()))
    receiver = start("receiver", ["-m", "notifier.fakes.webhook_receiver"])
    figures: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="notifier-instructions-") as tmp:
            for i, (name, shape, code) in enumerate(runs):
                folder = Path(tmp) / str(i)
                folder.mkdir()
                figures[name] = per_request(shape, args.small, args.large, receiver.url, code, folder)
                row = {"case": name, "instructions_per_request": round(figures[name])}
                if shape == "notifier":
                    row["ratio_to_bare"] = round(figures["bare aiohttp loop"] / figures[name], 3)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
