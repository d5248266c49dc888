"""Helpers for reading providers' callbacks (SMS reports and replies, call results): JSON arrays (or lone objects)
of reports in China time, validated without ever quoting a value back, since the values are phone numbers.

The `Uplink` (an SMS reply) shape lives in `channels.sms.aliyun`, which came first; `channels.sms.tencent` uses it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, TypeAdapter, ValidationError

# China Standard Time, UTC+8 all year (no daylight saving since 1991): the providers' callbacks write local time
# without an offset. A fixed offset, so that parsing needs no tz database on the host.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

T = TypeVar("T")
R = TypeVar("R")
_CODE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class CallbackFormatError(ValueError):
    """A callback body that is not in the provider's format; the text names fields, never their values."""


def _number_as_text(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# A string field that a provider may also send as a JSON number (nation codes, mobiles, times).
Text = Annotated[str, BeforeValidator(_number_as_text)]


def json_items(body: bytes) -> list[Any]:
    """A callback's JSON as a list: the documented array, or a lone object (some callbacks send one)."""
    try:
        data = json.loads(body)
    except ValueError:  # UnicodeDecodeError is a ValueError
        raise CallbackFormatError("callback body is not JSON") from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise CallbackFormatError("callback body is neither a JSON array nor an object")


def all_receipts(each: Iterable[list[R]]) -> list[R]:
    """The receipts of a whole push, from each report's (none, one or more), in the push's order. A provider module's
    `parse_receipts` is its `receipts_of` each of its `pushed_reports`, then this; the web layer takes those steps
    itself, `receipts_of` a slice of reports a turn of its event loop (a push of 500 SMS reports is milliseconds)."""
    return [receipt for receipts in each for receipt in receipts]


def validated_items(adapter: TypeAdapter[list[T]], body: bytes) -> list[T]:
    """The callback's items validated by `adapter`; CallbackFormatError naming the bad fields, not their values."""
    try:
        return adapter.validate_python(json_items(body))
    except ValidationError as exc:
        # `from None` and locations only: pydantic's own text quotes the input, phone numbers included.
        where = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors())
        raise CallbackFormatError(f"invalid callback field(s): {where}") from None


# The providers' two forms of a time: "2015-10-17 08:03:04" (strptime's %m and the rest took one digit too), and
# "20151017080304". Read by a pattern, not strptime: a million SMS send back a million reports, each with its time,
# on the event loop that sends: strptime was over half of a report's parsing under the profiler; alone, 6.5 µs (8.8
# for the second form) against 2.3–2.5.
_TIME_FORMS = (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})"),
               re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})"))


@functools.lru_cache(maxsize=4096)
def china_time(value: str) -> float | None:
    """Unix seconds of "2015-10-17 08:03:04" (or "20151017080304") read as China time; None when not in a form.
    Remembered: the reports of one push mostly share their second (500 of a request's numbers, reported together)."""
    text = value.strip()
    for form in _TIME_FORMS:
        if (match := form.fullmatch(text)) is not None:
            try:
                year, month, day, hour, minute, second = map(int, match.groups())
                return datetime(year, month, day, hour, minute, second, tzinfo=CHINA_TZ).timestamp()
            except ValueError:  # no such day or time
                return None
    return None


def clean_code(value: object) -> str:
    """A provider code fit for an error text: codes only, never free text that could carry a number."""
    text = str(value).strip()
    return text if _CODE.match(text) else "UnknownCode"
