"""What the public disclosure column asks of a store: one filter over published, public alerts.

A plain dataclass beside `records` so that the store Protocol and every back-end share it without importing the
web layer.
"""

from __future__ import annotations

from dataclasses import dataclass

MSG_TYPES = ("alert", "update", "cancel")


@dataclass(frozen=True, slots=True)
class PublicFilter:
    """Which public alerts a listing or feed shows. Every field narrows; None (or empty) does not.

    Times are unix seconds and compare with the publish time (the schedule when later than the creation)."""

    terms: tuple[str, ...] = ()  # each must occur in the headline, body or instruction (case-insensitive)
    topic: str | None = None
    domain: str | None = None
    region: str | None = None  # alerts aimed at this region code, or at every region
    level: str | None = None
    severity: str | None = None
    since: float | None = None  # published at or after
    until: float | None = None  # published before
    msg_types: tuple[str, ...] = ("alert",)
