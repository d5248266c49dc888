"""The states of an alert and of a delivery, and the claim priorities: one definition that the API models, the
dispatcher and the store's SQL (`notifier/store/states.py`) all read. The transitions themselves live in the store's
query modules named for them (queue, receipts, lifecycle)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # due at next_attempt_at (a first attempt, or a retry)
    DEFERRED = "deferred"  # quiet hours: due when the window ends
    SENDING = "sending"  # leased to a worker
    SENT = "sent"  # accepted by the provider, waiting for its receipt
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a fallback channel that has not been (or never was) needed


class AlertStatus(StrEnum):
    SCHEDULED = "scheduled"  # released at scheduled_at
    ACTIVE = "active"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # an update replaced it
    EXPIRED = "expired"
    EXERCISE = "exercise"  # a CAP Exercise or Test: recorded, delivered to no one, never public


class MsgType(StrEnum):
    """CAP 1.2's msgType: a new alert, an update of one, or its cancellation."""

    ALERT = "alert"
    UPDATE = "update"
    CANCEL = "cancel"


class Priority(IntEnum):
    """Claim order: life-safety first."""

    ROUTINE = 0
    URGENT = 1
    LIFE_SAFETY = 2
