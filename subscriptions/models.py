"""Who wants what: subscriber, contacts, subscriptions and quiet hours as they cross the API edge."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from subscriptions.contacts import (
    normalize_email,
    normalize_mobile,
    normalize_voice_number,
    validate_openid,
    validate_webhook_secret,
    validate_webhook_url,
)
from subscriptions.quiet_hours import format_hhmm, parse_hhmm

CHANNEL_KINDS = ("sms", "wechat", "email", "webhook", "voice")
# The channel of a person with no contact of their own, whom a proxy (grid worker, caregiver) tells: never
# chosen by a subscriber, counted in coverage like the others.
PROXY_CHANNEL = "proxy"
LOCALES = ("zh-CN", "en")
_REGION = re.compile(r"[0-9]{6}")
_GROUP = re.compile(r"[a-z][a-z0-9_]{0,49}")
# The same shape as notifier.models.TOPIC_KEY; whether the topic exists is the catalogue's question.
_TOPIC = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+")


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError("region must be a six-digit administrative code")
    return value


def check_groups(value: list[str]) -> list[str]:
    for code in value:
        if not _GROUP.fullmatch(code):
            raise ValueError(f"group {code!r} is not a group code")
    return list(dict.fromkeys(value))


def check_locale(value: str) -> str:
    if value not in LOCALES:
        raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
    return value


def check_some_contact(value: Contacts) -> Contacts:
    if not value.addresses():
        raise ValueError("at least one contact is needed: sms, email, wechat, webhook or voice")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MinSeverity(StrEnum):
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"


class SubscriberRole(StrEnum):
    SUBSCRIBER = "subscriber"
    PROXY = "proxy"  # a community grid worker (网格员) or caregiver: tells the people in its `assists`


PROXY_ROLE = SubscriberRole.PROXY.value
MAX_ASSISTS = 500  # people one proxy tells (a grid covers a few hundred households)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # waiting for contact verification (self-service sign-up)


class Contacts(_Frozen):
    sms: str | None = Field(default=None, description="mainland China mobile number, +86 optional; stored as E.164")
    email: str | None = Field(default=None, description="email address; an internationalised domain is stored in "
                                                        "A-labels (xn--…)")
    wechat: str | None = Field(default=None, description="WeChat openid of the official account (28 characters)")
    webhook: str | None = None
    webhook_secret: str | None = Field(default=None, description="whsec_…; generated when a webhook has none")
    voice: str | None = Field(default=None, description="number for text-to-speech calls: a mainland mobile, or a "
                                                        "fixed line with its area code (0355-2021234); stored as "
                                                        "E.164")

    @field_validator("sms")
    @classmethod
    def _mobile(cls, value: str | None) -> str | None:
        return None if value is None else normalize_mobile(value)

    @field_validator("voice")
    @classmethod
    def _voice(cls, value: str | None) -> str | None:
        return None if value is None else normalize_voice_number(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("wechat")
    @classmethod
    def _openid(cls, value: str | None) -> str | None:
        return None if value is None else validate_openid(value)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return None if value is None else validate_webhook_url(value)

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else validate_webhook_secret(value)

    @model_validator(mode="after")
    def _secret_needs_webhook(self) -> Contacts:
        if self.webhook_secret and not self.webhook:
            raise ValueError("webhook_secret given without a webhook")
        return self

    def addresses(self) -> dict[str, str]:
        """channel kind → address, for the kinds given."""
        return {kind: value for kind in CHANNEL_KINDS if (value := getattr(self, kind)) is not None}


class QuietHours(_Frozen):
    start: str = Field(description="HH:MM, Asia/Shanghai")
    end: str = Field(description="HH:MM, Asia/Shanghai; may be earlier than start (wraps midnight)")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return format_hhmm(parse_hhmm(value))

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need different start and end times")
        return self

    def minutes(self) -> tuple[int, int]:
        return parse_hhmm(self.start), parse_hhmm(self.end)


class SubscriptionIn(_Frozen):
    topic: str = Field(max_length=100)
    channels: list[str] = Field(min_length=1, max_length=len(CHANNEL_KINDS), description="in order of preference")
    min_severity: MinSeverity | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.fullmatch(value):
            raise ValueError("topic must be a dotted key such as env.heavy-pollution")
        return value

    @field_validator("channels")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in CHANNEL_KINDS:
                raise ValueError(f"unknown channel {kind!r}; one of {', '.join(CHANNEL_KINDS)}")
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value


class AssistedIn(_Frozen):
    """A person a proxy tells: no contact of their own; the label is the proxy's note (personal data)."""

    label: str = Field(min_length=1, max_length=100,
                       description="the proxy's note of who this is (e.g. 3号楼2单元 王奶奶); masked to admins")
    region: Annotated[str, AfterValidator(check_region)]
    groups: Annotated[list[str], AfterValidator(check_groups)] = Field(default_factory=list, max_length=20)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or _CONTROL.search(value):
            raise ValueError("a label is one line of text")
        return value


class AssistsIn(_Frozen):
    """People added to a proxy's list."""

    assists: list[AssistedIn] = Field(min_length=1, max_length=MAX_ASSISTS)


class SubscriberIn(_Frozen):
    contacts: Contacts
    region: str
    groups: list[str] = Field(default_factory=list, max_length=20)
    locale: str = "zh-CN"
    quiet_hours: QuietHours | None = None
    subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=200)
    consent_source: str = Field(default="admin", max_length=100,
                                description="how consent was given (admin, import, web, wechat…)")
    role: SubscriberRole = Field(default=SubscriberRole.SUBSCRIBER,
                                 description="`proxy`: a grid worker or caregiver who tells the people in `assists`")
    assists: list[AssistedIn] = Field(default_factory=list, max_length=MAX_ASSISTS,
                                      description="a proxy's people with no contact of their own")

    @field_validator("contacts")
    @classmethod
    def _some_contact(cls, value: Contacts) -> Contacts:
        return check_some_contact(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return check_groups(value)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

    @field_validator("subscriptions")
    @classmethod
    def _topics_once(cls, value: list[SubscriptionIn]) -> list[SubscriptionIn]:
        topics = [s.topic for s in value]
        if len(set(topics)) != len(topics):
            raise ValueError("a topic is subscribed twice")
        return value

    @model_validator(mode="after")
    def _assists_need_a_proxy(self) -> SubscriberIn:
        if self.assists and self.role is not SubscriberRole.PROXY:
            raise ValueError('only a subscriber with "role": "proxy" assists people')
        return self


class SubscriberPatch(_Frozen):
    contacts: Contacts | None = None
    region: str | None = None
    groups: list[str] | None = None
    locale: str | None = None
    quiet_hours: QuietHours | None = None
    clear_quiet_hours: bool = False

    @field_validator("contacts")
    @classmethod
    def _some_contact(cls, value: Contacts | None) -> Contacts | None:
        return None if value is None else check_some_contact(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_groups(value)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return None if value is None else check_locale(value)

    @model_validator(mode="after")
    def _one_quiet_hours_change(self) -> SubscriberPatch:
        if self.quiet_hours is not None and self.clear_quiet_hours:
            raise ValueError("give quiet_hours or clear_quiet_hours, not both")
        return self


class Subscription(_Frozen):
    topic: str
    channels: list[str]
    min_severity: MinSeverity | None


class Assisted(_Frozen):
    """An assisted person as the API shows it: the label masked."""

    id: str
    number: int = Field(description="the person's number on the proxy's list (an SMS reply of it confirms them)")
    label: str = Field(description="masked")
    region: str
    groups: list[str]


class AssistedList(_Frozen):
    """A proxy's people, labels masked."""

    assists: list[Assisted]


class Subscriber(_Frozen):
    """A subscriber as the API shows it: contacts masked unless `reveal` was asked for by the owner."""

    id: str
    contacts: dict[str, Any]
    region: str
    groups: list[str]
    locale: str
    quiet_hours: QuietHours | None
    subscriptions: list[Subscription]
    status: SubscriberStatus
    consent_source: str | None
    consent_at: datetime | None
    created_at: datetime
    role: SubscriberRole = SubscriberRole.SUBSCRIBER
    assists: list[Assisted] = Field(default_factory=list)
