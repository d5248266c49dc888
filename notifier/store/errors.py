"""What the store says when a write cannot happen as asked (translated to HTTP problems at the web edge)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of store refusals."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(StoreError):
    """A referenced row does not exist."""


class Conflict(StoreError):
    """The write clashes with what is stored (duplicate key, idempotency key reused with another body)."""
