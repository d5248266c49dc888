"""Errors a channel adapter raises when a send fails as a whole.

    DeliveryError
    ├── TransientDeliveryError   retry later (timeouts, 5xx, 429, provider throttling); may carry retry_after
    └── PermanentDeliveryError   final at once (bad credentials, rejected content, 4xx other than 408/429)

Per-recipient outcomes are returned as `DeliveryResult`s, never raised: only a failure that hits every recipient
of a batch (the gateway is down, the credentials are wrong) is an exception.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A send failed for every recipient of the batch."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientDeliveryError(DeliveryError):
    """The failure may go away: the dispatcher retries with backoff."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: the deliveries are failed at once (and fall back where the policy says so)."""
