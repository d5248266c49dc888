"""Catalogue deadlines: structured schedules, their periods and due moments, compliance status, stored text, words."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from notifier.rendering import LOCAL_TZ
from notifier.schedule import (
    ComplianceStatus,
    Schedule,
    ScheduleError,
    StoredSchedule,
    compliance,
    first_in,
    from_stored,
    parse_month,
    parse_schedule,
    periods_of_month,
    schedule_words,
    search_window,
    status_of,
    to_stored,
)

MONTHLY_20 = Schedule.model_validate({"every": "month", "by_day": 20})
LONG_AGO = datetime(2020, 1, 1, tzinfo=LOCAL_TZ)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=LOCAL_TZ)  # type: ignore[misc]


def statuses(schedule: Schedule, period: str, published: list[datetime], now: datetime,
             set_at: datetime = LONG_AGO) -> list[tuple[str, ComplianceStatus]]:
    items = compliance("env.monthly-ranking", "市环保局", schedule, period, set_at=set_at, published=published,
                       now=now)
    return [(item.period, item.status) for item in items]


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("body", [
    {"every": "month", "by_day": 20},
    {"every": "week", "by_weekday": 1},
    {"every": "day", "by_time": "16:00"},
    {"every": "month", "by_day": 31, "since": "2026-05"},
    {"every": "day", "since": "2026-05-10"},
])
def test_the_spec_shapes_are_accepted(body: dict[str, object]) -> None:
    """The schedule shapes SPEC names (and `since` in both forms) are valid schedules."""
    assert parse_schedule(body) is not None


@pytest.mark.parametrize(("body", "field"), [
    ({"every": "year"}, "every"),
    ({"every": "month", "by_day": 0}, "by_day"),
    ({"every": "month", "by_day": 32}, "by_day"),
    ({"every": "week", "by_weekday": 8}, "by_weekday"),
    ({"every": "day", "by_time": "24:00"}, "by_time"),
    ({"every": "day", "by_time": "9:00"}, "by_time"),
    ({"every": "month", "by_weekday": 1}, "by_weekday"),
    ({"every": "day", "by_day": 3}, "by_day"),
    ({"every": "month", "since": "2026-13"}, "since"),
    ({"every": "month", "since": "2026-02-30"}, "since"),
    ({"every": "month", "by_day": 20, "note": "x"}, "note"),
])
def test_a_bad_schedule_is_refused_naming_its_field(body: dict[str, object], field: str) -> None:
    """A malformed schedule is refused with a message that names the offending key."""
    with pytest.raises(ScheduleError, match=field):
        parse_schedule(body)


def test_a_schedule_must_be_an_object() -> None:
    """Free text where a structured schedule is required is refused with an example of the right form."""
    with pytest.raises(ScheduleError, match="every"):
        parse_schedule("每月20日前")


# ---------------------------------------------------------------- due moments


def test_monthly_due_at_the_end_of_the_named_day() -> None:
    """A monthly schedule by the 20th is due at the last second of the 20th, Beijing time."""
    [period] = periods_of_month(MONTHLY_20, "2026-05", set_at=LONG_AGO)
    assert period.due_at == local(2026, 5, 20, 23, 59, 59)
    assert (period.start, period.end) == (local(2026, 5, 1), local(2026, 6, 1))


@pytest.mark.parametrize(("month", "last"), [("2026-02", 28), ("2028-02", 29), ("2026-04", 30)])
def test_a_day_past_the_months_end_means_its_last_day(month: str, last: int) -> None:
    """by_day 31 in a shorter month is due at the end of that month's last day (leap years included)."""
    schedule = Schedule.model_validate({"every": "month", "by_day": 31})
    [period] = periods_of_month(schedule, month, set_at=LONG_AGO)
    assert period.due_at.day == last and period.due_at.hour == 23


def test_a_monthly_schedule_without_a_day_is_due_by_the_months_end() -> None:
    """{"every": "month"} is due at the end of the month's last day."""
    [period] = periods_of_month(Schedule.model_validate({"every": "month"}), "2026-06", set_at=LONG_AGO)
    assert period.due_at == local(2026, 6, 30, 23, 59, 59)


def test_weekly_periods_are_the_weeks_whose_due_day_falls_in_the_month() -> None:
    """A Monday deadline in June 2026 gives the five ISO weeks whose Monday is in June."""
    schedule = Schedule.model_validate({"every": "week", "by_weekday": 1})
    periods = periods_of_month(schedule, "2026-06", set_at=LONG_AGO)
    assert [p.key for p in periods] == ["2026-W23", "2026-W24", "2026-W25", "2026-W26", "2026-W27"]
    assert [p.due_at.day for p in periods] == [1, 8, 15, 22, 29]
    assert all(p.end - p.start == timedelta(days=7) for p in periods)


def test_a_week_straddling_two_months_belongs_to_the_month_of_its_due_day() -> None:
    """A Sunday deadline: the week of Mon 29 June – Sun 5 July 2026 is owed in July, not June."""
    schedule = Schedule.model_validate({"every": "week", "by_weekday": 7})
    june = [p.key for p in periods_of_month(schedule, "2026-06", set_at=LONG_AGO)]
    july = periods_of_month(schedule, "2026-07", set_at=LONG_AGO)
    assert "2026-W27" not in june and july[0].key == "2026-W27"
    assert july[0].start == local(2026, 6, 29) and july[0].due_at == local(2026, 7, 5, 23, 59, 59)


def test_a_daily_time_is_itself_the_deadline() -> None:
    """by_time 16:00 on a daily schedule is due at 16:00 that day, one period per day of the month."""
    schedule = Schedule.model_validate({"every": "day", "by_time": "16:00"})
    periods = periods_of_month(schedule, "2026-02", set_at=LONG_AGO)
    assert len(periods) == 28 and periods[9].key == "2026-02-10"
    assert periods[9].due_at == local(2026, 2, 10, 16, 0)


def test_a_daily_schedule_without_a_time_is_due_by_midnight() -> None:
    """{"every": "day"} is due at the last second of each day."""
    periods = periods_of_month(Schedule.model_validate({"every": "day"}), "2026-05", set_at=LONG_AGO)
    assert periods[0].due_at == local(2026, 5, 1, 23, 59, 59)


@pytest.mark.parametrize("period", ["2026-5", "2026-00", "26-05", "2026-05-01", "May"])
def test_a_bad_period_query_is_refused(period: str) -> None:
    """?period= takes YYYY-MM only; anything else is a clear error."""
    with pytest.raises(ScheduleError, match="YYYY-MM"):
        parse_month(period)


# ---------------------------------------------------------------- since


def test_compliance_is_owed_from_the_period_in_which_the_schedule_was_set() -> None:
    """Set on 25 May, a monthly schedule is owed for May (already overdue) and not for April."""
    set_at = local(2026, 5, 25, 10, 0)
    now = local(2026, 5, 25, 10, 1)
    assert statuses(MONTHLY_20, "2026-04", [], now, set_at) == []
    assert statuses(MONTHLY_20, "2026-05", [], now, set_at) == [("2026-05", ComplianceStatus.OVERDUE)]


def test_since_a_month_overrides_when_the_schedule_was_set() -> None:
    """since = 2026-07: June is not owed even though the schedule was set long before."""
    schedule = Schedule.model_validate({"every": "month", "by_day": 20, "since": "2026-07"})
    now = local(2026, 8, 1)
    assert statuses(schedule, "2026-06", [], now) == []
    assert statuses(schedule, "2026-07", [], now) == [("2026-07", ComplianceStatus.OVERDUE)]


def test_since_a_date_owes_from_the_period_containing_it() -> None:
    """Daily since 2026-05-10: 1–9 May are not owed, 10–31 May are."""
    schedule = Schedule.model_validate({"every": "day", "since": "2026-05-10"})
    periods = periods_of_month(schedule, "2026-05", set_at=LONG_AGO)
    assert periods[0].key == "2026-05-10" and len(periods) == 22


# ---------------------------------------------------------------- status with a moving clock


def test_status_moves_from_not_due_to_overdue_as_the_clock_passes_the_deadline() -> None:
    """Unpublished: not_due at 23:59:59 on the 20th, overdue one second later (the 21st at 00:00)."""
    [period] = periods_of_month(MONTHLY_20, "2026-05", set_at=LONG_AGO)
    assert status_of(period, None, local(2026, 5, 20, 23, 59, 59)) is ComplianceStatus.NOT_DUE
    assert status_of(period, None, local(2026, 5, 21, 0, 0, 0)) is ComplianceStatus.OVERDUE


def test_published_before_midnight_is_on_time_and_after_is_late() -> None:
    """Published 20 May 23:59:59.9 → on_time; 21 May 00:00 → late."""
    [period] = periods_of_month(MONTHLY_20, "2026-05", set_at=LONG_AGO)
    now = local(2026, 6, 1)
    just_in = local(2026, 5, 20, 23, 59, 59) + timedelta(microseconds=900_000)
    assert status_of(period, just_in, now) is ComplianceStatus.ON_TIME
    assert status_of(period, local(2026, 5, 21), now) is ComplianceStatus.LATE


def test_a_publication_counts_early_even_before_the_deadline_passes() -> None:
    """Published on the 3rd, the period is on_time while the clock is still before the deadline."""
    assert statuses(MONTHLY_20, "2026-05", [local(2026, 5, 3, 9)], local(2026, 5, 4)) == [
        ("2026-05", ComplianceStatus.ON_TIME)]


def test_across_a_month_boundary_each_month_judges_its_own_publication() -> None:
    """May's ranking published on 2 June does not make May on time: May stays overdue, June is on time."""
    published = [local(2026, 6, 2, 10)]
    now = local(2026, 6, 3)
    assert statuses(MONTHLY_20, "2026-05", published, now) == [("2026-05", ComplianceStatus.OVERDUE)]
    assert statuses(MONTHLY_20, "2026-06", published, now) == [("2026-06", ComplianceStatus.ON_TIME)]


def test_the_month_boundary_is_midnight_beijing_time_not_utc() -> None:
    """An alert released at 31 May 23:30 Beijing (15:30 UTC) counts in May, at 1 June 00:30 Beijing in June."""
    schedule = Schedule.model_validate({"every": "month"})
    may_end = datetime.fromisoformat("2026-05-31T15:30:00+00:00")
    june_start = datetime.fromisoformat("2026-05-31T16:30:00+00:00")
    now = local(2026, 6, 2)
    assert statuses(schedule, "2026-05", [june_start], now) == [("2026-05", ComplianceStatus.OVERDUE)]
    assert statuses(schedule, "2026-05", [may_end], now) == [("2026-05", ComplianceStatus.ON_TIME)]


def test_the_first_publication_in_the_period_decides() -> None:
    """A late repeat does not spoil an on-time publication; an early one in the period wins."""
    [period] = periods_of_month(MONTHLY_20, "2026-05", set_at=LONG_AGO)
    first = first_in(period, [local(2026, 5, 25), local(2026, 5, 10), local(2026, 4, 30)])
    assert first == local(2026, 5, 10)


def test_daily_statuses_over_a_month_with_the_clock_mid_month() -> None:
    """Daily by 16:00, clock at 3 May 12:00: 1 May on time, 2 May late, 3 May not yet due, 4 May not due."""
    schedule = Schedule.model_validate({"every": "day", "by_time": "16:00"})
    published = [local(2026, 5, 1, 15, 59), local(2026, 5, 2, 16, 0, 1)]
    result = dict(statuses(schedule, "2026-05", published, local(2026, 5, 3, 12)))
    assert result["2026-05-01"] is ComplianceStatus.ON_TIME
    assert result["2026-05-02"] is ComplianceStatus.LATE
    assert result["2026-05-03"] is ComplianceStatus.NOT_DUE
    assert result["2026-05-04"] is ComplianceStatus.NOT_DUE


def test_search_window_spans_every_period() -> None:
    """One store query over [first start, last end) covers every weekly period of the month."""
    schedule = Schedule.model_validate({"every": "week", "by_weekday": 7})
    periods = periods_of_month(schedule, "2026-07", set_at=LONG_AGO)
    assert search_window(periods) == (local(2026, 6, 29), local(2026, 7, 27))
    assert search_window([]) is None


def test_compliance_rows_serialise_with_the_spec_names() -> None:
    """A compliance row carries topic, department, due_at, published_at and status (ISO 8601, +08:00)."""
    [item] = compliance("env.monthly-ranking", "市环保局", MONTHLY_20, "2026-05", set_at=LONG_AGO,
                        published=[datetime.fromisoformat("2026-05-19T02:00:00+00:00")], now=local(2026, 6, 1))
    assert item.as_json() == {"topic": "env.monthly-ranking", "department": "市环保局", "period": "2026-05",
                              "due_at": "2026-05-20T23:59:59+08:00", "published_at": "2026-05-19T10:00:00+08:00",
                              "status": "on_time"}


# ---------------------------------------------------------------- stored text and words


def test_a_schedule_survives_its_stored_text() -> None:
    """to_stored writes canonical JSON and from_stored reads the same schedule back."""
    schedule = Schedule.model_validate({"every": "week", "by_weekday": 5, "since": "2026-05"})
    text = to_stored(schedule)
    assert text == '{"by_weekday":5,"every":"week","since":"2026-05"}'
    assert from_stored(text) == StoredSchedule(schedule)
    assert to_stored(None) is None and from_stored(None) == StoredSchedule(None)


@pytest.mark.parametrize("text", ["每月20日前公开上月排名", '{"every": "fortnight"}', "{not json"])
def test_old_free_text_still_reads_as_text(text: str) -> None:
    """A free-text schedule (even one that looks like JSON) reads as no structured schedule, its text kept."""
    assert from_stored(text) == StoredSchedule(None, text)
    assert schedule_words(from_stored(text)) == text


@pytest.mark.parametrize(("body", "zh", "en"), [
    ({"every": "month", "by_day": 20}, "每月20日前", "Monthly, by the 20th"),
    ({"every": "month", "by_day": 31}, "每月31日前（当月无此日则为月末）",
     "Monthly, by the 31st (or the month's last day)"),
    ({"every": "month"}, "每月月底前", "Monthly, by the end of the month"),
    ({"every": "week", "by_weekday": 1}, "每周一前", "Weekly, by Monday"),
    ({"every": "week", "by_weekday": 7}, "每周日前", "Weekly, by Sunday"),
    ({"every": "day", "by_time": "16:00"}, "每日16:00前（北京时间）", "Daily, by 16:00 Beijing time"),
    ({"every": "day"}, "每日（当日内）", "Daily, by the end of the day"),
    ({"every": "month", "by_day": 2, "since": "2026-05"}, "每月2日前（自2026年5月起）",
     "Monthly, by the 2nd (from May 2026)"),
    ({"every": "month", "by_day": 22, "since": "2026-05-10"}, "每月22日前（自2026年5月10日起）",
     "Monthly, by the 22nd (from 10 May 2026)"),
])
def test_a_schedule_in_words(body: dict[str, object], zh: str, en: str) -> None:
    """The public catalogue says a schedule in Chinese first and English second."""
    schedule = parse_schedule(body)
    assert schedule_words(schedule) == zh and schedule_words(schedule, "en") == en
    assert schedule_words(from_stored(to_stored(schedule)), "zh-CN") == zh


def test_no_schedule_has_no_words() -> None:
    """A topic without a schedule shows nothing rather than an empty phrase."""
    assert schedule_words(None) is None and schedule_words(from_stored(None)) is None
