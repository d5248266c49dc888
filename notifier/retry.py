"""When to try a failed send again: exponential backoff with jitter (tenacity's wait strategy), at least what the
provider asked for in Retry-After, bounded in attempts and in time. The one place retry timing is decided."""

from __future__ import annotations

from dataclasses import dataclass

import tenacity

from notifier.config import WorkerSettings

MAX_RETRY_AFTER = 3600.0  # a provider asking for more than an hour is treated as asking for an hour


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


class RetryPolicy:
    def __init__(self, settings: WorkerSettings) -> None:
        self.max_attempts = settings.max_attempts
        self.max_age = settings.max_retry_seconds
        self._wait = tenacity.wait_exponential_jitter(multiplier=settings.backoff_initial, max=settings.backoff_max,
                                                      jitter=settings.backoff_initial)

    def backoff(self, attempt: int) -> float:
        """Delay before attempt `attempt + 1`, having made `attempt` attempts (1-based)."""
        state = tenacity.RetryCallState(retry_object=tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        return float(self._wait(state))

    def decide(self, attempts_made: int, retry_after: float | None, now: float, released_at: float,
               expires_at: float | None) -> RetryDecision:
        """Retry or give up after a transient failure of the `attempts_made`-th attempt."""
        if attempts_made >= self.max_attempts:
            return RetryDecision(False, reason=f"gave up after {attempts_made} attempts")
        delay = self.backoff(attempts_made)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        due = now + delay
        if due > released_at + self.max_age:
            return RetryDecision(False, reason="gave up: retry window exceeded")
        if expires_at is not None and due >= expires_at:
            return RetryDecision(False, reason="gave up: the alert expires before the next attempt")
        return RetryDecision(True, delay=delay)
