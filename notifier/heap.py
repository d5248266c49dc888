"""The cyclic garbage collector of a long-running process (`notifier serve`, `notifier worker`), once it is ready.

What it built while starting (modules, the catalogue, templates, the web application) lives as long as the process:
it is frozen out of the collector's passes, so that full passes during a fan-out scan only what delivering makes.
Measured in a 30,000-webhook fan-out (bench/RESULTS.md): 19 full passes of ~43 ms each, none of which found anything
to free, became 4 of ~14 ms — each such pass stops the event loop, and with it a red warning's publish and send.

And the young generation is collected after YOUNG_OBJECTS new objects instead of CPython's 700: a fan-out makes
(and soon frees, by reference counting) a few dozen objects per request — the request, its headers, its timer,
its task, its result — so at 700 the collector ran every few requests and walked everything young each time. Its
cyclic garbage (an exception's traceback, a closed connection's protocol) waits a little longer; a young pass over
20,000 objects takes ~0.2 ms. Measured: notifier's own webhook requests with no store (`bench.bare --shape
notifier`, start-up heap frozen), 30,000 requests, three pairs: 4,820-5,000 -> 5,190-5,450 a second (+9 %); the
100,000-webhook pipeline +2 % and +6 % in two pairs, within that machine's noise (bench/RESULTS.md, seventh round).
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 20_000  # CPython's default: 700
# The older generations keep CPython's ratios: the middle one every 10 young passes, the oldest every 10 of those
# (and then only when it has grown by a quarter since its last pass).
OLDER_RATIO = 10


def settle_collector() -> None:
    """Collect once, move every surviving object to the collector's permanent generation, and collect the young
    generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, OLDER_RATIO, OLDER_RATIO)
