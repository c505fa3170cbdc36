"""Early closes (D24): close-anchored events move two hours earlier, and one the shift puts at
or after the 13:00 close fires 15 minutes before it instead, in the constitution's order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from engine.clock import FixedClock
from engine.market import calendar
from engine.market.calendar import schedule_minutes
from scheduler.cadence import (
    EARLY_CLOSE_GUARD,
    NEW_YORK,
    CycleTrigger,
    EventKind,
    WeeklyTrigger,
    day_plan,
    fire_times,
    spec_from,
)
from scheduler.journal import MemoryJournal
from scheduler.replay import replay
from scheduler.runner import Runner
from tests.bundled_params import CADENCE
from tests.scheduler.fake_cycle import FakeCycle

BLACK_FRIDAY = date(2024, 11, 29)  # the day after Thanksgiving: NYSE closes at 13:00
JULY_3 = date(2025, 7, 3)  # a Thursday early close; Friday 4 July is a holiday


def _ny(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=NEW_YORK)


def _day(trigger, d: date) -> list[datetime]:
    return fire_times(trigger, _ny(d, 0), _ny(d + timedelta(days=1), 0))


def test_black_friday_assignment_check_fires_at_1245_after_management_and_before_the_close(spec):
    # An hourly grid keeps the constitution's events apart from the monitoring ticks.
    times = _day(CycleTrigger(spec, 3600), BLACK_FRIDAY)

    assert times == [
        _ny(BLACK_FRIDAY, 9, 30),
        _ny(BLACK_FRIDAY, 10, 30),
        _ny(BLACK_FRIDAY, 11, 30),
        _ny(BLACK_FRIDAY, 12, 30),
        _ny(BLACK_FRIDAY, 12, 45),
        _ny(BLACK_FRIDAY, 13),
    ]
    events = {k: at for at, k in day_plan(BLACK_FRIDAY, spec).events}
    assert events[EventKind.MANAGEMENT] == _ny(BLACK_FRIDAY, 12, 30)  # 14:30 - 2 h
    assert (
        events[EventKind.ASSIGNMENT_CHECK] == _ny(BLACK_FRIDAY, 13) - EARLY_CLOSE_GUARD
    )  # 15:00 - 2 h = close
    assert events[EventKind.CLOSE] == _ny(BLACK_FRIDAY, 13)
    assert (
        events[EventKind.MANAGEMENT] < events[EventKind.ASSIGNMENT_CHECK] < events[EventKind.CLOSE]
    )
    assert CycleTrigger(spec, 3600).kinds_at(_ny(BLACK_FRIDAY, 12, 45)) == (
        EventKind.ASSIGNMENT_CHECK,
    )
    # the weekly report is its own job after the close: shifted, never clipped
    assert _day(WeeklyTrigger(spec), BLACK_FRIDAY) == [_ny(BLACK_FRIDAY, 14, 30)]


def test_black_friday_replay_runs_the_assignment_check_cycle_on_the_fake_clock(bundled):
    clock = FixedClock(_ny(BLACK_FRIDAY, 0))
    seen: list[datetime] = []

    class Clocked(FakeCycle):
        def run(self, at):
            seen.append(clock.now())  # what the pipeline reads from its clock
            return super().run(at)

    cycle = Clocked(bundled)
    result = replay(
        Runner(bundled, lambda c: cycle, MemoryJournal()), BLACK_FRIDAY, BLACK_FRIDAY, clock=clock
    )

    grid = [
        _ny(BLACK_FRIDAY, 9, 30) + timedelta(minutes=5 * i) for i in range(42)
    ]  # 09:30 .. 12:55
    assert cycle.calls[:-1] == grid + [_ny(BLACK_FRIDAY, 13)]  # 12:30 and 12:45 are grid points too
    assert cycle.calls[-1] == _ny(BLACK_FRIDAY, 14, 30)  # the weekly cut's evaluation
    assert seen == cycle.calls
    assert result.cycles == len(grid) + 2 and len(result.weeks) == 1


def test_thursday_early_close_before_a_friday_holiday_gets_the_same_clipped_check(spec):
    events = {k: at for at, k in day_plan(JULY_3, spec).events}
    assert events[EventKind.MANAGEMENT] == _ny(JULY_3, 12, 30)
    assert events[EventKind.ASSIGNMENT_CHECK] == _ny(JULY_3, 12, 45)
    assert _day(WeeklyTrigger(spec), JULY_3) == [_ny(JULY_3, 14, 30)]


def test_shifted_events_both_past_the_close_coincide_at_the_guard_in_order(spec):
    late = replace(spec, management=(time(15, 30), time(15, 50)), assignment_check=time(15, 40))
    at = {k: t for t, k in day_plan(BLACK_FRIDAY, late).events}

    # one fire time, one cycle (the job does both); both still before the close
    assert at[EventKind.MANAGEMENT] == at[EventKind.ASSIGNMENT_CHECK] == _ny(BLACK_FRIDAY, 12, 45)
    assert CycleTrigger(late, 3600).kinds_at(_ny(BLACK_FRIDAY, 12, 45)) == (
        EventKind.ASSIGNMENT_CHECK,
        EventKind.MANAGEMENT,
    )
    assert at[EventKind.CLOSE] == _ny(BLACK_FRIDAY, 13)


def test_a_clipped_check_never_moves_ahead_of_an_event_the_constitution_puts_before_it(spec):
    # management shifted to 12:50 stays in the session; the check (15:00 -> 13:00) would be
    # clipped to 12:45, before it: it fires with management instead
    odd = replace(spec, management=(time(14, 50), time(15, 45)))
    at = {k: t for t, k in day_plan(BLACK_FRIDAY, odd).events}
    assert at[EventKind.MANAGEMENT] == _ny(BLACK_FRIDAY, 12, 50)
    assert at[EventKind.ASSIGNMENT_CHECK] == _ny(BLACK_FRIDAY, 12, 50)


def test_the_constitution_order_is_kept_when_the_check_comes_first(spec):
    early_check = replace(spec, assignment_check=time(14, 0))
    at = {k: t for t, k in day_plan(BLACK_FRIDAY, early_check).events}
    assert (
        at[EventKind.ASSIGNMENT_CHECK]
        == _ny(BLACK_FRIDAY, 12)
        < at[EventKind.MANAGEMENT]
        == _ny(BLACK_FRIDAY, 12, 30)
    )


def test_ordinary_friday_is_not_clipped(spec):
    friday = date(2024, 11, 22)
    events = {k: at for at, k in day_plan(friday, spec).events}
    assert events[EventKind.MANAGEMENT] == _ny(friday, 14, 30)
    assert events[EventKind.ASSIGNMENT_CHECK] == _ny(friday, 15)
    assert events[EventKind.CLOSE] == _ny(friday, 16)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


_REGULAR = {
    EventKind.MANAGEMENT: lambda s: s.management[0],
    EventKind.ASSIGNMENT_CHECK: lambda s: s.assignment_check,
}
_VARIANTS = {
    "v1.3": {},
    "both past the close": {
        "management": (time(15, 30), time(15, 50)),
        "assignment_check": time(15, 40),
    },
    "check held back by management": {"management": (time(14, 50), time(15, 45))},
    "check first": {"assignment_check": time(14, 0)},
    "one hour shift": {"early_close_shift_minutes": 60},
}


@pytest.mark.parametrize("variant", list(_VARIANTS))
def test_the_rules_clock_reaches_each_events_regular_time_exactly_when_it_fires(spec, variant):
    """The rules' schedule clock and the scheduler share the clip (engine.market.calendar.close_anchored):
    a rule ``clock.schedule_minutes >= <event's regular time>`` first holds at the instant the
    scheduler fires that event, clipped or not, on every week's last session 2023-2030."""
    s = replace(spec, **_VARIANTS[variant])
    cadence = s.calendar_cadence()
    checked = 0
    day = date(2023, 1, 2)
    while day <= date(2030, 12, 31):
        if calendar.last_session_of_week(day) == day:
            plan = day_plan(day, s)
            early = calendar.is_early_close(day)
            for at, kind in plan.events:
                if kind in _REGULAR:
                    regular = _minutes(_REGULAR[kind](s))
                    assert schedule_minutes(at, early, cadence) >= regular, (day, kind)
                    assert schedule_minutes(at - timedelta(seconds=1), early, cadence) < regular, (
                        day,
                        kind,
                    )
                    checked += 1
            report = plan.weekly_report
            assert schedule_minutes(report, early, cadence) >= _minutes(s.weekly_report)
            assert schedule_minutes(report - timedelta(seconds=1), early, cadence) < _minutes(
                s.weekly_report
            )
        day += timedelta(days=1)
    assert checked > 2 * 52 * 7


def test_black_friday_rules_fire_assignment_prepare_in_the_1245_cycle_and_not_before(bundled):
    from constitution.yamlsafe import load_file
    from engine.facts.load import facts_from_data
    from engine.rules.evaluate import evaluate
    from scheduler.scenarios import _overlay
    from tests.conftest import ROOT

    base = load_file(ROOT / "tests" / "scenarios" / "base.yaml").data
    put = {
        "symbol": "AAPL",
        "right": "put",
        "side": "short",
        "strike": 203,
        "expiry": "2024-11-29",
        "contracts": 10,
        "entry_credit": 2.0,
        "mark": 3.1,
        "delta": -0.96,
    }
    accounts = [{"id": a, "opened": "2024-01-02"} for a in ("GEN", "REV", "COM", "MINI-1")]
    accounts[0]["positions"] = [put]

    def fired(at: datetime) -> set[str]:
        facts = facts_from_data(
            _overlay(
                base,
                {
                    "as_of": at.isoformat(),
                    "accounts": accounts,
                    "market": {"early_close": calendar.is_early_close(at.date())},
                },
            )
        )
        return {f.rule for f in evaluate(bundled, facts).fired}

    check = day_plan(BLACK_FRIDAY, spec_from(bundled.model))
    at = {k: t for t, k in check.events}[EventKind.ASSIGNMENT_CHECK]
    assert at == _ny(BLACK_FRIDAY, 12, 45)
    assert "assignment.prepare" in fired(at)
    assert "assignment.prepare" not in fired(at - timedelta(minutes=5))  # the 12:40 grid tick
    assert "assignment.prepare" in fired(_ny(BLACK_FRIDAY, 13))  # and at the closing evaluation


def test_the_1245_tick_is_never_quiet_after_the_1240_one(bundled):
    # Over daily bars the market is the same all session: only the clock cuts tell the 12:45
    # tick from the 12:40 one, and the assignment rule's cut (>= 900) flips there.
    from engine.cycle.quiet import clock_cuts, clock_signature

    cuts = clock_cuts(bundled.rules)
    shift = bundled.model.cadence.early_close_shift_minutes
    assert clock_signature(cuts, _ny(BLACK_FRIDAY, 12, 40), shift, CADENCE) != clock_signature(
        cuts, _ny(BLACK_FRIDAY, 12, 45), shift, CADENCE
    )
    assert clock_signature(cuts, _ny(BLACK_FRIDAY, 12, 45), shift, CADENCE) == clock_signature(
        cuts, _ny(BLACK_FRIDAY, 12, 50), shift, CADENCE
    )
