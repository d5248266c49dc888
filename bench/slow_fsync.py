"""A slower disk for the benchmark's processes: `--fsync-delay-ms N` makes every fsync N ms longer (slow_fsync.c,
built here with the system's C compiler and loaded with LD_PRELOAD into every process the run starts). This VM's
disk flushes in ~0.4 ms; network block storage, where a city's service is as likely to run, commonly takes a few
milliseconds, and SQLite (synchronous = FULL) flushes its log at every commit — a cost the benchmark would otherwise
never show."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("slow_fsync.c")


def slow_down(delay_ms: float, folder: Path) -> None:
    """Every process started from now on flushes `delay_ms` slower; RuntimeError (one line) when it cannot be."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("--fsync-delay-ms needs a C compiler (cc) to build bench/slow_fsync.c")
    library = folder / "slow_fsync.so"
    built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(SOURCE), "-ldl"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"building bench/slow_fsync.c failed: {built.stderr.strip()[:300]}")
    os.environ["LD_PRELOAD"] = " ".join(filter(None, (os.environ.get("LD_PRELOAD"), str(library))))
    os.environ["SLOW_FSYNC_US"] = str(round(delay_ms * 1000))
