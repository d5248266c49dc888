"""The domain's words as types: alerts, deliveries, topics, keys, coverage (pydantic v2, frozen).

Bodies that cross the API edge forbid unknown fields; everything here is also what /openapi.json describes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from notifier.schedule import Schedule, parse_schedule

# Re-exported: the API's words for an alert's and a delivery's state.
from notifier.states import AlertStatus as AlertStatus
from notifier.states import Approval as Approval
from notifier.states import DeliveryStatus as DeliveryStatus
from notifier.states import MsgType as MsgType
from notifier.states import Priority as Priority

TOPIC_KEY = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+")
REGION_CODE = re.compile(r"[0-9]{6}")  # used with fullmatch: no trailing newline, no full-width digits
MAX_SCHEDULE_TEXT = 200


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self]


SEVERITY_RANK = {Severity.MINOR: 1, Severity.MODERATE: 2, Severity.SEVERE: 3, Severity.EXTREME: 4}


class Urgency(StrEnum):
    IMMEDIATE = "immediate"
    EXPECTED = "expected"
    FUTURE = "future"


class Level(StrEnum):
    """Chinese warning colours, lowest to highest."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


class Policy(StrEnum):
    ALL = "all"
    FALLBACK = "fallback"


class Role(StrEnum):
    ADMIN = "admin"
    PUBLISHER = "publisher"
    VIEWER = "viewer"


# ---------------------------------------------------------------- topics


class TopicIn(Frozen):
    key: str = Field(description="dotted topic key, e.g. env.heavy-pollution", max_length=100)
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    domain: str = Field(min_length=1, max_length=50)
    department: str = Field(min_length=1, max_length=200)
    channels: list[str] = Field(default_factory=lambda: ["wechat", "sms"], max_length=8)
    schedule: Schedule | str | None = Field(
        default=None, description='disclosure schedule (发布时限): a deadline as data, e.g. {"every": "month", '
                                  '"by_day": 20}, which GET /v1/catalogue/compliance checks; or free text shown as '
                                  "written, e.g. 预警发布时立即推送")
    supervision: str | None = Field(default=None, max_length=500, description="complaint / supervision channel")
    method: str | None = Field(default=None, max_length=200, description="disclosure method (公开方式)")

    @field_validator("key")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not TOPIC_KEY.fullmatch(value):
            raise ValueError("topic key must be dotted lower-case words, e.g. env.heavy-pollution")
        return value

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        return checked_schedule(value)


def checked_schedule(value: Any) -> Any:
    """A schedule as given: an object is a deadline (ScheduleError, a ValueError, says what is wrong), text at
    most 200 characters is free text."""
    if isinstance(value, Mapping):
        return parse_schedule(value)
    if isinstance(value, str) and len(value) > MAX_SCHEDULE_TEXT:
        raise ValueError(f"a schedule in words has at most {MAX_SCHEDULE_TEXT} characters")
    return value


class Topic(TopicIn):
    schedule_set_at: datetime | None = Field(default=None, description="when the schedule was set: compliance is "
                                                                        "owed from that period unless it names "
                                                                        "`since`")


class TopicPatch(Frozen):
    """A change to a topic: the fields given replace the stored ones (the key and domain stay)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, min_length=1, max_length=200)
    channels: list[str] | None = Field(default=None, max_length=8)
    schedule: Schedule | str | None = Field(default=None, description="as in a new topic; null removes it")
    supervision: str | None = Field(default=None, max_length=500)
    method: str | None = Field(default=None, max_length=200)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        return checked_schedule(value)

    @field_validator("name", "department", "channels")
    @classmethod
    def _required(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be removed; give a value or leave the field out")
        return value


class Region(Frozen):
    code: str
    name: str
    name_en: str | None = None


class Group(Frozen):
    code: str
    name: str
    name_en: str | None = None


# ---------------------------------------------------------------- alerts


class AlertIn(Frozen):
    """What a bureau publishes."""

    topic: str
    headline: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=5000)
    instruction: str = Field(default="", max_length=2000)
    severity: Severity = Severity.MODERATE
    urgency: Urgency = Urgency.EXPECTED
    level: Level | None = None
    msg_type: MsgType = MsgType.ALERT
    references: str | None = Field(default=None, description="id of the alert an update or cancel refers to")
    regions: list[str] = Field(default_factory=list, max_length=500,
                               description="region codes (GB/T 2260) or catalogue names such as 城区, stored as "
                                           "codes; empty: every region")
    groups: list[str] = Field(default_factory=list, max_length=100,
                              description="group codes or catalogue names such as 老年人, stored as codes; empty: "
                                          "every group")
    policy: Policy | None = Field(default=None, description="default: all for severe/extreme/immediate, else fallback")
    fallback_after: int = Field(default=600, ge=0, le=7 * 86400,
                                description="seconds without a receipt before the next channel is tried")
    data: dict[str, JsonValue] = Field(default_factory=dict, max_length=50,
                                       description="template data (e.g. aqi, primary_pollutant); never compiled")
    expires_at: datetime | None = None
    scheduled_at: datetime | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    public: bool = True

    @field_validator("regions", "groups")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        # Whether a code or name exists is the catalogue's question (notifier.input_rules), asked at publish.
        for item in value:
            if not item.strip() or len(item) > 100:
                raise ValueError("each entry is a code or a catalogue name (1 to 100 characters)")
        return list(dict.fromkeys(item.strip() for item in value))

    @field_validator("expires_at", "scheduled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps need a time zone offset, e.g. 2026-11-27T18:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _references_match_type(self) -> AlertIn:
        if self.msg_type is not MsgType.ALERT and not self.references:
            raise ValueError("an update or cancel needs `references`, the id of the alert it refers to")
        if self.expires_at and self.scheduled_at and self.expires_at <= self.scheduled_at:
            raise ValueError("expires_at must be after scheduled_at")
        return self

    def effective_policy(self) -> Policy:
        if self.policy is not None:
            return self.policy
        if self.severity in (Severity.SEVERE, Severity.EXTREME) or self.urgency is Urgency.IMMEDIATE:
            return Policy.ALL
        return Policy.FALLBACK


def priority_of(severity: Severity, urgency: Urgency, level: Level | None) -> Priority:
    """Claim order: life-safety (extreme or red) first, then immediate or severe, then the rest."""
    if severity is Severity.EXTREME or level is Level.RED:
        return Priority.LIFE_SAFETY
    if urgency is Urgency.IMMEDIATE or severity is Severity.SEVERE:
        return Priority.URGENT
    return Priority.ROUTINE


def bypasses_quiet_hours(urgency: Urgency, severity: Severity) -> bool:
    """Immediate or extreme alerts go out inside a subscriber's quiet hours."""
    return urgency is Urgency.IMMEDIATE or severity is Severity.EXTREME


class Alert(Frozen):
    id: str
    topic: str
    msg_type: MsgType
    references: str | None
    headline: str
    body: str
    instruction: str
    severity: Severity
    urgency: Urgency
    level: Level | None
    regions: list[str]
    groups: list[str]
    policy: Policy
    fallback_after: int
    data: dict[str, Any]
    expires_at: datetime | None
    scheduled_at: datetime | None
    idempotency_key: str | None
    public: bool
    status: AlertStatus
    targeted: int | None = Field(description="null only for a viewer, when fewer than k were targeted")
    publisher: str | None
    department: str | None
    created_at: datetime
    cancelled_at: datetime | None
    headline_en: str | None = Field(default=None, description="English words (from a CAP info block in en), "
                                                              "read by English subscribers; null: they read zh-CN")
    body_en: str | None = None
    instruction_en: str | None = None
    # Two-person release ([approval]): null when no rule held the alert.
    approval: Approval | None = Field(default=None, description="pending, approved, rejected or withdrawn")
    decided_by: str | None = Field(default=None, description="the key that approved or rejected it (or `system`)")
    decided_at: datetime | None = None
    decision_reason: str | None = Field(default=None, description="why it was rejected; `timeout` when nobody "
                                                                  "decided within [approval] timeout")
    suppressed: bool | None = Field(default=None, description="true for a viewer when fewer than k were targeted")


class AlertAccepted(Frozen):
    id: str
    targeted: int
    status: AlertStatus


class Delivery(Frozen):
    id: str
    alert_id: str
    subscriber_id: str
    channel: str
    contact: str | None = Field(description="masked contact, e.g. 138****5678")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    provider_message_id: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    finished_at: datetime | None


T = TypeVar("T")


class Page(Frozen, Generic[T]):
    items: list[T]
    next_cursor: str | None
    total: int


# ---------------------------------------------------------------- coverage


class ChannelCoverage(Frozen):
    attempted: int
    sent: int
    delivered: int
    failed: int
    pending: int
    awaiting_receipt: int
    skipped: int
    reach_rate: float | None


class CellCoverage(Frozen):
    targeted: int | None
    reached: int | None
    coverage_rate: float | None
    population: int | None = None
    population_rate: float | None = None
    suppressed: bool | None = None


class RegionGroupCell(CellCoverage):
    region: str
    group: str | None


class TimeToReach(Frozen):
    p50: float | None
    p90: float | None
    p99: float | None


class Coverage(Frozen):
    alert_id: str
    targeted: int | None = Field(description="null only for a viewer, when the alert is suppressed")
    reached: int | None
    accepted: int | None
    coverage_rate: float | None
    accepted_rate: float | None
    by_channel: dict[str, ChannelCoverage]
    by_region: dict[str, CellCoverage]
    by_group: dict[str, CellCoverage]
    cells: list[RegionGroupCell]
    time_to_reach: TimeToReach
    unreachable: dict[str, int] = Field(
        default_factory=dict,
        description="targeted but not reached, by cause: no_contact, all_failed, pending, expired, cancelled",
    )
    population: int | None = None
    population_rate: float | None = None
    suppressed: bool | None = Field(default=None, description="true for a viewer when the alert had fewer than k "
                                                               "targeted: no figure at all is shown")
