"""The rules' schedule clock (``clock.schedule_minutes``) on early closes (D2, D24).

On an early close the clock reads the real minutes plus the shift, and never less than the
regular time of a close-anchored event the scheduler has already fired: the 15:00 assignment
check fires at 12:45 on 2024-11-29 (13:00 close) and the clock reads 15:00 from then on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from engine.market.calendar import NEW_YORK, schedule_minutes
from engine.rules.prepare import clock_fields
from tests.bundled_params import CADENCE

BLACK_FRIDAY = date(2024, 11, 29)  # early close 13:00
FRIDAY = date(2024, 11, 22)  # an ordinary Friday


def _ny(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=NEW_YORK)


def _sched(at: datetime, early: bool, shift: int = 120, cadence=CADENCE) -> int:
    return clock_fields(at, early, shift, cadence)["clock_schedule_minutes"]


@pytest.mark.parametrize(
    ("hh", "mm", "expected"),
    [
        (9, 30, 690),  # open-anchored times are read from clock.minutes_et, not from this clock
        (12, 29, 869),
        (12, 30, 870),  # Friday management 14:30 - 2 h
        (12, 40, 880),
        (12, 44, 884),
        (12, 45, 900),  # the assignment check fires (15:00 clipped to close - 15 min): reads 15:00
        (12, 59, 900),
        (13, 0, 900),  # the closing evaluation: shifted minutes catch up
        (13, 45, 945),  # management end 15:45 - 2 h (after the close)
        (14, 29, 989),
        (14, 30, 990),  # the weekly report 16:30 - 2 h
    ],
)
def test_black_friday_clock(hh, mm, expected):
    at = _ny(BLACK_FRIDAY, hh, mm)
    assert _sched(at, True) == expected
    assert clock_fields(at, True, 120, CADENCE)["clock_minutes_et"] == hh * 60 + mm


def test_the_clock_reaches_15_00_at_the_12_45_instant_not_a_second_before():
    assert schedule_minutes(_ny(BLACK_FRIDAY, 12, 45) - timedelta(seconds=1), True, CADENCE) == 884
    assert schedule_minutes(_ny(BLACK_FRIDAY, 12, 45), True, CADENCE) == 900


def test_the_clock_never_runs_backwards_on_an_early_close():
    readings = [
        _sched(_ny(BLACK_FRIDAY, 9, 30) + timedelta(minutes=i), True) for i in range(7 * 60 + 1)
    ]
    assert readings == sorted(readings)


def test_an_ordinary_friday_reads_the_real_minutes():
    for i in range(7 * 60 + 1):
        at = _ny(FRIDAY, 9, 30) + timedelta(minutes=i)
        assert _sched(at, False) == at.hour * 60 + at.minute


def test_an_early_close_that_is_not_the_weeks_last_session_only_shifts():
    # Wednesday 2024-07-03 closes at 13:00; Friday 5 July is a session, so no close-anchored
    # events are scheduled on the Wednesday and nothing is clipped.
    assert _sched(_ny(date(2024, 7, 3), 12, 45), True) == 885


def test_an_early_close_with_a_later_close_needs_no_clip():
    # 1992-11-27 closed at 14:00: the shifted 13:00 check is inside the session, no clip
    assert _sched(_ny(date(1992, 11, 27), 12, 45), True) == 885
    assert _sched(_ny(date(1992, 11, 27), 13, 0), True) == 900


def test_facts_calling_an_early_close_the_calendar_does_not_know_assume_a_1300_close():
    # a hand-written facts file: the facts' early_close decides, 09:30-13:00 is assumed
    assert _sched(_ny(FRIDAY, 12, 44), True) == 884
    assert _sched(_ny(FRIDAY, 12, 45), True) == 900
    assert _sched(_ny(date(2040, 11, 30), 12, 45), True) == 900  # beyond the calendar


def test_the_clip_follows_the_cadence_it_is_given():
    # management 15:30-15:50 and the check at 15:40 both land past the close: both fire at
    # 12:45, and the clock then reads the later one (both rules hold in that cycle)
    late = replace(
        CADENCE,
        management_start=time(15, 30),
        management_end=time(15, 50),
        assignment_check=time(15, 40),
    )
    assert _sched(_ny(BLACK_FRIDAY, 12, 44), True, cadence=late) == 884
    assert _sched(_ny(BLACK_FRIDAY, 12, 45), True, cadence=late) == 940
    assert _sched(_ny(BLACK_FRIDAY, 13, 41), True, cadence=late) == 941


def test_the_shift_argument_wins_over_the_cadences_own():
    # a 60-minute shift puts 15:00 at 14:00, after the 13:00 close: still clipped to 12:45
    assert _sched(_ny(BLACK_FRIDAY, 12, 44), True, shift=60) == 824
    assert _sched(_ny(BLACK_FRIDAY, 12, 45), True, shift=60) == 900
    # no shift at all: 15:00 is past the close, clipped as well
    assert _sched(_ny(BLACK_FRIDAY, 12, 45), True, shift=0) == 900
    assert _sched(_ny(BLACK_FRIDAY, 12, 44), True, shift=0) == 764
