"""The constitution's windows on the NYSE calendar: DST, holiday weeks, early closes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from engine.market import calendar
from engine.market.calendar import windows_for
from tests.bundled_params import ATR, CADENCE
from tests.market.conftest import ny


def utc(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=UTC)


def test_windows_keep_new_york_wall_time_across_the_march_dst_change():
    friday, monday = (
        windows_for(date(2026, 3, 6), CADENCE),
        windows_for(date(2026, 3, 9), CADENCE),
    )  # DST began 03-08

    assert friday.atr_refresh == utc(date(2026, 3, 6), 14, 30)  # 09:30 EST
    assert friday.management.start == utc(date(2026, 3, 6), 19, 30)  # 14:30 EST
    assert friday.weekly_report == utc(date(2026, 3, 6), 21, 30)  # 16:30 EST
    assert monday.atr_refresh == utc(date(2026, 3, 9), 13, 30)  # 09:30 EDT
    assert monday.entry["com"].start == utc(date(2026, 3, 9), 13, 45)
    assert monday.entry["com"].end == utc(date(2026, 3, 9), 15, 0)
    assert monday.open == utc(date(2026, 3, 9), 13, 30)


def test_windows_across_the_november_dst_change_shift_utc_by_an_hour():
    before, after = (
        windows_for(date(2026, 10, 30), CADENCE),
        windows_for(date(2026, 11, 6), CADENCE),
    )  # DST ended 11-01

    assert before.management.start.astimezone(UTC).hour == 18
    assert after.management.start.astimezone(UTC).hour == 19
    assert before.weekly_report.astimezone(calendar.NEW_YORK).time() == time(16, 30)
    assert after.weekly_report.astimezone(calendar.NEW_YORK).time() == time(16, 30)


def test_thanksgiving_week_2026_has_no_gen_entry_and_an_early_friday():
    week = [windows_for(date(2026, 11, 23) + timedelta(days=i), CADENCE) for i in range(5)]
    thursday, friday = week[3], week[4]

    entries = {s: w.day for w in week for s in w.entry}
    assert entries == {"com": date(2026, 11, 23), "rev": date(2026, 11, 25)}
    assert not thursday.is_session and thursday.management is None and thursday.atr_refresh is None
    assert friday.early_close
    assert friday.close == ny(date(2026, 11, 27), 13, 0)


def test_early_close_moves_only_close_anchored_events_and_clips_to_the_close():
    friday = windows_for(date(2026, 11, 27), CADENCE)

    assert friday.atr_refresh == ny(date(2026, 11, 27), 9, 30)  # open-anchored: unmoved
    assert friday.management.start == ny(date(2026, 11, 27), 12, 30)  # 14:30 - 2 h
    assert friday.management.end == ny(date(2026, 11, 27), 13, 0)  # 13:45 clipped to the close
    assert friday.weekly_report == ny(date(2026, 11, 27), 14, 30)  # 16:30 - 2 h


def test_entry_window_on_an_early_close_day_does_not_move():
    christmas_eve = windows_for(date(2026, 12, 24), CADENCE)  # Thursday, closes 13:00

    assert christmas_eve.early_close
    assert christmas_eve.entry["gen"].start == ny(date(2026, 12, 24), 9, 45)
    assert christmas_eve.entry["gen"].end == ny(date(2026, 12, 24), 11, 0)
    # Friday 12-25 is a holiday, so Thursday is the week's last session: management happens here
    assert christmas_eve.management.start == ny(date(2026, 12, 24), 12, 30)
    assert christmas_eve.management.end == ny(date(2026, 12, 24), 13, 0)


def test_good_friday_moves_management_and_report_to_thursday():
    thursday, friday = (
        windows_for(date(2026, 4, 2), CADENCE),
        windows_for(date(2026, 4, 3), CADENCE),
    )

    assert not friday.is_session
    assert thursday.management.start == ny(date(2026, 4, 2), 14, 30)
    assert thursday.weekly_report == ny(date(2026, 4, 2), 16, 30)
    assert set(thursday.entry) == {"gen"}


def test_ordinary_days_have_no_management_window():
    assert windows_for(date(2026, 11, 18), CADENCE).management is None  # a Wednesday
    assert windows_for(date(2026, 11, 18), CADENCE).weekly_report is None
    assert set(windows_for(date(2026, 11, 18), CADENCE).entry) == {"rev"}


def test_cadence_times_and_shift_are_arguments():
    cadence = replace(
        CADENCE,
        management_start=time(13, 30),
        management_end=time(15, 0),
        weekly_report=time(17, 0),
        early_close_shift=timedelta(minutes=60),
    )

    friday = windows_for(date(2026, 11, 27), cadence)

    assert friday.management == calendar.Window(
        ny(date(2026, 11, 27), 12, 30), ny(date(2026, 11, 27), 13, 0)
    )
    assert friday.weekly_report == ny(date(2026, 11, 27), 16, 0)


def test_a_window_clipped_to_nothing_is_absent():
    cadence = replace(
        CADENCE, early_close_shift=timedelta(0)
    )  # 14:30 on a 13:00 close: nothing left

    assert windows_for(date(2026, 11, 27), cadence).management is None


def test_window_membership_is_half_open():
    w = windows_for(date(2026, 11, 19), CADENCE).entry["gen"]

    assert ny(date(2026, 11, 19), 9, 45) in w
    assert ny(date(2026, 11, 19), 10, 59, 59) in w
    assert ny(date(2026, 11, 19), 11, 0) not in w
    assert ny(date(2026, 11, 19), 9, 44, 59) not in w


def test_session_navigation_skips_weekends_and_holidays():
    assert calendar.previous_session(date(2026, 11, 27)) == date(2026, 11, 25)
    assert calendar.next_session(date(2026, 11, 25)) == date(2026, 11, 27)
    assert calendar.last_session_of_week(date(2026, 4, 1)) == date(2026, 4, 2)
    assert list(
        calendar.missing_sessions(
            calendar.sessions_between(date(2026, 11, 23), date(2026, 11, 30))[[0, 3]]
        )
    ) == [
        calendar.sessions_between(date(2026, 11, 24), date(2026, 11, 24))[0],
        calendar.sessions_between(date(2026, 11, 25), date(2026, 11, 25))[0],
    ]


def test_atr_in_force_before_and_after_the_0930_refresh():
    # Monday 09:00: Friday's refresh (bars through Thursday) is still in force
    assert calendar.atr_bar_cutoff(ny(date(2026, 11, 23), 9, 0), ATR.refresh) == (
        date(2026, 11, 19),
        ny(date(2026, 11, 20), 9, 30),
    )
    # Monday 09:30: refreshed from bars through Friday
    assert calendar.atr_bar_cutoff(ny(date(2026, 11, 23), 9, 30), ATR.refresh) == (
        date(2026, 11, 20),
        ny(date(2026, 11, 23), 9, 30),
    )
    # Thanksgiving (no session): Wednesday's refresh holds
    assert calendar.atr_bar_cutoff(ny(date(2026, 11, 26), 12, 0), ATR.refresh)[0] == date(
        2026, 11, 24
    )


def test_dates_outside_the_calendar_are_refused_with_a_typed_error():
    with pytest.raises(calendar.CalendarRangeError):
        windows_for(date(1988, 12, 30), CADENCE)
    with pytest.raises(calendar.CalendarRangeError):
        calendar.sessions_between(date(1988, 1, 1), date(1988, 12, 31))


def test_the_first_week_of_the_calendar_has_its_windows():
    # 1989-01-03 is a Tuesday: its week starts before the calendar and is clipped, not refused
    first = windows_for(calendar.CALENDAR_FIRST, CADENCE)

    assert first.is_session and first.open is not None
    assert calendar.sessions_between(date(1989, 1, 1), date(1989, 1, 4)).astype(str).tolist() == [
        "1989-01-03",
        "1989-01-04",
    ]


def test_the_first_day_of_the_real_history_can_look_back():
    # 1990-01-02 is the first bar of the real VIX/S&P files: a replay starting there needs the
    # ATR's refresh of the session before it and that session's own previous session
    cutoff, refreshed = calendar.atr_bar_cutoff(ny(date(1990, 1, 2), 9, 0), ATR.refresh)

    assert cutoff == date(1989, 12, 28) and refreshed == ny(date(1989, 12, 29), 9, 30)
