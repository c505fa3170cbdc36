"""The backtest's running totals give what the list of every report gave, and forget a
reported week's ticks (a 33-year replay must not hold 665,000 reports)."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.cycle.report import CycleReport
from engine.execution.events import WeekEvent
from scheduler.backtest import cagr, max_drawdown
from scheduler.cadence import NEW_YORK
from scheduler.tally import RunningJournal
from scheduler.weekly import WeekReport

T0 = datetime(2024, 1, 8, 9, 30, tzinfo=NEW_YORK)  # a Monday


def _report(minutes: int, equity: dict, mode="active", quiet=False, events=(), orders=0):
    return CycleReport(
        at=T0 + timedelta(minutes=minutes),
        decision_id=f"d-{minutes}",
        constitution_version="1.3.1",
        constitution_digest="sha256:x",
        market_mode=mode,
        equity=equity,
        quiet=quiet,
        events=events,
        orders_submitted=orders,
        fills=orders,
    )


REPORTS = [
    _report(0, {"GEN": 100.0, "REV": 50.0}, orders=2),
    _report(5, {"GEN": 120.0, "REV": 40.0}, mode="hedged", events=(WeekEvent.HEDGED_WEEK,)),
    _report(10, {"GEN": 90.0, "REV": 45.0}, quiet=True),
    _report(60 * 24 + 5, {"GEN": 110.0}, mode="safe", orders=1),
    _report(60 * 24 * 2, {"GEN": 95.0, "REV": 60.0}, mode="kill"),
]


def test_running_totals_equal_the_figures_of_the_whole_list():
    journal = RunningJournal()
    for r in REPORTS:
        journal.append(r.at, "schedule", r)
    t = journal.totals
    totals = [sum(r.equity.values()) for r in REPORTS]
    assert (t.cycles, t.decided) == (5, 4)
    assert (t.start_equity, t.end_equity) == (totals[0], totals[-1])
    assert cagr(t.start_equity, t.end_equity, t.first_at, t.last_at) == cagr(
        totals[0], totals[-1], REPORTS[0].at, REPORTS[-1].at
    )
    for account in ("GEN", "REV"):
        want = max_drawdown(r.equity[account] for r in REPORTS if account in r.equity)
        assert t.drawdowns[account] == want
    assert t.drawdowns["GEN"] == (120.0 - 90.0) / 120.0
    assert (t.trades, t.fills) == (3, 3)
    day = lambda r: r.at.date()  # noqa: E731
    assert t.mode_days == {
        "hedged": {day(REPORTS[1])},
        "safe": {day(REPORTS[3])},
        "kill": {day(REPORTS[4])},
    }


def test_a_repeat_counts_like_that_many_quiet_reports():
    one, many = RunningJournal(), RunningJournal()
    first = REPORTS[0]
    quiet = first.model_copy(update={"quiet": True, "orders_submitted": 0, "fills": 0})
    ats = [first.at + timedelta(minutes=5 * k) for k in range(1, 4)]
    for j in (one, many):
        j.append(first.at, "schedule", first)
    for at in ats:
        one.append(at, "schedule", quiet.model_copy(update={"at": at}))
    many.repeat(quiet.model_copy(update={"at": ats[0]}), ats[0], ats[-1], len(ats))
    a, b = one.totals, many.totals
    assert (a.cycles, a.decided, a.last_at, a.drawdowns, a.mode_days) == (
        b.cycles,
        b.decided,
        b.last_at,
        b.drawdowns,
        b.mode_days,
    )
    week = (T0 - timedelta(hours=10), T0 + timedelta(days=1))
    assert len(one.reports_between(*week)) == len(many.reports_between(*week)) == 4


def test_a_reported_weeks_ticks_are_forgotten_but_the_last_one():
    journal = RunningJournal()
    for r in REPORTS[:3]:
        journal.append(r.at, "schedule", r)
    cut = T0 + timedelta(hours=7)
    week = WeekReport(week_start=T0.date(), cut_at=cut, week_type="Calm-Income", cycles=3)
    assert journal.put_week(week) and not journal.put_week(week)
    assert journal.reports_between(T0 - timedelta(days=1), cut) == [REPORTS[2]]
    assert journal.last_before(cut + timedelta(days=3)) == REPORTS[2]
    assert journal.totals.cycles == 3  # the totals keep everything
