"""A backtest's journal as running totals: what the summary needs, never the list of ticks.

A 33-year replay reports some 665,000 ticks; keeping each report held about 1.1 GiB. The
``RunningJournal`` folds every report into totals as it arrives (cycles, decided cycles,
equity at the first and last report, each account's running peak and deepest drawdown,
trades, fills, rejections, the days in each market mode) and keeps only the reports of the
week being reported (``Runner.weekly`` labels a week from them) plus the last one before it.
Repeated quiet reports (``scheduler.replay`` skips quiet ticks) are counted, not copied.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime

from engine.cycle.report import CycleReport
from engine.execution.events import WeekEvent
from engine.records.audit import utc_stamp
from scheduler.cadence import NEW_YORK
from scheduler.weekly import WeekReport

MODE_EVENTS = {
    "hedged": frozenset({WeekEvent.HEDGED_WEEK, WeekEvent.HEDGE_DEPLOYED}),
    "safe": frozenset({WeekEvent.SAFE}),
    "kill": frozenset({WeekEvent.KILL}),
}


@dataclass
class Totals:
    cycles: int = 0
    decided: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    start_equity: float | None = None  # total equity of the first report that has equity
    end_equity: float | None = None
    peaks: dict[str, float] = field(default_factory=dict)
    drawdowns: dict[str, float] = field(default_factory=dict)
    trades: int = 0
    fills: int = 0
    rejections: int = 0
    mode_days: dict[str, set[date]] = field(default_factory=lambda: {m: set() for m in MODE_EVENTS})

    def add(self, r: CycleReport, last_at: datetime, count: int = 1) -> None:
        """``count`` reports like ``r`` (the repeats differ only in their time, up to
        ``last_at``, and are quiet: no orders, fills or events)."""
        self.cycles += count
        self.decided += 0 if r.quiet else 1
        self.first_at = self.first_at or r.at
        self.last_at = last_at
        self.trades += r.orders_submitted
        self.fills += r.fills
        self.rejections += r.rejections
        if r.equity:
            total = sum(r.equity.values())
            self.start_equity = total if self.start_equity is None else self.start_equity
            self.end_equity = total
        for account, equity in r.equity.items():
            self._mark(account, equity)
        self._mode_day(r)

    def _mark(self, account: str, equity: float) -> None:
        peak = max(self.peaks.get(account, float("-inf")), equity)
        self.peaks[account] = peak
        worst = self.drawdowns.get(account, 0.0)
        if peak > 0:
            worst = max(worst, (peak - equity) / peak)
        self.drawdowns[account] = worst

    def _mode_day(self, r: CycleReport) -> None:
        day = r.at.astimezone(NEW_YORK).date()
        for mode, events in MODE_EVENTS.items():
            if r.market_mode == mode or events.intersection(r.events):
                self.mode_days[mode].add(day)


class RunningJournal:
    """The ``scheduler.journal.Journal`` of a backtest, keeping totals and the current week."""

    def __init__(self) -> None:
        self.totals = Totals()
        self._stamps: list[str] = []
        self._reports: list[tuple[CycleReport, int]] = []  # (report, how many like it)
        self._weeks: dict[str, WeekReport] = {}
        self.events: list[tuple[datetime, str, dict]] = []

    def append(self, at: datetime, reason: str, report: CycleReport) -> None:
        self.totals.add(report, report.at)
        self._keep(at, report, 1)

    def repeat(self, report: CycleReport, first: datetime, last: datetime, count: int) -> None:
        self.totals.add(report, last, count)
        self._keep(first, report, count)

    def _keep(self, at: datetime, report: CycleReport, count: int) -> None:
        self._stamps.append(utc_stamp(at))
        self._reports.append((report, count))

    def reports_between(self, start: datetime, end: datetime) -> list[CycleReport]:
        lo, hi = (
            bisect_left(self._stamps, utc_stamp(start)),
            bisect_left(self._stamps, utc_stamp(end)),
        )
        return [r for r, n in self._reports[lo:hi] for _ in range(n)]

    def last(self) -> CycleReport | None:
        return self._reports[-1][0] if self._reports else None

    def last_before(self, at: datetime) -> CycleReport | None:
        i = bisect_left(self._stamps, utc_stamp(at))
        return self._reports[i - 1][0] if i else None

    def put_week(self, week: WeekReport) -> bool:
        key = week.week_start.isoformat()
        if key in self._weeks:
            return False
        self._weeks[key] = week
        self._forget_before(week.cut_at)
        return True

    def _forget_before(self, cut: datetime) -> None:
        """A reported week's ticks are not asked for again; the last one stays (the next
        week's opening equity)."""
        i = bisect_left(self._stamps, utc_stamp(cut))
        if i > 1:
            del self._stamps[: i - 1]
            del self._reports[: i - 1]

    def weeks(self) -> list[WeekReport]:
        return [self._weeks[k] for k in sorted(self._weeks)]

    def event(self, at: datetime, kind: str, detail: dict) -> None:
        self.events.append((at, kind, detail))
