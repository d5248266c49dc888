"""Quiet hours: a daily window, in Asia/Shanghai, during which non-urgent deliveries wait.

A window is two wall-clock times, minutes since midnight. `start` is inside the window and `end` is not; when
`end` is earlier than `start` the window wraps midnight (22:00–07:00). Equal times make no window at all.
China has kept no daylight saving time since 1991, so a local day is always 1440 minutes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")
MINUTES_PER_DAY = 1440
_HHMM = re.compile(r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})")


def parse_hhmm(value: str) -> int:
    """Minutes since midnight of "HH:MM" (24-hour clock, "7:30" allowed); ValueError otherwise."""
    match = _HHMM.fullmatch(value.strip())
    if not match:
        raise ValueError("time must be HH:MM, e.g. 22:00")
    hours, minutes = int(match["h"]), int(match["m"])
    if hours >= 24 or minutes >= 60:
        raise ValueError("time must be HH:MM between 00:00 and 23:59")
    return hours * 60 + minutes


def format_hhmm(minutes: int) -> str:
    """ "HH:MM" of minutes since midnight."""
    if not 0 <= minutes < MINUTES_PER_DAY:
        raise ValueError("minutes since midnight must be between 0 and 1439")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def quiet_until(now: datetime, start: int | None, end: int | None) -> datetime | None:
    """When the quiet window that contains `now` ends, or None when `now` is outside it (or there is none).

    `now` must be timezone-aware; the answer is in `now`'s time zone, at the window's end to the second
    (22:00–07:00 at 23:10 → 07:00 the next morning, Asia/Shanghai).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if start is None or end is None or start == end:
        return None
    if not (0 <= start < MINUTES_PER_DAY and 0 <= end < MINUTES_PER_DAY):
        raise ValueError("quiet hours must be minutes since midnight, 0 to 1439")
    local = now.astimezone(CITY_TZ)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    wait = (end - minute) % MINUTES_PER_DAY
    until = local.replace(second=0, microsecond=0) + timedelta(minutes=wait)
    return until.astimezone(now.tzinfo)
