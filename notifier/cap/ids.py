"""Who says a CAP message and how it is named: `[cap]` settings, GB/T 35965.1 identifiers, idempotency keys.

GB/T 35965.1-2018 (应急信息交互协议 第1部分：预警信息), normative annex A "取值规则及说明", as quoted by public
copies of the annex (the standard's own text could not be consulted here):

    identifier   ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N          31 characters
    ZZZZZZDDDUUUXX  the issuing unit's code (发布单位代码), 14 digits:
        ZZZZZZ   GB/T 2260 administrative division code (6)
        DDD      GB/T 4657 organisation / sector code (3)
        UUU      the unit's internal secondary code, default 000 (3)
        XX       extension, default 00 (2)
    YYYYMMDDhhmmss  when the warning was entered, Beijing time
    N            serial 0-9 of the unit's warnings entered in that same second, from 0

`[cap] sender_code` holds the 14-digit unit code. Some provincial profiles (e.g. Tianjin's DB12/T 1128-2022) use an
11-digit unit code without UUU; such a code is accepted too and used as given. The standard leaves `sender` to the
issuing system; ours is `[cap] sender` (default: the host of `[server] public_url`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from notifier.localtime import LOCAL_TZ

_SENDER_CODE = re.compile(r"[0-9]{6}[0-9]{3}(?:[0-9]{3})?[0-9]{2}")  # ZZZZZZ DDD [UUU] XX
_GBT_IDENTIFIER = re.compile(r"(?P<unit>[0-9]{11}|[0-9]{14})_(?P<entered>[0-9]{14})_(?P<serial>[0-9])")
_CAP_TOKEN = re.compile(r"[^\s,<&]+")
MAX_SERIAL = 9


class CapSettings(BaseModel):
    """`[cap]` in the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str | None = Field(default=None, description="CAP sender (no spaces or commas), e.g. "
                                                           "notify.changzhi.gov.cn; default: the public_url host")
    sender_code: str | None = Field(default=None, description="GB/T 35965.1 issuing unit code (14 digits: GB/T 2260 "
                                                                "region, GB/T 4657 sector, unit, extension)")

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not _CAP_TOKEN.fullmatch(value):
            raise ValueError("a CAP sender has no spaces, commas, '<' or '&'")
        return value

    @field_validator("sender_code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is not None and not _SENDER_CODE.fullmatch(value):
            raise ValueError("sender_code is the GB/T 35965.1 unit code: 14 digits (6 region, 3 sector, 3 unit, "
                             "2 extension), e.g. 14040000100000")
        return value


@dataclass(frozen=True, slots=True)
class GbtIdentifier:
    unit: str
    entered: datetime  # Beijing time, whole seconds
    serial: int

    def text(self) -> str:
        return f"{self.unit}_{self.entered.astimezone(LOCAL_TZ).strftime('%Y%m%d%H%M%S')}_{self.serial}"


def gbt_identifier(sender_code: str, entered: datetime | float, serial: int = 0) -> str:
    """`ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N`; `serial` counts the unit's alerts entered in the same second (0-9)."""
    if not _SENDER_CODE.fullmatch(sender_code):
        raise ValueError(f"sender_code {sender_code!r} is not a GB/T 35965.1 unit code")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError("GB/T 35965.1 numbers at most 10 warnings of one unit in one second (serial 0-9)")
    moment = entered if isinstance(entered, datetime) else datetime.fromtimestamp(entered, LOCAL_TZ)
    return GbtIdentifier(sender_code, moment.astimezone(LOCAL_TZ).replace(microsecond=0), serial).text()


def parse_gbt_identifier(identifier: str) -> GbtIdentifier | None:
    """The parts of a GB/T 35965.1 identifier, or None for any other form."""
    match = _GBT_IDENTIFIER.fullmatch(identifier)
    if not match:
        return None
    try:
        entered = datetime.strptime(match["entered"], "%Y%m%d%H%M%S").replace(tzinfo=LOCAL_TZ)
    except ValueError:
        return None
    return GbtIdentifier(match["unit"], entered, int(match["serial"]))


def own_identifier(alert_id: str, created_at: float, settings: CapSettings, serial: int = 0) -> str:
    """The identifier our own alert carries in CAP, fixed when it is published (store it): GB/T 35965.1 form
    when `[cap] sender_code` is set, else the alert's id (32 hex characters, a valid CAP identifier)."""
    if settings.sender_code is None:
        return alert_id
    return gbt_identifier(settings.sender_code, created_at, serial)


def own_sender(settings: CapSettings, public_host: str) -> str:
    """`[cap] sender`, or the host of the public URL."""
    return settings.sender or public_host


@dataclass(frozen=True, slots=True)
class CapIdentity:
    """Who our own alerts are in CAP: the sender, and the GB/T 35965.1 unit code when one is configured. The
    store gives every alert it keeps its identifier with it (`notifier.store.cap`)."""

    sender: str
    sender_code: str | None = None

    @classmethod
    def of(cls, settings: CapSettings, public_url: str) -> CapIdentity:
        """From `[cap]` and `[server] public_url` (whose host is the default sender)."""
        return cls(own_sender(settings, urlsplit(public_url).hostname or DEFAULT_SENDER), settings.sender_code)

    def candidates(self, alert_id: str, second: int) -> list[str]:
        """The identifiers an alert entered in that second may take, in order (one: its id, without a code)."""
        if self.sender_code is None:
            return [alert_id]
        return [gbt_identifier(self.sender_code, float(second), serial) for serial in range(MAX_SERIAL + 1)]


DEFAULT_SENDER = "localhost"


def cap_key(sender: str, identifier: str) -> str:
    """The idempotency key of a CAP message: the same sender + identifier is the same alert."""
    digest = hashlib.sha256(f"{sender}\n{identifier}".encode()).hexdigest()
    return f"cap:{digest}"
