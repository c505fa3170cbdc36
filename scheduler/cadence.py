"""The constitution's cadence as APScheduler triggers (America/New_York, calendar-aware).

One set of triggers serves both clocks: APScheduler asks them for the next fire time on the
wall clock (``alluse run``); the replay driver asks the very same objects over a date range
(``alluse backtest``). There is no second timetable.

Two jobs, two triggers:

* ``CycleTrigger`` - every evaluation during a session: the monitoring grid (every
  ``monitor_seconds`` from the open, up to but excluding the close) merged with the
  constitution's events (ATR refresh, entry-window opens, Friday management window start,
  assignment check) and a closing evaluation at the close. The grid interval is the one of the most urgent account's protocol level
  (L0 300 s, L1 60 s, L2 30 s, L3 "real time" = ``REALTIME_SECONDS``); the daemon swaps in a new
  trigger when a cycle reports a different level.
* ``WeeklyTrigger`` - the weekly report on the week's last session (Friday 16:30; 14:30 on an
  early close; Thursday when Friday is a holiday).

Holidays have no fire times at all; on early-close days close-anchored events move
``early_close_shift_minutes`` earlier and everything is clipped to the 13:00 close
(``engine.market.calendar.windows_for``, the one implementation of these rules); an intraday event the
shift puts at or after the close fires ``EARLY_CLOSE_GUARD`` (15 min) before it instead, so the
Friday 15:00 assignment check runs at 12:45 (D24). Those fire instants come from
``engine.market.calendar.close_anchored``, which the rules' schedule clock (``clock.schedule_minutes``)
reads too: from 12:45 it reads 15:00, so ``assignment.prepare`` holds in the cycle the check
fires. The weekly report is a job of its own after the close and only shifts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import NoReturn

from apscheduler.triggers.base import BaseTrigger

from constitution.models import Constitution
from engine.market import calendar

NEW_YORK = calendar.NEW_YORK
# L3 says "real time" (monitor_seconds 0): as often as data arrives. Quotes are judged stale
# after 30 s (§8), so polling every 5 s is real time for this data and bounded for a backtest.
REALTIME_SECONDS = 5
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4}
_LOOKAHEAD_DAYS = 15  # longer than any run of NYSE closures (2001-09-11: four sessions)
# On an early close, a close-anchored event that the shift puts at or after the close fires
# this long before the close instead (D24): 15:00 - 2 h = 13:00 becomes 12:45.
EARLY_CLOSE_GUARD = calendar.EARLY_CLOSE_GUARD


class EventKind(StrEnum):
    ATR_REFRESH = "atr_refresh"
    ENTRY_GEN = "entry_gen"
    ENTRY_REV = "entry_rev"
    ENTRY_COM = "entry_com"
    MANAGEMENT = "management"
    ASSIGNMENT_CHECK = "assignment_check"
    CLOSE = "close"
    MONITOR = "monitor"
    WEEKLY_REPORT = "weekly_report"


@dataclass(frozen=True)
class CadenceSpec:
    """What the scheduler needs from a constitution: plain, hashable, picklable (it travels
    inside the jobs APScheduler keeps in the database)."""

    atr_refresh: time
    entry: tuple[tuple[str, int, time, time], ...]  # (sleeve, weekday, start, end)
    management: tuple[time, time]
    assignment_check: time
    weekly_report: time
    early_close_shift_minutes: int
    level_seconds: tuple[int, int, int, int]  # monitor_seconds of L0..L3 (0 = real time)

    def calendar_cadence(self) -> calendar.Cadence:
        start, end = self.entry[0][2], self.entry[0][3]
        return calendar.Cadence(
            atr_refresh=self.atr_refresh,
            entry_start=start,
            entry_end=end,
            entry_weekday=tuple(sorted((s, wd) for s, wd, _, _ in self.entry)),
            management_start=self.management[0],
            management_end=self.management[1],
            weekly_report=self.weekly_report,
            early_close_shift=timedelta(minutes=self.early_close_shift_minutes),
            assignment_check=self.assignment_check,
        )

    def level_interval(self, level: int) -> int:
        seconds = self.level_seconds[max(0, min(3, level))]
        return seconds if seconds > 0 else REALTIME_SECONDS

    def monitor_interval(self, account_levels: dict[str, int]) -> int:
        """One pipeline cycle covers every account, so it runs at the most urgent account's
        interval; each account is then watched at least as often as its level asks."""
        return min(
            (self.level_interval(lv) for lv in account_levels.values()),
            default=self.level_interval(0),
        )


def spec_from(model: Constitution) -> CadenceSpec:
    c, sleeves, levels = model.cadence, model.sleeves, model.protocol.levels
    entry = tuple(
        (name, _WEEKDAYS[s.entry.day], s.entry.start, s.entry.end)
        for name, s in (("com", sleeves.com), ("gen", sleeves.gen), ("rev", sleeves.rev))
    )
    return CadenceSpec(
        atr_refresh=model.protocol.atr.refresh,
        entry=entry,
        management=(c.friday_management.start, c.friday_management.end),
        assignment_check=c.assignment_check.at,
        weekly_report=c.weekly_report.at,
        early_close_shift_minutes=c.early_close_shift_minutes,
        level_seconds=(
            levels.L0.monitor_seconds,
            levels.L1.monitor_seconds,
            levels.L2.monitor_seconds,
            levels.L3.monitor_seconds,
        ),
    )


@dataclass(frozen=True)
class DayPlan:
    """One day's fire times (empty on a holiday or weekend)."""

    day: date
    open: datetime | None
    close: datetime | None
    events: tuple[tuple[datetime, EventKind], ...]  # sorted; weekly report excluded
    weekly_report: datetime | None


@lru_cache(maxsize=4096)
def day_plan(day: date, spec: CadenceSpec) -> DayPlan:
    w = calendar.windows_for(day, spec.calendar_cadence())
    if not w.is_session or w.open is None or w.close is None or w.atr_refresh is None:
        return DayPlan(day, None, None, (), None)  # a session has all three
    events = [(w.atr_refresh, EventKind.ATR_REFRESH)]
    # Entry windows can differ per sleeve in a constitution; windows_for uses one pair, so
    # each sleeve's own start is taken here (clipped to the close like the rest).
    for sleeve, weekday, start, _end in spec.entry:
        at = datetime.combine(day, start, tzinfo=NEW_YORK)
        if weekday == day.weekday() and at < w.close:
            events.append((at, EventKind(f"entry_{sleeve}")))
    if calendar.last_session_of_week(day) == day:
        events += _close_anchored(day, spec, w, w.open, w.close)
    kept = [(at, k) for at, k in events if w.open <= at < w.close]
    # The closing evaluation: the day's last marks and checks at the bell. With daily bars
    # (backtests) it is the one cycle that sees the day's close; intraday cycles see the open.
    kept.append((w.close, EventKind.CLOSE))
    return DayPlan(day, w.open, w.close, tuple(sorted(kept)), w.weekly_report)


def _close_anchored(
    day: date, spec: CadenceSpec, w: calendar.DayWindows, opened: datetime, closed: datetime
) -> list[tuple[datetime, EventKind]]:
    """Friday management start and the assignment check, on the week's last session.

    On an early close both move ``early_close_shift_minutes`` earlier; a shifted time that
    lands at or after the close is clipped to ``close - EARLY_CLOSE_GUARD`` (decision D24),
    and the clip never moves an event ahead of one the constitution puts before it (they may
    coincide). ``engine.market.calendar.close_anchored`` is the one implementation: the rules'
    schedule clock follows the same instants."""
    anchored = calendar.close_anchored(day, spec.calendar_cadence(), opened, closed, w.early_close)
    return [(a.at, EventKind(a.name)) for a in anchored]


def _monitor_after(plan: DayPlan, threshold: datetime, seconds: int) -> datetime | None:
    """First grid time (open + k*seconds) >= threshold and before the close."""
    if plan.open is None or plan.close is None:
        return None
    if threshold <= plan.open:
        return plan.open
    k = -(-int((threshold - plan.open).total_seconds() * 1_000_000) // (seconds * 1_000_000))
    at = plan.open + timedelta(seconds=k * seconds)
    return at if at < plan.close else None


def _threshold(previous: datetime | None, now: datetime) -> datetime:
    # APScheduler's contract: with a previous fire time, the next one strictly after it
    # (the scheduler itself decides what was missed); without, the first one from ``now``.
    if previous is not None:
        return previous + timedelta(microseconds=1)
    return now


def _days_from(threshold: datetime) -> Iterator[date]:
    first = calendar.new_york_date(threshold)
    for i in range(_LOOKAHEAD_DAYS):
        day = first + timedelta(days=i)
        if day > calendar.CALENDAR_LAST:
            return
        yield day


class CycleTrigger(BaseTrigger):
    """Monitoring grid + the constitution's intraday events, sessions only."""

    __slots__ = ("spec", "monitor_seconds")

    def __init__(self, spec: CadenceSpec, monitor_seconds: int):
        if monitor_seconds <= 0:
            raise ValueError("monitor_seconds must be positive")
        self.spec = spec
        self.monitor_seconds = int(monitor_seconds)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        threshold = _threshold(previous_fire_time, now)
        for day in _days_from(threshold):
            plan = day_plan(day, self.spec)
            if plan.open is None or plan.close is None or plan.close < threshold:
                continue
            candidates = [at for at, _ in plan.events if at >= threshold]
            grid = _monitor_after(plan, threshold, self.monitor_seconds)
            if grid is not None:
                candidates.append(grid)
            if candidates:
                return min(candidates).astimezone(NEW_YORK)
        return None

    def kinds_at(self, at: datetime) -> tuple[EventKind, ...]:
        """Why the cycle fires at ``at`` (for summaries and records)."""
        plan = day_plan(calendar.new_york_date(at), self.spec)
        kinds = [k for t, k in plan.events if t == at]
        if _monitor_after(plan, at, self.monitor_seconds) == at:
            kinds.append(EventKind.MONITOR)
        return tuple(kinds)

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NOT_STORED)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CycleTrigger) and (self.spec, self.monitor_seconds) == (
            other.spec,
            other.monitor_seconds,
        )

    def __hash__(self) -> int:
        return hash((self.spec, self.monitor_seconds))

    def __repr__(self) -> str:
        return f"<CycleTrigger every {self.monitor_seconds}s + constitution events>"


_NOT_STORED = (
    "triggers are rebuilt from the constitution at every start and never stored "
    "(nothing executable in the database: no pickle)"
)


class WeeklyTrigger(BaseTrigger):
    """The weekly report on the week's last session."""

    __slots__ = ("spec",)

    def __init__(self, spec: CadenceSpec):
        self.spec = spec

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        threshold = _threshold(previous_fire_time, now)
        for day in _days_from(threshold):
            at = day_plan(day, self.spec).weekly_report
            if at is not None and at >= threshold:
                return at.astimezone(NEW_YORK)
        return None

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NOT_STORED)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WeeklyTrigger) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return "<WeeklyTrigger weekly report>"


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time of ``trigger`` in [start, end), asked exactly as APScheduler asks."""
    out: list[datetime] = []
    at = trigger.get_next_fire_time(None, start)
    while at is not None and at < end:
        out.append(at)
        at = trigger.get_next_fire_time(at, at)
    return out


def next_fire_times(
    spec: CadenceSpec, now: datetime, count: int = 8
) -> list[tuple[datetime, tuple[EventKind, ...]]]:
    """The next ``count`` distinct fire times of the constitution's events (monitoring grid
    ticks are summarised by their interval, not listed), with the weekly report."""
    out: list[tuple[datetime, tuple[EventKind, ...]]] = []
    threshold = now
    for day in _days_from(now):
        plan = day_plan(day, spec)
        out.extend((at, (k,)) for at, k in plan.events if at >= threshold)
        if plan.weekly_report is not None and plan.weekly_report >= threshold:
            out.append((plan.weekly_report, (EventKind.WEEKLY_REPORT,)))
        if len(out) >= count:
            break
    return sorted(out)[:count]
