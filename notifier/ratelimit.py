"""A token bucket per provider account: sends wait for a token, so a burst never exceeds the provider's rate —
however many worker processes send, because the bucket lives in the database (`rate_buckets`), updated in one
short write transaction per acquisition.

A request for more tokens than the bucket holds runs into debt and waits it off, so a large batch is paced
rather than stuck, and waiters are served in the order they asked.

Life-safety alerts keep a share of every provider's rate (SPEC "Lifecycle", priority): routine sends also draw on
a second bucket of `1 - reserve` of the rate, so however large a routine backlog, at least `reserve` of the
account's rate stays free for a red warning — which draws on the account's bucket alone, and so may use all of it
when nothing routine is going out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol


class TokenStore(Protocol):
    async def take_tokens(self, buckets: Sequence[tuple[str, float, float]], tokens: float) -> float: ...


class RateLimiter:
    """At most `rate` acquisitions per second on average across all workers, bursts up to `burst` (default: one
    second's worth); routine acquisitions at most `1 - reserve` of that. `rate=None` never waits and touches
    nothing."""

    def __init__(self, store: TokenStore, name: str, rate: float | None, burst: float | None = None,
                 reserve: float = 0.0) -> None:
        self.store = store
        self.name = name
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate or 1.0)
        self.reserve = reserve

    def buckets(self, life_safety: bool) -> list[tuple[str, float, float]]:
        assert self.rate is not None  # noqa: S101 - acquire() returned before
        account = (self.name, self.rate, self.capacity)
        if life_safety or self.reserve <= 0:
            return [account]
        share = 1.0 - self.reserve
        return [account, (f"{self.name}:routine", self.rate * share, max(1.0, self.capacity * share))]

    def fits(self, tokens: float, *, life_safety: bool = False) -> bool:
        """Whether `tokens` taken at once stay within the burst of every bucket they are drawn from: sends that
        may be paid for together and go out together."""
        return self.rate is None or all(tokens <= burst for _, _, burst in self.buckets(life_safety))

    async def acquire(self, tokens: float = 1.0, *, life_safety: bool = False) -> None:
        if self.rate is None:
            return
        wait = await self.store.take_tokens(self.buckets(life_safety), tokens)
        if wait > 0:
            await asyncio.sleep(wait)
