"""A long-running process hands Python's GIL to its other threads quickly.

The event-loop thread runs Python without pause during a fan-out, while SQLite's writer and reader run on threads
of their own (aiosqlite): every time one of them comes back from SQLite it needs the GIL again, and waits for the
busy thread's switch interval — 5 ms by default — each time. A red warning's publish, claim and record are such
trips; during a 100,000-webhook fan-out its 1–2 ms transaction took 10–19 ms now and then (measured; checkpoints
in its commit were the other cause, `store/sqlite_db.py`). A switch interval of half a millisecond bounded those
waits without measurably changing the fan-out's throughput (bench/RESULTS.md, fifth round). The single writer's
thread makes such a trip after every statement of every claim and record, and during an SMS fan-out it is the
pipeline's critical path (sampled with py-spy's --gil: the GIL itself is held only half the time): at a tenth of a
millisecond, 300,000 Tencent numbers went 12-17 % faster (seven alternated pairs in two runs, every one up), the
webhook fan-out (bound by the event loop) and a red warning's latency during it unchanged; at 0.03 ms no better
(bench/RESULTS.md, eighteenth round)."""

from __future__ import annotations

import sys

SWITCH_INTERVAL = 0.0001  # seconds


def hand_over_quickly() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
