"""Catalogue deadlines (发布时限): a topic's structured schedule, its periods and due moments, and whether each
scheduled disclosure came on time.

A schedule is data (SPEC "Catalogue deadlines"), always read in Asia/Shanghai:

    {"every": "month", "by_day": 20}        monthly, by the end of the 20th (a day past the month's end: its last day)
    {"every": "week", "by_weekday": 1}      weekly (ISO weeks, Monday to Sunday), by the end of Monday (1) … Sunday (7)
    {"every": "day", "by_time": "16:00"}    daily, by 16:00 that day
    null                                    no schedule

The `by_…` key may be left out: then the disclosure is due by the end of its period (the month's last day, Sunday,
midnight). A `by_time` is itself the deadline — "每日16时前" means 16:00, not the end of the day; end-of-day applies to
deadlines that name a day. An optional `since` (`YYYY-MM` or `YYYY-MM-DD`) says from when compliance is owed; without
one it is owed from the period in which the schedule was set. A period is owed when it contains that moment or
starts after it (one rule for both forms).

Periods of a month (`?period=YYYY-MM`): the month itself for a monthly schedule; each ISO week whose due day falls in
the month for a weekly one; each day of the month for a daily one. A period's status, given the first public alert
of the topic in it (`published_at`) and the clock (`now`):

    on_time   published no later than the due moment
    late      published in the period, after the due moment
    overdue   not published, and the due moment has passed
    not_due   not published, and the due moment is still ahead

`due_at` is shown to the second (23:59:59 for an end-of-day deadline) and compared to the second: anything before
midnight is on time. The store keeps a topic's schedule in a TEXT column for now: `to_stored` / `from_stored` turn a
schedule into that text (canonical JSON) and back; old free-text values still read, as "no structured schedule"
with their text kept for display. `schedule_words` says a schedule in words for the public /catalogue.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from notifier.localtime import LOCAL_TZ

_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_ONE_SECOND = timedelta(seconds=1)
_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(ValueError):
    """A schedule, a period or a stored schedule text is not acceptable; the message says which field and why."""


class Every(StrEnum):
    MONTH = "month"
    WEEK = "week"
    DAY = "day"


class ComplianceStatus(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    OVERDUE = "overdue"
    NOT_DUE = "not_due"


_OWN_KEY = {Every.MONTH: "by_day", Every.WEEK: "by_weekday", Every.DAY: "by_time"}


class Schedule(BaseModel):
    """A topic's disclosure schedule (Asia/Shanghai); each `every` takes only its own `by_…` key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Every
    by_day: int | None = Field(default=None, ge=1, le=31, description="monthly: day of the month (past its end: "
                                                                         "the last day)")
    by_weekday: int | None = Field(default=None, ge=1, le=7, description="weekly: ISO weekday, 1 Monday … 7 Sunday")
    by_time: str | None = Field(default=None, description="daily: HH:MM, Asia/Shanghai")
    since: str | None = Field(default=None, description="YYYY-MM or YYYY-MM-DD: compliance owed from then")

    @field_validator("by_time")
    @classmethod
    def _hh_mm(cls, value: str | None) -> str | None:
        if value is not None and not _HH_MM.fullmatch(value):
            raise ValueError("by_time must be HH:MM between 00:00 and 23:59, e.g. 16:00")
        return value

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if _MONTH.fullmatch(value):
            return value
        if _DAY.fullmatch(value):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"since {value!r} is not a calendar date") from None
            return value
        raise ValueError("since must be YYYY-MM or YYYY-MM-DD, e.g. 2026-05")

    @model_validator(mode="after")
    def _own_key_only(self) -> Schedule:
        own = _OWN_KEY[self.every]
        for key in _OWN_KEY.values():
            if key != own and getattr(self, key) is not None:
                raise ValueError(f"{key} does not apply to every = {self.every.value!r} (use {own})")
        return self

    def since_start(self) -> datetime | None:
        """The first moment `since` names (midnight of its day, or of its month's first day), local time."""
        if self.since is None:
            return None
        day = date.fromisoformat(self.since + "-01" if _MONTH.fullmatch(self.since) else self.since)
        return _midnight(day)


# ---------------------------------------------------------------- stored text


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """What a topic's stored schedule text means: a structured schedule, or free text kept for display only."""

    schedule: Schedule | None
    text: str | None = None  # the free text of an old, unstructured schedule


def parse_schedule(value: object) -> Schedule | None:
    """A schedule from an API body or catalogue file (a mapping, or None); ScheduleError names the field."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScheduleError('schedule must be an object such as {"every": "month", "by_day": 20}, or null')
    try:
        return Schedule.model_validate(dict(value))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'schedule'}: {err['msg']}"
                             for err in exc.errors())
        raise ScheduleError(f"schedule: {problems}") from None


def to_stored(schedule: Schedule | None) -> str | None:
    """The TEXT column form: canonical JSON (sorted keys, no blanks, unset keys left out), or None."""
    if schedule is None:
        return None
    return json.dumps(schedule.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def from_stored(text: str | None) -> StoredSchedule:
    """Read the TEXT column: JSON of a schedule → structured; anything else (old free text) → kept as text."""
    if text is None or not text.strip():
        return StoredSchedule(None)
    if text.lstrip().startswith("{"):
        try:
            data: Any = json.loads(text)
            return StoredSchedule(parse_schedule(data))
        except (ValueError, ScheduleError):  # JSON-looking free text: shown as it was written
            pass
    return StoredSchedule(None, text)


# ---------------------------------------------------------------- periods and deadlines


@dataclass(frozen=True, slots=True)
class Period:
    """One disclosure owed: `start` ≤ t < `end` is when it counts; due by `due_at` (to the second, local time)."""

    key: str  # 2026-05 | 2026-W21 | 2026-05-20
    start: datetime
    end: datetime
    due_at: datetime


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ)


def _end_of(day: date) -> datetime:
    return _midnight(day + timedelta(days=1)) - _ONE_SECOND


def parse_month(period: str) -> tuple[int, int]:
    """`YYYY-MM` (the `?period=` query) → (year, month); ScheduleError otherwise."""
    if not _MONTH.fullmatch(period):
        raise ScheduleError(f"period {period!r} must be a month, YYYY-MM, e.g. 2026-05")
    return int(period[:4]), int(period[5:])


def _month_period(schedule: Schedule, year: int, month: int) -> Period:
    last = calendar.monthrange(year, month)[1]
    first = date(year, month, 1)
    due_day = date(year, month, min(schedule.by_day or last, last))
    return Period(f"{year:04d}-{month:02d}", _midnight(first), _midnight(date(year, month, last) + timedelta(days=1)),
                  _end_of(due_day))


def _week_periods(schedule: Schedule, year: int, month: int) -> list[Period]:
    weekday = schedule.by_weekday or 7
    last = calendar.monthrange(year, month)[1]
    periods = []
    for day in range(1, last + 1):
        due_day = date(year, month, day)
        if due_day.isoweekday() != weekday:
            continue
        monday = due_day - timedelta(days=weekday - 1)
        iso_year, iso_week, _ = monday.isocalendar()
        periods.append(Period(f"{iso_year:04d}-W{iso_week:02d}", _midnight(monday),
                              _midnight(monday + timedelta(days=7)), _end_of(due_day)))
    return periods


def _day_periods(schedule: Schedule, year: int, month: int) -> list[Period]:
    periods = []
    for day in range(1, calendar.monthrange(year, month)[1] + 1):
        current = date(year, month, day)
        if schedule.by_time is None:
            due = _end_of(current)
        else:
            due = datetime.combine(current, time.fromisoformat(schedule.by_time), LOCAL_TZ)
        periods.append(Period(current.isoformat(), _midnight(current), _midnight(current + timedelta(days=1)), due))
    return periods


def periods_of_month(schedule: Schedule, period: str, *, set_at: datetime) -> list[Period]:
    """The periods a `?period=YYYY-MM` query covers that are owed: those containing `since` (or, without one,
    `set_at`, when the schedule was set) or starting after it. Oldest first."""
    year, month = parse_month(period)
    if schedule.every is Every.MONTH:
        periods = [_month_period(schedule, year, month)]
    elif schedule.every is Every.WEEK:
        periods = _week_periods(schedule, year, month)
    else:
        periods = _day_periods(schedule, year, month)
    owed_from = schedule.since_start() or set_at
    return [p for p in periods if p.end > owed_from]


def search_window(periods: Iterable[Period]) -> tuple[datetime, datetime] | None:
    """[start, end) covering every period: one store query finds the release times to bucket with `first_in`."""
    listed = list(periods)
    if not listed:
        return None
    return min(p.start for p in listed), max(p.end for p in listed)


def first_in(period: Period, published: Iterable[datetime]) -> datetime | None:
    """The first of `published` (release times of the topic's public alerts) inside the period."""
    inside = [moment for moment in published if period.start <= moment < period.end]
    return min(inside) if inside else None


def status_of(period: Period, published_at: datetime | None, now: datetime) -> ComplianceStatus:
    """on_time / late / overdue / not_due, compared to the second (see the module docstring)."""
    if published_at is not None:
        on_time = published_at.replace(microsecond=0) <= period.due_at
        return ComplianceStatus.ON_TIME if on_time else ComplianceStatus.LATE
    return ComplianceStatus.OVERDUE if now.replace(microsecond=0) > period.due_at else ComplianceStatus.NOT_DUE


@dataclass(frozen=True, slots=True)
class ComplianceItem:
    """One row of GET /v1/catalogue/compliance (times in Asia/Shanghai, ISO 8601 in JSON)."""

    topic: str
    department: str
    period: str
    due_at: datetime
    published_at: datetime | None
    status: ComplianceStatus

    def as_json(self) -> dict[str, str | None]:
        return {"topic": self.topic, "department": self.department, "period": self.period,
                "due_at": self.due_at.isoformat(),
                "published_at": self.published_at.astimezone(LOCAL_TZ).isoformat() if self.published_at else None,
                "status": self.status.value}


def compliance(topic: str, department: str, schedule: Schedule, period: str, *, set_at: datetime,
               published: Iterable[datetime], now: datetime) -> list[ComplianceItem]:
    """Every owed period of one scheduled topic in the month `period`, with its status.

    `published`: the release times of the topic's public, actual alerts within `search_window(…)` of the periods
    (what counts is the integrator's query; see docs/governance.md)."""
    times = sorted(published)
    items = []
    for owed in periods_of_month(schedule, period, set_at=set_at):
        first = first_in(owed, times)
        items.append(ComplianceItem(topic, department, owed.key, owed.due_at, first, status_of(owed, first, now)))
    return items


# ---------------------------------------------------------------- words for the public catalogue


def _since_words(schedule: Schedule, lang: str) -> str:
    if schedule.since is None:
        return ""
    day = date.fromisoformat(schedule.since + "-01" if _MONTH.fullmatch(schedule.since) else schedule.since)
    monthly = _MONTH.fullmatch(schedule.since) is not None
    if lang == "en":
        shown = day.strftime("%B %Y") if monthly else f"{day.day} {day.strftime('%B %Y')}"
        return f" (from {shown})"
    return f"（自{day.year}年{day.month}月起）" if monthly else f"（自{day.year}年{day.month}月{day.day}日起）"


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _zh(schedule: Schedule) -> str:
    if schedule.every is Every.MONTH:
        if schedule.by_day is None:
            return "每月月底前"
        return f"每月{schedule.by_day}日前" + ("（当月无此日则为月末）" if schedule.by_day > 28 else "")
    if schedule.every is Every.WEEK:
        return f"每周{_WEEKDAYS_ZH[(schedule.by_weekday or 7) - 1]}前"
    return f"每日{schedule.by_time}前（北京时间）" if schedule.by_time else "每日（当日内）"


def _en(schedule: Schedule) -> str:
    if schedule.every is Every.MONTH:
        if schedule.by_day is None:
            return "Monthly, by the end of the month"
        tail = " (or the month's last day)" if schedule.by_day > 28 else ""
        return f"Monthly, by the {_ordinal(schedule.by_day)}{tail}"
    if schedule.every is Every.WEEK:
        return f"Weekly, by {_WEEKDAYS_EN[(schedule.by_weekday or 7) - 1]}"
    return f"Daily, by {schedule.by_time} Beijing time" if schedule.by_time else "Daily, by the end of the day"


def schedule_words(stored: StoredSchedule | Schedule | None, lang: str = "zh-CN") -> str | None:
    """A schedule in words (zh-CN, or `en`), e.g. 每月20日前 / Monthly, by the 20th; free text as written."""
    if isinstance(stored, StoredSchedule):
        if stored.schedule is None:
            return stored.text
        stored = stored.schedule
    if stored is None:
        return None
    english = lang.lower().startswith("en")
    return (_en(stored) if english else _zh(stored)) + _since_words(stored, "en" if english else "zh-CN")
