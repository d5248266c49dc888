"""A py-spy profile of every thread (`bench/README.md`, "Profiles per thread") read as a person reads it: each
thread's share, and the functions that took it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.spy_summary import report, threads

# Two threads as py-spy writes them: each stack, its thread first, then how many samples found it there.
RAW = """\
thread (1): MainThread;main (app.py:10);send (channels/sms.py:5);validate_json (/v/lib/site-packages/pydantic/t.py:9) 30
thread (1): MainThread;main (app.py:10);send (channels/sms.py:6) 10
thread (1): MainThread;main (app.py:10);select (selectors.py:3) 20
thread (2): Thread-1 (worker);run (store.py:40);execute (store.py:41) 90
"""


def test_the_busiest_thread_comes_first_with_its_seconds() -> None:
    found = threads(RAW.splitlines())
    assert [(t.name, t.samples) for t in found] == [("thread (2): Thread-1 (worker)", 90),
                                                    ("thread (1): MainThread", 60)]
    assert report(found, rate=100, top=3).splitlines()[0] == "== thread (2): Thread-1 (worker): 90 samples, 0.9 s"


def test_a_function_counts_what_it_calls_and_on_its_own_apart_whatever_the_line() -> None:
    main = threads(RAW.splitlines())[1]
    assert main.inclusive["send (channels/sms.py)"] == 40  # two lines of it, one calling pydantic
    assert main.own["send (channels/sms.py)"] == 10
    assert main.own["validate_json (pydantic/t.py)"] == 30  # a library named from its package on


def test_it_runs_from_the_command_line(tmp_path: Path) -> None:
    raw = tmp_path / "serve.raw"
    raw.write_text(RAW, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bench.spy_summary", str(raw), "--rate", "250", "--top", "2"],
                          capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert "== thread (1): MainThread: 60 samples, 0.2 s" in done.stdout
