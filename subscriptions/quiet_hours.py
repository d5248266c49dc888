"""Quiet hours: a daily window, in Asia/Shanghai, during which non-urgent deliveries wait."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CITY_TZ = ZoneInfo("Asia/Shanghai")


def parse_hhmm(value: str) -> int:
    """Minutes since midnight of "HH:MM"; ValueError otherwise."""
    hours, sep, minutes = value.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        raise ValueError("time must be HH:MM")
    h, m = int(hours), int(minutes)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError("time must be HH:MM between 00:00 and 23:59")
    return h * 60 + m


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def quiet_until(now: datetime, start: int | None, end: int | None) -> datetime | None:
    """When the quiet window that contains `now` ends, or None when `now` is outside it (or there is none).

    `start`/`end` are minutes since midnight, local time; a window may wrap midnight (22:00–07:00).
    """
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(CITY_TZ)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    wait = (end - minute) % 1440
    until = local.replace(second=0, microsecond=0) + timedelta(minutes=wait)
    return until.astimezone(now.tzinfo) if now.tzinfo else until
