"""The one time zone of the service: Asia/Shanghai (Beijing time), in which messages, pages, CAP documents and
catalogue deadlines are written. A module of its own so that the domain's types (`models`, `schedule`) can use it
without importing the renderer."""

from __future__ import annotations

from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    LOCAL_TZ: tzinfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # no tz database on the host; China has kept UTC+8 without DST since 1991
    LOCAL_TZ = timezone(timedelta(hours=8), "CST")
