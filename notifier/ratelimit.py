"""A token bucket per provider account: sends wait for a token, so a burst never exceeds the provider's rate.

Holds within one process; across processes the PostgreSQL back-end will share the budget (scale-out issue).
"""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """At most `rate` acquisitions per second on average, bursts up to `burst` (default: one second's worth)."""

    def __init__(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate or 1.0)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: float = 1.0) -> None:
        if self.rate is None:
            return
        # The lock is held while waiting, so waiters are served in arrival order; a request for more tokens
        # than the bucket holds runs into debt and waits it off, so a large batch is paced rather than stuck.
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= tokens
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self.rate)
