"""What both voice providers share: the configuration keys every `[channels.voice]` has, the redial rule, the
spoken-text budget and the template values a call reads out.

Redialling. A call that was not answered, was busy or found the phone switched off comes back as a receipt with
`retry` set; the delivery is then called again — at most `max_calls` calls in all (default 3), at least
`call_interval` seconds apart (never under 60 s), and never after the alert expires (`CallPolicy.next_call_at`,
a pure function the store's receipt handling calls). The providers' own per-number limits bound the spacing:
Aliyun allows 1 call a minute, 5 an hour and 20 a day to one number; Tencent 1 per 30 s, 2 per 10 minutes,
5 a day and 1 between 22:00 and 08:00 by default, so its default interval is 300 s (three calls within its
10-minute window would be refused). A call refused by those limits comes back as a transient error with the
provider's window as `retry_after`, and the dispatcher's retry policy (bounded by the alert's expiry) waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from channels.base import Message

MIN_CALL_INTERVAL = 60.0  # seconds between two calls to one number: SPEC floor and Aliyun's 1 call a minute
DEFAULT_MAX_CALLS = 3
SPOKEN_SOURCES = ("text", "headline", "level", "department", "topic")  # never the URL: a link cannot be heard
_SENTENCE_ENDS = "。！？；!?;"
ELLIPSIS = "……"


class VoiceConfig(BaseModel):
    """The `[channels.voice]` keys both providers take; each provider's model adds its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["aliyun", "tencent"]
    endpoint: str
    # `?token=` on the receipt URL; without one every call-result push is refused and no call ever counts as reached.
    receipt_token: SecretStr | None = None
    play_times: int = Field(default=2, ge=1, le=3)  # how often the text is read out in one call (providers: 1-3)
    max_calls: int = Field(default=DEFAULT_MAX_CALLS, ge=1, le=5)  # calls per delivery, the first included
    call_interval: float | None = Field(default=None, ge=MIN_CALL_INTERVAL)  # seconds; None: the provider's default
    templates: dict[str, str] = Field(default_factory=dict)  # topic → the provider's template id
    rate_per_second: float = Field(default=20.0, gt=0)  # call requests per second for the account
    max_batch: int = Field(default=50, ge=1, le=1000)  # recipients per send() (one request each)
    max_chars: int | None = Field(default=None, ge=20)  # spoken text budget; None: the provider's limit
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("templates")
    @classmethod
    def _ids(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not template for template in value.values()):
            raise ValueError("a topic's template id is empty")
        return value


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How often, and how far apart, one delivery is called."""

    max_calls: int = DEFAULT_MAX_CALLS
    min_interval: float = MIN_CALL_INTERVAL

    def next_call_at(self, calls_made: int, last_call_at: float, now: float,
                     expires_at: float | None) -> float | None:
        """When to call again after a `retry` receipt (unix seconds), or None when no call is left: `max_calls`
        made, or the next one would not start before the alert expires."""
        if calls_made >= self.max_calls:
            return None
        at = max(now, last_call_at + self.min_interval)
        if expires_at is not None and at >= expires_at:
            return None
        return at


def spoken_values(message: Message) -> dict[str, str]:
    """What a provider template variable may read out: the spoken text and the voice template's field blocks
    (`field_headline`, `field_level`… written for the ear, e.g. 橙色预警), never the URL: a link cannot be heard."""
    fields = message.fields
    return {"text": message.text, "headline": fields.get("headline", message.headline),
            **{name: fields.get(name, "") for name in ("level", "department", "topic")}}


def check_sources(names: list[str] | dict[str, str]) -> None:
    """A config validator: every source named is a spoken value."""
    sources = names.values() if isinstance(names, dict) else names
    unknown = sorted(set(sources) - set(SPOKEN_SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; allowed: {', '.join(SPOKEN_SOURCES)}")


def fit_spoken(text: str, limit: int) -> str:
    """`text` within `limit` characters: whole sentences where one fits, else cut with "……". The renderer's
    templates keep within budget; this only guards a long publisher text from failing the call."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = max(head.rfind(mark) for mark in _SENTENCE_ENDS)
    if end >= limit // 3:  # a whole first third or more: better than a word cut off
        return head[:end + 1]
    return head[:limit - len(ELLIPSIS)] + ELLIPSIS


def call_id_key(call_id: str, *parts: str) -> str:
    """A receipt's dedupe key: the call and what the report says (a repeat of the same report is dropped)."""
    return ":".join((call_id, *parts))
