"""Quiet hours: when a non-urgent delivery that falls inside a subscriber's quiet window may go out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from subscriptions.quiet_hours import CITY_TZ, format_hhmm, parse_hhmm, quiet_until

NIGHT = (22 * 60, 7 * 60)  # 22:00–07:00, wraps midnight
LUNCH = (12 * 60, 14 * 60)  # 12:00–14:00, does not


def shanghai(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=CITY_TZ)


@pytest.mark.parametrize(("text", "minutes"), [
    ("00:00", 0), ("07:30", 450), ("7:30", 450), ("22:00", 1320), ("23:59", 1439), (" 22:00 ", 1320),
])
def test_hhmm_is_read_as_minutes_since_midnight(text: str, minutes: int) -> None:
    """A time written HH:MM (or H:MM) is read as minutes since midnight."""
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:00", "12:60", "7", "07:5", "07-30", "07:30:00", "", "ab:cd", "٠٧:٣٠", "-1:00"])
def test_anything_but_a_24_hour_time_is_refused(text: str) -> None:
    """Out-of-range hours or minutes, other separators, seconds and non-ASCII digits are refused."""
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)


@pytest.mark.parametrize(("minutes", "text"), [(0, "00:00"), (450, "07:30"), (1439, "23:59")])
def test_minutes_are_written_as_hhmm(minutes: int, text: str) -> None:
    """Minutes since midnight are written back as zero-padded HH:MM."""
    assert format_hhmm(minutes) == text


@pytest.mark.parametrize("minutes", [-1, 1440])
def test_minutes_outside_a_day_cannot_be_written(minutes: int) -> None:
    """A minute count outside 0–1439 is refused rather than written as a wrong time."""
    with pytest.raises(ValueError, match="between 0 and 1439"):
        format_hhmm(minutes)


def test_late_evening_inside_a_night_window_waits_until_next_morning() -> None:
    """At 23:10 with quiet hours 22:00–07:00, a delivery waits until 07:00 the next morning."""
    assert quiet_until(shanghai(10, 23, 10), *NIGHT) == shanghai(11, 7)


def test_early_morning_inside_a_night_window_waits_until_that_morning() -> None:
    """At 03:00 with quiet hours 22:00–07:00, a delivery waits until 07:00 the same morning."""
    assert quiet_until(shanghai(11, 3), *NIGHT) == shanghai(11, 7)


def test_window_start_is_quiet() -> None:
    """At exactly 22:00 the window has begun and the delivery waits."""
    assert quiet_until(shanghai(10, 22), *NIGHT) == shanghai(11, 7)


def test_window_end_is_not_quiet() -> None:
    """At exactly 07:00 the window is over and the delivery goes out."""
    assert quiet_until(shanghai(11, 7), *NIGHT) is None


def test_daytime_outside_a_night_window_goes_out_at_once() -> None:
    """At 15:00 with quiet hours 22:00–07:00 there is nothing to wait for."""
    assert quiet_until(shanghai(10, 15), *NIGHT) is None


def test_inside_a_daytime_window_waits_until_its_end() -> None:
    """At 12:30 with quiet hours 12:00–14:00 (not wrapping midnight), a delivery waits until 14:00."""
    assert quiet_until(shanghai(10, 12, 30), *LUNCH) == shanghai(10, 14)


@pytest.mark.parametrize("hour", [11, 14, 23, 3])
def test_outside_a_daytime_window_goes_out_at_once(hour: int) -> None:
    """Before, at the end of, or long after a 12:00–14:00 window, nothing waits."""
    assert quiet_until(shanghai(10, hour), *LUNCH) is None


def test_seconds_before_the_end_still_wait_for_the_exact_end() -> None:
    """At 06:59:59 the delivery waits until 07:00:00 sharp, not 06:59 or 07:01."""
    assert quiet_until(shanghai(11, 6, 59, 59), *NIGHT) == shanghai(11, 7)


def test_utc_time_is_judged_by_shanghai_wall_clock() -> None:
    """15:10 UTC is 23:10 in Shanghai: inside 22:00–07:00, so it waits until 23:00 UTC (07:00 Shanghai)."""
    until = quiet_until(datetime(2025, 3, 10, 15, 10, tzinfo=UTC), *NIGHT)
    assert until == datetime(2025, 3, 10, 23, 0, tzinfo=UTC)


def test_answer_is_aware_and_in_the_callers_time_zone() -> None:
    """The end of the window comes back timezone-aware, in the time zone `now` was given in."""
    until = quiet_until(datetime(2025, 3, 10, 15, 10, tzinfo=UTC), *NIGHT)
    assert until is not None
    assert until.tzinfo is UTC


@pytest.mark.parametrize("day", [(2025, 3, 30), (2025, 10, 26), (2025, 3, 9), (2025, 11, 2)])
def test_european_and_american_clock_changes_do_not_shift_the_window(day: tuple[int, int, int]) -> None:
    """On nights when other countries change their clocks, the window still ends at 07:00 Shanghai, 9 hours later."""
    now = datetime(*day, 22, 0, tzinfo=CITY_TZ)
    until = quiet_until(now, *NIGHT)
    assert until is not None
    assert until - now == timedelta(hours=9)
    assert until.astimezone(CITY_TZ).hour == 7


def test_window_across_new_year_ends_in_the_new_year() -> None:
    """At 23:30 on 31 December, a 22:00–07:00 window ends at 07:00 on 1 January."""
    now = datetime(2025, 12, 31, 23, 30, tzinfo=CITY_TZ)
    assert quiet_until(now, *NIGHT) == datetime(2026, 1, 1, 7, 0, tzinfo=CITY_TZ)


def test_other_fixed_offset_is_converted() -> None:
    """A time given at +09:00 (Tokyo 00:10 = Shanghai 23:10) is judged by Shanghai's clock."""
    tokyo = timezone(timedelta(hours=9))
    until = quiet_until(datetime(2025, 3, 11, 0, 10, tzinfo=tokyo), *NIGHT)
    assert until == datetime(2025, 3, 11, 8, 0, tzinfo=tokyo)


@pytest.mark.parametrize(("start", "end"), [(None, None), (None, 420), (1320, None), (600, 600)])
def test_no_window_or_an_empty_one_never_waits(start: int | None, end: int | None) -> None:
    """Without quiet hours, or with start equal to end, a delivery goes out at once."""
    assert quiet_until(shanghai(10, 23), start, end) is None


def test_naive_time_is_refused() -> None:
    """A time without a time zone is refused instead of being guessed as the server's local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(datetime(2025, 3, 10, 23, 0), *NIGHT)  # naive on purpose


@pytest.mark.parametrize(("start", "end"), [(-1, 420), (1320, 1440)])
def test_window_outside_a_day_is_refused(start: int, end: int) -> None:
    """Stored minutes outside 0–1439 are an error, not a window that never or always matches."""
    with pytest.raises(ValueError, match="0 to 1439"):
        quiet_until(shanghai(10, 23), start, end)
