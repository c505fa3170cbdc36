"""Fire times of the constitution's cadence on a fake clock: whole weeks, a holiday week, an
early close and both DST changes, asked of the triggers exactly as APScheduler asks."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest

from scheduler.cadence import (
    NEW_YORK,
    REALTIME_SECONDS,
    CycleTrigger,
    EventKind,
    WeeklyTrigger,
    day_plan,
    fire_times,
    next_fire_times,
)


def _ny(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=NEW_YORK)


def _week(spec, monday: date, seconds: int = 300):
    start, end = _ny(monday, 0), _ny(monday + timedelta(days=7), 0)
    by_day = defaultdict(list)
    for at in fire_times(CycleTrigger(spec, seconds), start, end):
        by_day[at.date()].append(at)
    return by_day, fire_times(WeeklyTrigger(spec), start, end)


def _events(spec, day: date) -> dict[EventKind, datetime]:
    return {k: at for at, k in day_plan(day, spec).events}


def test_ordinary_week_runs_every_five_minutes_in_session_with_each_window_on_its_day(spec):
    monday = date(2026, 3, 2)
    by_day, weekly = _week(spec, monday)

    assert sorted(by_day) == [monday + timedelta(days=i) for i in range(5)]  # no weekend fires
    for day, times in by_day.items():
        assert times[0] == _ny(day, 9, 30) and times[-2:] == [
            _ny(day, 15, 55),
            _ny(day, 16),
        ]  # grid, then the close
        assert len(times) == 79 and all(
            b - a == timedelta(minutes=5) for a, b in zip(times, times[1:], strict=False)
        )
    assert _events(spec, monday)[EventKind.ENTRY_COM] == _ny(monday, 9, 45)
    assert _events(spec, date(2026, 3, 4))[EventKind.ENTRY_REV] == _ny(date(2026, 3, 4), 9, 45)
    assert _events(spec, date(2026, 3, 5))[EventKind.ENTRY_GEN] == _ny(date(2026, 3, 5), 9, 45)
    friday = _events(spec, date(2026, 3, 6))
    assert friday[EventKind.MANAGEMENT] == _ny(date(2026, 3, 6), 14, 30)
    assert friday[EventKind.ASSIGNMENT_CHECK] == _ny(date(2026, 3, 6), 15, 0)
    assert EventKind.ENTRY_GEN not in friday and EventKind.MANAGEMENT not in _events(
        spec, date(2026, 3, 5)
    )
    assert weekly == [_ny(date(2026, 3, 6), 16, 30)]


def test_thanksgiving_week_skips_the_holiday_and_moves_the_early_close_friday_two_hours(spec):
    by_day, weekly = _week(spec, date(2026, 11, 23))
    thanksgiving, friday = date(2026, 11, 26), date(2026, 11, 27)

    assert thanksgiving not in by_day  # no runs on the holiday: Gen's Thursday entry falls away
    assert not any(k is EventKind.ENTRY_GEN for d in by_day for k in _events(spec, d))
    assert by_day[friday][0] == _ny(friday, 9, 30) and by_day[friday][-2:] == [
        _ny(friday, 12, 55),
        _ny(friday, 13),
    ]
    events = _events(spec, friday)
    assert events[EventKind.MANAGEMENT] == _ny(friday, 12, 30)  # 14:30 - 2 h
    # 15:00 - 2 h is the 13:00 close itself: clipped to 15 minutes before it (D24)
    assert events[EventKind.ASSIGNMENT_CHECK] == _ny(friday, 12, 45)
    assert weekly == [_ny(friday, 14, 30)]  # 16:30 - 2 h


def test_good_friday_moves_management_and_the_report_to_thursday(spec):
    by_day, weekly = _week(spec, date(2026, 3, 30))
    assert date(2026, 4, 3) not in by_day
    assert _events(spec, date(2026, 4, 2))[EventKind.MANAGEMENT] == _ny(date(2026, 4, 2), 14, 30)
    # Tuesday 2026-03-31 ends the quarter: its report cut (§10 reinvestment, §11) comes first
    assert weekly == [_ny(date(2026, 3, 31), 16, 30), _ny(date(2026, 4, 2), 16, 30)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (date(2026, 3, 6), date(2026, 3, 9)),  # EST -> EDT (2026-03-08)
        (date(2026, 10, 30), date(2026, 11, 2)),  # EDT -> EST (2026-11-01)
    ],
)
def test_dst_change_keeps_new_york_wall_times_and_moves_utc(spec, before, after):
    times = fire_times(CycleTrigger(spec, 300), _ny(before, 0), _ny(after, 23))
    first = {at.date(): at for at in reversed(times)}

    assert (
        first[before].timetz().replace(tzinfo=None)
        == time(9, 30)
        == first[after].timetz().replace(tzinfo=None)
    )
    utc_hours = {first[before].astimezone(UTC).hour, first[after].astimezone(UTC).hour}
    assert utc_hours == {13, 14}
    assert len([t for t in times if t.date() == after]) == 79


def test_protocol_level_sets_the_monitoring_interval(spec):
    assert [spec.monitor_interval({"GEN": lv}) for lv in range(4)] == [
        300,
        60,
        30,
        REALTIME_SECONDS,
    ]
    assert spec.monitor_interval({"GEN": 0, "REV": 2, "COM": 1}) == 30  # the most urgent account
    assert spec.monitor_interval({}) == 300


def test_a_faster_trigger_fires_on_its_grid_from_the_open(spec):
    day = date(2026, 3, 3)
    times = fire_times(CycleTrigger(spec, 30), _ny(day, 10), _ny(day, 10, 2))
    assert times == [_ny(day, 10) + timedelta(seconds=30 * i) for i in range(4)]


def test_next_fire_times_lists_the_constitution_events_in_order(spec):
    listed = next_fire_times(spec, _ny(date(2026, 11, 25), 10), count=5)
    assert [(at, kinds[0]) for at, kinds in listed] == [
        (_ny(date(2026, 11, 25), 16), EventKind.CLOSE),
        (_ny(date(2026, 11, 27), 9, 30), EventKind.ATR_REFRESH),
        (_ny(date(2026, 11, 27), 12, 30), EventKind.MANAGEMENT),
        (_ny(date(2026, 11, 27), 12, 45), EventKind.ASSIGNMENT_CHECK),  # D24
        (_ny(date(2026, 11, 27), 13), EventKind.CLOSE),
    ]


def test_triggers_refuse_to_be_pickled(spec):
    # Jobs are rebuilt from the constitution at every start; nothing is ever stored as code.
    import pickle

    for trigger in (CycleTrigger(spec, 60), WeeklyTrigger(spec)):
        with pytest.raises(TypeError, match="never stored"):
            pickle.dumps(trigger)
