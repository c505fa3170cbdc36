"""The replay clock: the live triggers, asked for fire times over a date range, no sleeping.

``replay`` walks the same ``CycleTrigger`` and ``WeeklyTrigger`` the daemon hands to
APScheduler, in time order, and calls the same ``Runner`` the daemon calls. When a cycle moves
the protocol level, the runner asks for a new monitoring interval exactly as it does live, and
the next fire time comes from the new trigger. A ``FixedClock`` (if given) is advanced to each
fire time first, so everything that reads a clock sees the simulated time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from engine.clock import FixedClock
from scheduler.cadence import NEW_YORK, CadenceSpec, CycleTrigger, WeeklyTrigger
from scheduler.runner import Runner
from scheduler.weekly import WeekReport


@dataclass(frozen=True)
class ReplayResult:
    cycles: int
    weeks: tuple[WeekReport, ...]
    sessions: int
    first: datetime | None
    last: datetime | None


class _Triggers:
    def __init__(self, spec: CadenceSpec, seconds: int):
        self.set(spec, seconds)

    def set(self, spec: CadenceSpec, seconds: int) -> None:
        self.cycle = CycleTrigger(spec, seconds)
        self.weekly = WeeklyTrigger(spec)


def replay(
    runner: Runner,
    first: date,
    last: date,
    clock: FixedClock | None = None,
    on_session: Callable[[date], None] | None = None,
) -> ReplayResult:
    """Drive ``runner`` over the sessions first..last (inclusive, New York dates)."""
    start = datetime.combine(first, time(0), tzinfo=NEW_YORK)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=NEW_YORK)
    triggers = _Triggers(runner.state.spec, runner.state.monitor_seconds)
    runner.on_schedule = triggers.set  # a level change or a swap changes the next fire time
    next_cycle = triggers.cycle.get_next_fire_time(None, start)
    weekly = triggers.weekly
    next_week = weekly.get_next_fire_time(None, start)
    cycles, weeks, day, sessions = 0, [], None, 0
    first_at = last_at = None
    while True:
        at, is_week = _earliest(next_cycle, next_week)
        if at is None or at >= end:
            break
        if clock is not None and at > clock.at:
            clock.advance_to(at)
        if at.date() != day:
            day, sessions = at.date(), sessions + 1
            if on_session:
                on_session(day)
        if is_week:
            week = runner.weekly(at)
            if week is not None:
                weeks.append(week)
        else:
            runner.cycle(at)
        cycles += 1
        first_at, last_at = first_at or at, at
        # Ask the (possibly new) triggers for the next time after this one, as APScheduler would.
        after = at + timedelta(microseconds=1)
        next_cycle = triggers.cycle.get_next_fire_time(None, after)
        if is_week or triggers.weekly is not weekly:  # else the weekly cut has not moved
            weekly = triggers.weekly
            next_week = weekly.get_next_fire_time(None, after)
    return ReplayResult(cycles, tuple(weeks), sessions, first_at, last_at)


def _earliest(cycle: datetime | None, week: datetime | None) -> tuple[datetime | None, bool]:
    if cycle is None:
        return week, week is not None
    if week is None or cycle <= week:
        return cycle, False
    return week, True
