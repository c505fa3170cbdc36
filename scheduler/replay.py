"""The replay clock: the live triggers, asked for fire times over a date range, no sleeping.

``replay`` walks the same ``CycleTrigger`` and ``WeeklyTrigger`` the daemon hands to
APScheduler, in time order, and calls the same ``Runner`` the daemon calls. When a cycle moves
the protocol level, the runner asks for a new monitoring interval exactly as it does live, and
the next fire time comes from the new trigger. A ``FixedClock`` (if given) is advanced to each
fire time first, so everything that reads a clock sees the simulated time.

Event-driven: the replay wakes only at the constitution's scheduled events (the ATR refresh,
entry windows, Friday management, the assignment check, the close, the weekly report), at
every tick while an order works, and at the ticks where a decision *could* change. A cycle
that can say so (``Skippable.quiet_until``, the trading cycle's quiet-tick test of D27) tells
the replay until when every monitoring tick would be quiet - the same market content, no
clock comparison of the rules flipping, the ledger untouched, no open order. Those ticks are
not run: the journal is given their quiet reports (``Tally.repeat`` counts them without
making them), so every figure is the tick-by-tick replay's (docs/decisions.md D92).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol, TypeGuard, runtime_checkable

from engine.clock import FixedClock
from engine.cycle.report import CycleReport
from scheduler.cadence import NEW_YORK, CadenceSpec, CycleTrigger, WeeklyTrigger, day_plan
from scheduler.runner import Runner
from scheduler.weekly import WeekReport

_MICRO = timedelta(microseconds=1)


@runtime_checkable
class Skippable(Protocol):
    """A cycle that knows which coming ticks could not change anything."""

    def quiet_until(self, at: datetime) -> datetime | None: ...

    def quiet_report(self, at: datetime) -> CycleReport: ...


@runtime_checkable
class Tally(Protocol):
    """A journal that counts repeated quiet reports without being handed each one."""

    def repeat(self, report: CycleReport, first: datetime, last: datetime, count: int) -> None: ...


@dataclass(frozen=True)
class ReplayResult:
    cycles: int
    weeks: tuple[WeekReport, ...]
    sessions: int
    first: datetime | None
    last: datetime | None
    skipped: int = 0  # quiet monitoring ticks accounted for without running them


_CONFORMS: dict[tuple[type, type], bool] = {}


def _conforms(obj: object, protocol: type) -> bool:
    """``isinstance(obj, protocol)`` judged once per class: a runtime-checkable protocol's test
    looks up each of its members, and a replay asks at every tick (~1 % of a 33-year run)."""
    key = (type(obj), protocol)
    found = _CONFORMS.get(key)
    if found is None:
        found = _CONFORMS[key] = isinstance(obj, protocol)
    return found


def _skippable(cycle: object) -> TypeGuard[Skippable]:
    return _conforms(cycle, Skippable)


def _tally(journal: object) -> TypeGuard[Tally]:
    return _conforms(journal, Tally)


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
    skip_quiet: bool = True,
) -> ReplayResult:
    """Drive ``runner`` over the sessions first..last (inclusive, New York dates).
    ``skip_quiet=False`` runs every tick (the tick-by-tick replay the skipping is tested on)."""
    start = datetime.combine(first, time(0), tzinfo=NEW_YORK)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=NEW_YORK)
    triggers = _Triggers(runner.state.spec, runner.state.monitor_seconds)
    runner.on_schedule = triggers.set  # a level change or a swap changes the next fire time
    next_cycle = triggers.cycle.get_next_fire_time(None, start)
    weekly = triggers.weekly
    next_week = weekly.get_next_fire_time(None, start)
    cycles, skipped, day, sessions = 0, 0, None, 0
    weeks: list[WeekReport] = []
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
        _fire(runner, at, is_week, weeks)
        cycles += 1
        first_at, last_at = first_at or at, at
        # Ask the (possibly new) triggers for the next time after this one, as APScheduler would.
        next_cycle = triggers.cycle.get_next_fire_time(None, at + _MICRO)
        if not is_week and skip_quiet and next_cycle is not None:
            bound = min(next_week or end, end)
            jumped, count, last_quiet = _skip(runner, triggers.cycle, at, next_cycle, bound)
            if count:
                next_cycle, cycles, skipped, last_at = (
                    jumped,
                    cycles + count,
                    skipped + count,
                    last_quiet,
                )
        if is_week or triggers.weekly is not weekly:  # else the weekly cut has not moved
            weekly = triggers.weekly
            next_week = weekly.get_next_fire_time(None, at + _MICRO)
    return ReplayResult(cycles, tuple(weeks), sessions, first_at, last_at, skipped)


def _fire(runner: Runner, at: datetime, is_week: bool, weeks: list[WeekReport]) -> None:
    """Run the weekly cut (keeping its report) or one cycle at ``at``."""
    if not is_week:
        runner.cycle(at)
        return
    week = runner.weekly(at)
    if week is not None:
        weeks.append(week)


def _earliest(cycle: datetime | None, week: datetime | None) -> tuple[datetime | None, bool]:
    if cycle is None:
        return week, week is not None
    if week is None or cycle <= week:
        return cycle, False
    return week, True


# --- skipping quiet monitoring ticks -------------------------------------------------------------


def _skip(
    runner: Runner, trigger: CycleTrigger, at: datetime, nxt: datetime, bound: datetime
) -> tuple[datetime | None, int, datetime | None]:
    """Account for the quiet monitoring ticks from ``nxt`` on; (next tick to run, how many
    were skipped, the last one skipped)."""
    cycle = runner.cycle_impl
    if runner.watcher is not None or not _skippable(cycle):
        return nxt, 0, None
    wake = cycle.quiet_until(at)
    if wake is None or nxt >= wake:
        return nxt, 0, None
    ticks = quiet_grid(trigger, at, nxt, min(wake, bound))
    if not ticks:
        return nxt, 0, None
    _journal_quiet(runner, cycle, ticks)
    return trigger.get_next_fire_time(None, ticks[-1] + _MICRO), len(ticks), ticks[-1]


def quiet_grid(
    trigger: CycleTrigger, at: datetime, nxt: datetime, limit: datetime
) -> list[datetime]:
    """Monitoring-grid ticks in [nxt, limit) before the day's next scheduled event: those alone
    may be skipped (every constitution event and the close are run)."""
    plan = day_plan(nxt.astimezone(NEW_YORK).date(), trigger.spec)
    if plan.open is None or plan.close is None:
        return []
    events = [t for t, _ in plan.events if t > at]
    stop = min([limit, plan.close, *events])
    step = timedelta(seconds=trigger.monitor_seconds)
    k = -(-((nxt - plan.open) // _MICRO) // (step // _MICRO))  # first grid index at or after nxt
    out, tick = [], plan.open + k * step
    while tick < stop:
        out.append(tick.astimezone(NEW_YORK))
        tick += step
    return out


def _journal_quiet(runner: Runner, cycle: Skippable, ticks: list[datetime]) -> None:
    journal = runner.journal
    if _tally(journal):
        journal.repeat(cycle.quiet_report(ticks[0]), ticks[0], ticks[-1], len(ticks))
        return
    for t in ticks:  # a journal that keeps every report gets every report
        journal.append(t, "schedule", cycle.quiet_report(t))
