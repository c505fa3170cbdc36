"""Quiet ticks: a cycle whose inputs are exactly those of the previous one is not decided again.

The monitoring cadence fires every 5 min / 1 min / 30 s. Live, prices move between ticks, so
every tick is a new question. Over daily bars the market is the same all session (the open,
then the close), and most ticks would ask the engine the question it has just answered. A
tick is *quiet* when, compared with the previous tick:

* the market snapshot has the same content (``market_key``: prices, quote ages, ATR
  readings, chains by underlying/as-of/spot, indicators and data findings);
* the ledger state is the same object (``LedgerState`` is immutable and replaced by every
  applied operation, so identity means "no operation since") and the previous tick applied
  no operation, submitted nothing and booked no fill; no order is open;
* the broker's connection state and the New York date are the same;
* every clock comparison the rules make (``clock_cuts``: ``clock.minutes_et >= 585`` ...)
  has the same truth value, counting only rule alternatives whose weekday tests hold today
  (Thursday's entry window cannot matter on a Tuesday).

Under those conditions the facts the rules see differ only in the clock's minute value, and
no rule can tell the difference, so the decision would fire the same rules with the same
bindings; the planner, seeing the same decision, ledger and market, would plan the same
orders and meet the same refusals. A quiet tick is therefore reported (``CycleReport.quiet``,
with the decision still in force) but not re-decided or re-recorded. When the rules use the
clock's minutes in any other way (arithmetic, as an operand, inside an action), ticks are
never quiet: ``clock_cuts`` returns None. (docs/decisions.md D27.)
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from constitution import expr as E
from constitution.compile import Atom, CompiledRules, Operand, is_joined, operand_refs
from engine.execution.ledger import LedgerState
from engine.market import calendar
from engine.market.snapshot import MarketSnapshot
from engine.rules.prepare import clock_fields

CLOCK_MINUTES = {
    "clock_minutes_et": "clock.minutes_et",
    "clock_schedule_minutes": "clock.schedule_minutes",
}
CLOCK_DAY = (
    "clock_weekday",
    "clock_session",
    "clock_last_session_of_week",
    "clock_expiry_session",
    "clock_quarter_end_week",
    "clock_quarter_last_session",
)  # constant all day
_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}

Test = tuple[str, str, object]  # (physical clock field, comparison, constant)
MinuteTest = tuple[str, str, float]  # (physical clock field, comparison, minutes)


@dataclass(frozen=True)
class ClockCut:
    """One rule alternative (disjunct) that compares the clock's minutes: its tests on the day
    (weekday, quarter-end week) and on the minutes. On a day its day tests fail it cannot fire,
    so its minute tests cannot matter."""

    day: tuple[Test, ...]
    minutes: tuple[MinuteTest, ...]


def clock_cuts(rules: CompiledRules) -> tuple[ClockCut, ...] | None:
    """The rule alternatives whose truth moves within a day, or None when the rules use the
    clock's minutes in a way that comparisons with constants cannot capture."""
    cuts: set[ClockCut] = set()
    for rule in rules.rules:
        for atoms in rule.disjuncts:
            cut = _clock_cut(atoms)
            if cut is None:
                return None
            if cut.minutes:
                cuts.add(cut)
        if any(_mentions_minutes(node) for effect in rule.effects for _, node in effect.values):
            return None
    return tuple(sorted(cuts, key=repr))


def _clock_cut(atoms: tuple[Atom, ...]) -> ClockCut | None:
    """One alternative's day and minute tests; None when it uses the minutes otherwise."""
    day: list[Test] = []
    minutes: list[MinuteTest] = []
    for atom in atoms:
        if _operand_mentions_clock(atom.operand):
            return None
        if atom.field in CLOCK_MINUTES:
            number = atom.operand
            if (
                atom.op not in _OPS
                or isinstance(number, bool)
                or not isinstance(number, int | float)
            ):
                return None
            minutes.append((atom.field, atom.op, number))
        elif atom.field in CLOCK_DAY and atom.op in _OPS and not is_joined(atom.operand):
            day.append(
                (atom.field, atom.op, atom.operand)
            )  # a reference: the alternative stays live
    return ClockCut(tuple(sorted(day, key=repr)), tuple(sorted(minutes, key=repr)))


def _mentions_minutes(node: E.Node) -> bool:
    return any(n.dotted in CLOCK_MINUTES.values() for n in E.names(node))


def _operand_mentions_clock(operand: Operand) -> bool:
    return any(ref.field in CLOCK_MINUTES for ref in operand_refs(operand))


def clock_signature(
    cuts: tuple[ClockCut, ...],
    at: datetime,
    early_close_shift_minutes: int,
    cadence: calendar.Cadence,
) -> tuple:
    """The New York date and, for every alternative that can fire today, the truth of its
    minute tests at ``at`` (the clock's facts as ``engine.rules.prepare`` computes them, with the
    same timetable: the constitution's, ``calendar.cadence_of``)."""
    ny = at.astimezone(calendar.NEW_YORK)
    clock = clock_fields(ny, calendar.is_early_close(ny.date()), early_close_shift_minutes, cadence)
    live = tuple(
        tuple(_OPS[op](clock[f], v) for f, op, v in cut.minutes)
        if all(_OPS[op](clock[f], v) for f, op, v in cut.day)
        else None
        for cut in cuts
    )
    return (ny.date(), live)


def next_clock_change(
    cuts: tuple[ClockCut, ...],
    at: datetime,
    early_close_shift_minutes: int,
    cadence: calendar.Cadence,
) -> datetime | None:
    """The first instant after ``at`` at which ``clock_signature`` may differ from its value
    at ``at``: the next minute one of today's live minute tests can flip, else midnight. None
    on an early close, whose schedule clock is shifted and clipped (D24): every tick counts."""
    ny = at.astimezone(calendar.NEW_YORK)
    day = ny.date()
    if calendar.is_early_close(day):
        return None
    start = datetime.combine(day, time(0), tzinfo=calendar.NEW_YORK)
    clock = clock_fields(ny, False, early_close_shift_minutes, cadence)
    minute = clock["clock_minutes_et"]
    flips = [
        m
        for cut in cuts
        if all(_OPS[op](clock[f], v) for f, op, v in cut.day)
        for _, _, v in cut.minutes
        for m in (math.floor(v), math.floor(v) + 1)  # a test on minute v flips at v or v + 1
        if m > minute
    ]
    return start + timedelta(minutes=min(flips, default=24 * 60))


def market_key(s: MarketSnapshot) -> tuple:
    """The snapshot's content without its timestamp (quote ages are kept: they reach the facts).
    An adapter that knows two snapshots share their content says so with ``content_key``
    (daily bars: the quotes are restamped each tick, so their ages stay zero)."""
    if s.content_key is not None:
        return ("content", s.content_key)
    quotes = tuple((k, q.last, q.bid, q.ask, s.as_of - q.at) for k, q in sorted(s.quotes.items()))
    vix = None if s.vix is None else (s.vix.last, s.vix.bid, s.vix.ask, s.as_of - s.vix.at)
    atr = tuple((k, a.value, a.source, a.last_bar, a.findings) for k, a in sorted(s.atr5.items()))
    # A chain's prices are those observed at its as_of; the same instant means the same chain.
    chains = tuple((k, c.as_of, c.spot, len(c)) for k, c in sorted(s.chains.items()))
    return (
        quotes,
        vix,
        atr,
        chains,
        s.earnings_this_week,
        tuple(sorted(s.last_close.items())),
        s.vix_last_close,
        s.vix_closes_above_30,
        s.trigger_history,
        s.hedge_trigger_off_closes,
        s.spx_drawdown,
        s.breadth_above_50dma,
        s.findings,
    )


@dataclass
class QuietTicks:
    """Remembers the last tick that changed nothing, and recognises the next one like it."""

    cuts: tuple[ClockCut, ...] | None
    shift_minutes: int
    cadence: calendar.Cadence | None = None
    _key: tuple | None = None
    _state: LedgerState | None = None

    def key(self, at: datetime, market: tuple, state: LedgerState, connected: bool) -> tuple | None:
        """``market`` is ``market_key`` of the tick's snapshot."""
        if self.cuts is None or self.cadence is None or state.open_orders():
            return None  # no timetable known: every tick is decided
        return (clock_signature(self.cuts, at, self.shift_minutes, self.cadence), market, connected)

    def is_quiet(self, key: tuple | None, state: LedgerState) -> bool:
        return key is not None and key == self._key and state is self._state

    def until(
        self, at: datetime, state: LedgerState, content_until: datetime | None
    ) -> datetime | None:
        """After a tick at ``at``: until when every tick would be quiet if nothing but the
        clock moved - the market's content holds (``content_until``, from its adapter) and no
        clock comparison flips - or None when the next tick must be decided or checked (no
        quiet reference, another ledger state, an open order, content unknown)."""
        if self._key is None or state is not self._state or state.open_orders():
            return None
        if content_until is None or self.cuts is None or self.cadence is None:
            return None
        clock = next_clock_change(self.cuts, at, self.shift_minutes, self.cadence)
        return None if clock is None else min(clock, content_until)

    def settle(
        self, key: tuple | None, before: LedgerState, after: LedgerState, acted: bool
    ) -> None:
        """After a decided tick: it is the reference for the next one only if it changed nothing."""
        if key is not None and after is before and not acted:
            self._key, self._state = key, after
        else:
            self._key = self._state = None
