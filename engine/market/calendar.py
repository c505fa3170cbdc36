"""The NYSE calendar and the constitution's daily windows, in America/New_York.

Sessions, holidays and early closes come from ``exchange_calendars`` (XNYS), built once with
explicit bounds (its default bounds read the wall clock, which only ``engine.clock`` may do) and
flattened into numpy tables so a lookup costs microseconds, not a pandas call.

Windows for a day (``windows_for``), from the constitution's cadence (``Cadence``):

* 09:30 ATR refresh; entry 09:45-11:00 on the sleeve's weekday (Gen Thu, Rev Wed, Com Mon);
* management 14:30-15:45 and the 16:30 weekly report on the week's last session (Friday,
  or Thursday when Friday is a holiday such as Good Friday: options expire that day).

Early-close rule (decided): only the *close-anchored* events - the management window and the
weekly report - move earlier by ``early_close_shift`` (120 min); any window's end is clipped
to the session close. Open-anchored events (ATR refresh, entry windows) do not move: the open
is 09:30 on early-close days too. An entry window falls away when its weekday is a holiday
(no substitute day: the constitution names none; see docs/market-data.md).

The intraday close-anchored events (management start, assignment check) fire at the instants
``close_anchored`` gives: shifted, and one the shift puts at or after the close fires
``EARLY_CLOSE_GUARD`` before it (D24). The scheduler fires them there and the rules' schedule
clock (``schedule_minutes``, ``clock.schedule_minutes``) reads from the same function, so a rule
comparing with an event's regular time holds at the instant the event fires.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    from constitution.models import Constitution

NEW_YORK = ZoneInfo("America/New_York")
# On an early close, a close-anchored event the shift puts at or after the close fires this long
# before the close instead (D24): 15:00 - 2 h = 13:00 becomes 12:45.
EARLY_CLOSE_GUARD = timedelta(minutes=15)
# A day the facts call an early close but the calendar does not know as one (a hand-written
# facts file) is taken as a 09:30-13:00 session, the NYSE early close since 1993.
_USUAL_OPEN, _USUAL_EARLY_CLOSE = time(9, 30), time(13, 0)
# The real VIX/S&P history starts on 1990-01-02; the calendar starts a year earlier so that a
# replay's first days can look back (the ATR's previous sessions, the first week's Monday).
# Bars before it (Yahoo has AAPL from 1980) are kept but cannot be checked for gaps.
CALENDAR_FIRST = date(1989, 1, 3)
CALENDAR_LAST = date(2035, 12, 31)  # rule-based holidays; ad-hoc closures are not foreseen

Sleeve = Literal["gen", "rev", "com"]


class CalendarRangeError(ValueError):
    """A date outside the calendar's bounds (CALENDAR_FIRST..CALENDAR_LAST)."""


@dataclass(frozen=True)
class _Tables:
    sessions: np.ndarray  # datetime64[D], sorted
    opens: np.ndarray  # datetime64[ns] UTC
    closes: np.ndarray  # datetime64[ns] UTC
    early: np.ndarray  # bool: an early-close session


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    import exchange_calendars as xc  # imported lazily: building the calendar takes ~0.3 s

    with warnings.catch_warnings():
        # exchange_calendars 4.x reads tz-aware Series.values, which pandas 3 deprecates; that
        # is the library's business, and the values it reads are still the UTC nanoseconds.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = xc.get_calendar(
            "XNYS", start=CALENDAR_FIRST.isoformat(), end=CALENDAR_LAST.isoformat()
        )
    sched = cal.schedule
    sessions = sched.index.values.astype("datetime64[D]")
    early = np.isin(sessions, cal.early_closes.values.astype("datetime64[D]"))
    opens = sched["open"].dt.tz_convert("UTC").dt.tz_localize(None).values.astype("datetime64[ns]")
    closes = (
        sched["close"].dt.tz_convert("UTC").dt.tz_localize(None).values.astype("datetime64[ns]")
    )
    return _Tables(sessions, opens, closes, early)


def _d64(day: date) -> np.datetime64:
    if not CALENDAR_FIRST <= day <= CALENDAR_LAST:
        raise CalendarRangeError(
            f"{day} is outside the NYSE calendar ({CALENDAR_FIRST}..{CALENDAR_LAST})"
        )
    return np.datetime64(day, "D")


@lru_cache(maxsize=8192)  # every tick asks about the same few days; the tables never change
def _index(day: date) -> int | None:
    t = _tables()
    d = _d64(day)
    i = int(np.searchsorted(t.sessions, d))
    return i if i < len(t.sessions) and t.sessions[i] == d else None


def _to_ny(ns: np.datetime64) -> datetime:
    seconds = ns.astype("datetime64[s]").astype(np.int64)
    return datetime.fromtimestamp(int(seconds), tz=NEW_YORK)


def is_session(day: date) -> bool:
    return _index(day) is not None


def is_early_close(day: date) -> bool:
    i = _index(day)
    return i is not None and bool(_tables().early[i])


@lru_cache(maxsize=4096)
def session_open(day: date) -> datetime | None:
    i = _index(day)
    return None if i is None else _to_ny(_tables().opens[i])


@lru_cache(maxsize=4096)
def session_close(day: date) -> datetime | None:
    i = _index(day)
    return None if i is None else _to_ny(_tables().closes[i])


@lru_cache(maxsize=8192)  # pure over the fixed tables; a run asks about each day many times
def previous_session(day: date) -> date:
    """The last session strictly before ``day``."""
    t = _tables()
    i = int(np.searchsorted(t.sessions, _d64(day), side="left")) - 1
    if i < 0:
        raise CalendarRangeError(f"no session before {day} in the calendar")
    return t.sessions[i].astype(date)


@lru_cache(maxsize=8192)
def next_session(day: date) -> date:
    """The first session strictly after ``day``."""
    t = _tables()
    i = int(np.searchsorted(t.sessions, _d64(day), side="right"))
    if i >= len(t.sessions):
        raise CalendarRangeError(f"no session after {day} in the calendar")
    return t.sessions[i].astype(date)


def sessions_between(first: date, last: date) -> np.ndarray:
    """Sessions first..last inclusive, as datetime64[D]. A span reaching past an end of the
    calendar is clipped to it (a week that starts before CALENDAR_FIRST still has its sessions);
    a span wholly outside it is a ``CalendarRangeError``."""
    t = _tables()
    if last < CALENDAR_FIRST or first > CALENDAR_LAST:
        _d64(first if first > CALENDAR_LAST else last)  # raises, naming the date
    lo = int(np.searchsorted(t.sessions, _d64(max(first, CALENDAR_FIRST)), side="left"))
    hi = int(np.searchsorted(t.sessions, _d64(min(last, CALENDAR_LAST)), side="right"))
    return t.sessions[lo:hi]


@lru_cache(maxsize=8192)
def last_session_of_week(day: date) -> date | None:
    """The last session of ``day``'s Monday-Sunday week (None in a week with no session)."""
    monday = day - timedelta(days=day.weekday())
    week = sessions_between(monday, monday + timedelta(days=6))
    return week[-1].astype(date) if len(week) else None


@lru_cache(maxsize=8192)
def expiry_session(day: date) -> date | None:
    """The session on which ``day``'s week's Friday options expire: the Friday, or the last
    session before it in the same week when the Friday is a holiday (Good Friday: Thursday).
    None in a week with no session Monday-Friday. Sessions are Monday-Friday, so this is the
    week's last session (``last_session_of_week``); it is named apart for the rules that act
    on expiring options (§7) rather than on the week (§1)."""
    monday = day - timedelta(days=day.weekday())
    week = sessions_between(monday, monday + timedelta(days=4))
    return week[-1].astype(date) if len(week) else None


def session_roles(day: date) -> tuple[bool, bool, bool]:
    """(is a session, the week's last session, the week's expiry session) of ``day``, for the
    rules' clock (``clock.session``, ``clock.last_session_of_week``, ``clock.expiry_session``).
    Outside the calendar's bounds (a hand-written facts date): Monday-Friday are sessions and
    Friday plays both roles."""
    try:
        return is_session(day), last_session_of_week(day) == day, expiry_session(day) == day
    except CalendarRangeError:
        weekday = day.weekday()
        return weekday < 5, weekday == 4, weekday == 4


def closed_note(day: date) -> str | None:
    """Why the market is closed on ``day`` and when it next opens, or None on a session (what
    ``alluse evaluate`` says for an ``as_of`` the market is closed; D150)."""
    try:
        if is_session(day):
            return None
        nxt = next_session(day).isoformat()
    except CalendarRangeError:
        if day.weekday() < 5:
            return None
        nxt = "Monday"
    why = "a weekend" if day.weekday() >= 5 else "an NYSE holiday"
    return (
        f"the market is closed on {day.isoformat()} ({why}): no entry window opens and nothing"
        f" decided could be placed before the next session ({nxt})"
    )


def last_session_of_month(day: date) -> date | None:
    """The last session of ``day``'s calendar month (None in a month with no session)."""
    return _last_session_of_month(day.replace(day=1))


@lru_cache(maxsize=1024)  # every decision asks (prepare's quarter-end fact); months are few
def _last_session_of_month(first: date) -> date | None:
    nxt = (first + timedelta(days=32)).replace(day=1)
    month = sessions_between(first, min(nxt - timedelta(days=1), CALENDAR_LAST))
    return month[-1].astype(date) if len(month) else None


def last_session_of_quarter(day: date) -> date | None:
    """The last session of ``day``'s calendar quarter: where quarterly work happens when the
    quarter's last Friday (or its last day) is a holiday - Good Friday, Christmas (§10)."""
    end_month = ((day.month - 1) // 3) * 3 + 3
    return last_session_of_month(date(day.year, end_month, 1))


@lru_cache(maxsize=8192)
def period_ends(day: date) -> tuple[str, ...]:
    """Which reporting periods ``day`` closes, of ``week``, ``month``, ``quarter`` (§11)."""
    ends = (
        ("week", last_session_of_week(day)),
        ("month", last_session_of_month(day)),
        ("quarter", last_session_of_quarter(day)),
    )
    return tuple(name for name, last in ends if last == day)


def week_last(sessions: np.ndarray) -> np.ndarray:
    """Mask of the sessions (datetime64[D], sorted, whole weeks) that end their Mon-Sun week."""
    week = (sessions.astype(np.int64) + 3) // 7  # 1970-01-01 was a Thursday: weeks start Monday
    return np.append(week[1:] != week[:-1], True)


def session_closes_utc(sessions: np.ndarray) -> np.ndarray:
    """Close instants (datetime64[ns], UTC) of the given sessions (all must be sessions)."""
    t = _tables()
    idx = np.searchsorted(t.sessions, sessions)
    if len(idx) and (idx.max() >= len(t.sessions) or (t.sessions[idx] != sessions).any()):
        raise CalendarRangeError("not all of these days are sessions in the calendar")
    return t.closes[idx]


def missing_sessions(days: np.ndarray) -> np.ndarray:
    """Sessions between the first and last of ``days`` (datetime64[D], sorted) not in it."""
    if len(days) < 2:
        return np.array([], dtype="datetime64[D]")
    expected = sessions_between(days[0].astype(date), days[-1].astype(date))
    if len(expected) == len(days) and (expected == days).all():
        return expected[:0]  # the usual history: every session there (isin costs ~30 µs)
    return expected[~np.isin(expected, days)]


# --- the constitution's windows -------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """The constitution's timetable (New York wall-clock times), from ``cadence_of``: it has
    no defaults, so no timetable but the constitution's can reach a window or a clock."""

    atr_refresh: time
    entry_start: time
    entry_end: time
    entry_weekday: tuple[tuple[str, int], ...]  # (sleeve, weekday: 0 = Monday), by sleeve
    management_start: time
    management_end: time
    weekly_report: time
    early_close_shift: timedelta
    assignment_check: time


_WEEKDAY_INDEX = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


def cadence_of(constitution: Constitution) -> Cadence:
    """The timetable of a validated constitution model (``constitution.models.Constitution``):
    what the rules' clock, the facts builder and the quiet-tick check must all agree on."""
    c = constitution
    entry = {k: getattr(c.sleeves, k).entry for k in ("gen", "rev", "com")}
    return Cadence(
        atr_refresh=c.protocol.atr.refresh,
        entry_start=entry["gen"].start,
        entry_end=entry["gen"].end,
        entry_weekday=tuple(sorted((k, _WEEKDAY_INDEX[w.day]) for k, w in entry.items())),
        management_start=c.cadence.friday_management.start,
        management_end=c.cadence.friday_management.end,
        weekly_report=c.cadence.weekly_report.at,
        early_close_shift=timedelta(minutes=c.cadence.early_close_shift_minutes),
        assignment_check=c.cadence.assignment_check.at,
    )


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class DayWindows:
    """Everything scheduled on one New York date. Empty when the date is not a session."""

    day: date
    is_session: bool
    early_close: bool = False
    open: datetime | None = None
    close: datetime | None = None
    atr_refresh: datetime | None = None
    entry: MappingProxyType = field(
        default_factory=lambda: MappingProxyType({})
    )  # sleeve -> Window
    management: Window | None = None
    weekly_report: datetime | None = (
        None  # the report cut: a week's, month's or quarter's last session
    )


def _at(day: date, t: time) -> datetime:
    # Building from the wall-clock time in the zone is what makes DST right: 09:30 is 09:30 EST
    # in January and 09:30 EDT in July (13:30 vs 14:30 UTC).
    return datetime.combine(day, t, tzinfo=NEW_YORK)


def _clip(start: datetime, end: datetime, close: datetime) -> Window | None:
    end = min(end, close)
    return Window(start, end) if start < end else None


@lru_cache(maxsize=4096)  # every tick of a day asks; a Cadence is a frozen, hashable value
def windows_for(day: date, cadence: Cadence) -> DayWindows:
    i = _index(day)
    if i is None:
        return DayWindows(day=day, is_session=False)
    t = _tables()
    early = bool(t.early[i])
    opened, closed = _to_ny(t.opens[i]), _to_ny(t.closes[i])
    entry = {
        sleeve: w
        for sleeve, wd in cadence.entry_weekday
        if wd == day.weekday()
        and (w := _clip(_at(day, cadence.entry_start), _at(day, cadence.entry_end), closed))
    }
    management = report = None
    shift = cadence.early_close_shift if early else timedelta(0)
    if last_session_of_week(day) == day:
        start = _at(day, cadence.management_start) - shift
        management = _clip(start, _at(day, cadence.management_end) - shift, closed)
    if period_ends(day):  # the report cut of a week, month or quarter (§11, §10)
        report = _at(day, cadence.weekly_report) - shift
    return DayWindows(
        day=day,
        is_session=True,
        early_close=early,
        open=opened,
        close=closed,
        atr_refresh=_at(day, cadence.atr_refresh),
        entry=MappingProxyType(entry),
        management=management,
        weekly_report=report,
    )


AnchorName = Literal["management", "assignment_check"]


@dataclass(frozen=True, slots=True)
class Anchored:
    """An intraday close-anchored event on one day: the constitution's (regular) time and when
    it fires that day."""

    name: AnchorName
    regular: time
    at: datetime


def close_anchored(
    day: date, cadence: Cadence, opened: datetime, closed: datetime, early: bool
) -> tuple[Anchored, ...]:
    """Friday management start and the assignment check on ``day`` (a week's last session),
    in the constitution's order. The one implementation of the early-close clip (D24).

    On an early close both move ``early_close_shift`` earlier; a shifted time that lands at or
    after the close fires ``EARLY_CLOSE_GUARD`` before the close instead, and the clip never
    moves an event ahead of one the constitution puts before it (they may coincide). Nothing
    fires before the open."""
    return _anchored(
        day,
        cadence.early_close_shift,
        cadence.management_start,
        cadence.assignment_check,
        opened,
        closed,
        early,
    )


def _anchored(
    day: date,
    shift: timedelta,
    management: time,
    check: time,
    opened: datetime,
    closed: datetime,
    early: bool,
) -> tuple[Anchored, ...]:
    shift = shift if early else timedelta(0)
    latest = closed - EARLY_CLOSE_GUARD
    events: list[tuple[AnchorName, time]] = sorted(
        (("management", management), ("assignment_check", check)), key=lambda e: e[1]
    )  # stable: management first on a tie
    out: list[Anchored] = []
    floor = opened
    for name, t in events:
        at = _at(day, t) - shift
        if early and at >= closed:
            at = latest
        at = max(at, floor)
        out.append(Anchored(name, t, at))
        floor = at
    return tuple(out)


def schedule_minutes(at: datetime, early_close: bool, cadence: Cadence) -> int:
    """The rules' schedule clock at ``at`` (``clock.schedule_minutes``): New York minutes since
    midnight on the normal-day timetable.

    A normal day: the real minutes. An early close: the real minutes plus ``early_close_shift``,
    and never less than the regular time of a close-anchored event that has already fired
    today (``close_anchored``). The second part matters only for an event the clip moved
    earlier than the shift: v1.3's 15:00 assignment check fires at 12:45 on an early close, and
    from 12:45 the clock reads 15:00 (900), staying there until the shifted minutes pass it at
    13:00. Every other shifted time keeps its meaning (management 14:30-15:45 = 12:30-13:45,
    the 16:30 weekly report = 14:30); the entry windows read ``clock.minutes_et`` and do not
    shift. The clock never runs backwards.

    ``early_close`` is the facts' word. The day's open and close come from the calendar when it
    knows the day as an early close (no clip on one that is not the week's last session: the
    scheduler has no close-anchored events there); otherwise 09:30-13:00 is assumed.
    """
    ny = at.astimezone(NEW_YORK)
    minutes = ny.hour * 60 + ny.minute
    if not early_close:
        return minutes
    shift = cadence.early_close_shift
    fired = _early_close_anchored(
        ny.date(), shift, cadence.management_start, cadence.assignment_check
    )
    out = minutes + int(shift.total_seconds()) // 60
    for fire, regular in fired:
        if fire <= ny and regular > out:
            out = regular
    return out


@lru_cache(maxsize=1024)
def _early_close_anchored(
    day: date, shift: timedelta, management: time, check: time
) -> tuple[tuple[datetime, int], ...]:
    """(fire instant, regular minutes) of the close-anchored events on ``day`` taken as an early close."""
    try:
        known = is_early_close(day)
    except CalendarRangeError:
        known = False
    if known:
        if last_session_of_week(day) != day:
            return ()
        opened, closed = session_open(day), session_close(day)
        if opened is None or closed is None:  # a known early close is a session
            return ()
    else:
        opened, closed = _at(day, _USUAL_OPEN), _at(day, _USUAL_EARLY_CLOSE)
    return tuple(
        (a.at, a.regular.hour * 60 + a.regular.minute)
        for a in _anchored(day, shift, management, check, opened, closed, True)
    )


def new_york_date(at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return at.astimezone(NEW_YORK).date()


def atr_bar_cutoff(at: datetime, refresh: time) -> tuple[date, datetime]:
    """The ATR in force at ``at``: (last bar date it may use, when it was refreshed).

    ATR is refreshed at ``refresh`` (``protocol.atr.refresh``, v1.3 09:30 ET) each session from
    the bars of the sessions *before* it; before today's refresh the previous session's refresh
    is still in force.
    """
    day = new_york_date(at)
    session = day if is_session(day) else previous_session(day)
    if session == day and at < _at(day, refresh):
        session = previous_session(day)
    return previous_session(session), _at(session, refresh)


def refresh_after(bar_day: date, refresh: time) -> datetime:
    """When an ATR computed through ``bar_day`` first comes into force (the next session's
    ``refresh``)."""
    return _at(next_session(bar_day), refresh)
