"""What a long-running process builds while it starts (modules, the catalogue, templates, the web application)
lives as long as the process: it is frozen out of the cyclic garbage collector once the process is ready, so that
the collector's full passes during a fan-out scan only what delivering makes. Measured in a 30,000-webhook
fan-out (bench/RESULTS.md): 19 full passes of ~43 ms each, none of which found anything to free, became 4 of
~14 ms — each such pass stops the event loop, and with it a red warning's publish and send."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once, then move every surviving object to the collector's permanent generation."""
    gc.collect()
    gc.freeze()
