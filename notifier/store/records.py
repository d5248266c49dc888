"""Plain rows that cross the store boundary (dataclasses: cheap on the hot path, no validation cost).

The two made once per recipient on the delivery path, `ClaimedDelivery` and `DeliveryUpdate`, are named tuples: as
immutable, and made in 0.4-0.8 µs against 1.9-2.3 for a frozen dataclass of their size (whose `__init__` sets each
field through `object.__setattr__`); a million-number SMS fan-out makes two million of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from notifier.states import DeliveryStatus


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as stored; times are unix seconds."""

    id: str
    topic: str
    msg_type: str
    references_id: str | None
    headline: str
    body: str
    instruction: str
    severity: str
    urgency: str
    level: str | None
    target_regions: list[str]
    target_groups: list[str]
    policy: str
    fallback_after: int
    data: dict[str, Any]
    expires_at: float | None
    scheduled_at: float | None
    idempotency_key: str | None
    request_hash: str
    public: bool
    status: str
    targeted: int
    publisher: str | None
    department: str | None
    created_at: float
    cancelled_at: float | None
    cancel_notice_id: str | None = None  # a cancelled alert's notice to those it had reached (None: nobody was)
    # CAP 1.2 (migration 0008): the identity it is known by in CAP — ours, fixed in the storing transaction
    # (store/cap.py), or an imported document's — what an imported alert keeps of its document, its English words.
    cap_sender: str | None = None
    cap_identifier: str | None = None
    cap_sent: float | None = None
    cap_origin: str | None = None  # notifier.cap.CapOrigin.to_json(); None for our own alerts
    headline_en: str | None = None
    body_en: str | None = None
    instruction_en: str | None = None
    # Two-person release (migration 0007).
    approval: str | None = None  # states.Approval of a held alert; None when no approval rule held it
    decided_by: str | None = None  # the key (or `system`) that approved or rejected it
    decided_at: float | None = None
    decision_reason: str | None = None  # why it was rejected (`timeout` when nobody decided in time)

    def released_at(self) -> float:
        """When it went out (or goes out): its schedule when later than its start — the approval of a held alert,
        else its publication (the store's SQL says the same: `store.states.release`)."""
        start = self.decided_at if self.decided_at is not None else self.created_at
        return self.scheduled_at if self.scheduled_at is not None and self.scheduled_at > start else start


@dataclass(frozen=True, slots=True)
class Targeting:
    """Who an alert is for: resolved by the store in the transaction that stores the alert.

    A new alert resolves its subscribers now. An update or cancel goes to the frozen targets of the alert it
    references (`from_alert`), counted under the region and groups that alert froze; a cancel only to those it
    reached or whose delivery was accepted (`only_reached`); an update also to the subscribers who match it now but
    not the referenced alert's own regions and groups (`widened_from`), i.e. those its wider area or groups add."""

    topic: str
    min_severity_rank: int  # subscribers whose minimum is above this are left out
    regions: list[str]  # empty: all
    groups: list[str]  # empty: all
    policy: str
    priority: int
    first_attempt_at: float
    from_alert: str | None = None
    only_reached: bool = False
    widened_from: tuple[list[str], list[str]] | None = None  # the referenced alert's (regions, groups)


class ClaimedDelivery(NamedTuple):
    """A delivery leased to one worker, with what sending needs."""

    id: str
    alert_id: str
    subscriber_id: str
    channel: str
    position: int
    attempts: int
    address: str | None  # None when the contact was deleted or disabled since publish
    secret: str | None
    locale: str
    quiet_start: int | None
    quiet_end: int | None
    created_at: float


class DeliveryUpdate(NamedTuple):
    """What to write back for one claimed delivery."""

    delivery_id: str
    alert_id: str
    status: DeliveryStatus  # delivered | sent | queued (retry) | failed | deferred
    at: float  # when the send finished (or was decided): sent_at / delivered_at
    attempted: bool = True  # a send was made (False for quiet-hours deferral and sends refused before trying)
    next_attempt_at: float | None = None
    provider_message_id: str | None = None
    error: str | None = None
    disable_contact: bool = False
    fall_back: bool = False  # failed: queue the subscriber's next channel if the policy says so
    # sent: the number (or openid) it went to, for a report that came before this record: digested with the
    # number key only then (`receipts.apply_early_receipts`), never stored
    address: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    id: str
    region: str
    locale: str
    quiet_start: int | None
    quiet_end: int | None
    status: str
    consent_source: str | None
    consent_at: float | None
    created_at: float
    groups: list[str] = field(default_factory=list)
    contacts: dict[str, str] = field(default_factory=dict)  # channel -> address (raw: mask before showing)
    disabled: dict[str, str] = field(default_factory=dict)  # channel -> reason
    subscriptions: list[tuple[str, list[str], int]] = field(default_factory=list)  # topic, channels, min rank
    role: str = "subscriber"  # or "proxy": tells the people in `assists`
    assists: list[AssistedRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    prefix: str
    role: str
    topics: list[str]
    label: str | None
    created_at: float
    revoked_at: float | None
    department: str | None = None  # a publisher's department (SPEC "Departments and approval")


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    alert_id: str
    subscriber_id: str
    channel: str
    address: str | None
    status: str
    attempts: int
    next_attempt_at: float | None
    provider_message_id: str | None
    last_error: str | None
    created_at: float
    sent_at: float | None
    delivered_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class CoverageRows:
    """Raw aggregates from which notifier.coverage builds the Coverage object."""

    targeted: int
    reached: int
    accepted: int
    by_channel: dict[str, dict[str, int]]
    cells: list[tuple[str, str | None, int, int]]  # region, group (None: in no group), targeted, reached
    by_region: dict[str, tuple[int, int]]
    by_group: dict[str, tuple[int, int]]
    reach_times: list[float | None]  # seconds from release until 50, 90, 99 % were reached
    unreachable: dict[str, int]


@dataclass(frozen=True, slots=True)
class PopulationRecord:
    """Residents on record for a region × group; group None is the region's total over all groups."""

    region: str
    group: str | None
    residents: int
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PeriodFilter:
    """Which alerts a period aggregate covers (only `alert` messages: updates and cancels are follow-ups)."""

    topic_like: str | None = None  # SQL LIKE pattern over topic keys (`env.%`), or an exact key
    department: str | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until
    min_targeted: int | None = None  # viewers: alerts with fewer targeted are left out (counted in `left_out`)


@dataclass(frozen=True, slots=True)
class PeriodCell:
    """Additive figures of the alerts of one topic × department in a period (summed by notifier.analytics)."""

    topic: str
    department: str
    alerts: int
    targeted: int
    reached: int
    accepted: int
    by_channel: dict[str, dict[str, int]]
    unreachable: dict[str, int]
    left_out: int = 0  # alerts under PeriodFilter.min_targeted, not in the figures


@dataclass(frozen=True, slots=True)
class BreakdownRecord:
    """One region × group × channel row of an alert (group None: in no group; channel None: no usable contact)."""

    region: str
    group: str | None
    channel: str | None
    targeted: int
    attempted: int
    sent: int
    delivered: int
    failed: int
    pending: int
    reached: int  # subscribers this channel reached first


# ---------------------------------------------------------------- assisted reach


@dataclass(frozen=True, slots=True)
class AssistedRecord:
    """A person a proxy tells: no contact, a label that is personal data (mask it before showing anyone but the
    proxy). `seq` numbers the proxy's people for SMS replies; 0 until stored."""

    id: str
    label: str
    region: str
    groups: list[str] = field(default_factory=list)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AssistItem:
    """One person on a proxy's list for one alert: their `proxy` delivery and its status."""

    delivery_id: str
    assisted_id: str
    seq: int
    label: str
    status: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a confirmation did: the person's delivery, when they were marked told, and whether it was now."""

    delivery_id: str
    assisted_id: str
    alert_id: str
    confirmed_at: float
    changed: bool
