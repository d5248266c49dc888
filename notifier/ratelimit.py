"""A token bucket per provider account: sends wait for a token, so a burst never exceeds the provider's rate —
however many worker processes send, because the bucket lives in the database (`rate_buckets`), updated in one
short write transaction per acquisition.

A request for more tokens than the bucket holds runs into debt and waits it off, so a large batch is paced
rather than stuck, and waiters are served in the order they asked.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class TokenStore(Protocol):
    async def take_tokens(self, name: str, rate: float, capacity: float, tokens: float) -> float: ...


class RateLimiter:
    """At most `rate` acquisitions per second on average across all workers, bursts up to `burst` (default: one
    second's worth). `rate=None` never waits and touches nothing."""

    def __init__(self, store: TokenStore, name: str, rate: float | None, burst: float | None = None) -> None:
        self.store = store
        self.name = name
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate or 1.0)

    async def acquire(self, tokens: float = 1.0) -> None:
        if self.rate is None:
            return
        wait = await self.store.take_tokens(self.name, self.rate, self.capacity, tokens)
        if wait > 0:
            await asyncio.sleep(wait)
