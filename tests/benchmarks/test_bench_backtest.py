"""Backtest benchmarks (pytest-benchmark, rounds=1; figures, no timing asserts).

A two-year backtest (2024-01-02..2025-12-31, 502 sessions) with every monitoring tick
(78 a day at L0, plus the close): target <= 60 s with the durable-rules pipeline. The scheduler's own share is
measured separately with a cycle that does nothing, so the two figures say where time goes.
Figures are in docs/scheduler.md.
"""

from __future__ import annotations

import os
from datetime import date, time

from adapters.storage.audit_store import open_decision_log
from engine.market import calendar
from scheduler import compose
from scheduler.backtest import run_backtest
from tests.scheduler.fake_cycle import FakeCycle

FIRST, LAST = date(2024, 1, 2), date(2025, 12, 31)


class _WeeklyOnlyRecords(FakeCycle):
    """Records only the weekly-report decision (the weekly note links to it): the scheduler's
    cost without 39 000 audit writes."""

    def run(self, at):
        log, self.log = (
            self.log,
            (
                self.log
                if at.timetz().replace(tzinfo=None) in (time(16, 30), time(14, 30))
                else None
            ),
        )
        try:
            return super().run(at)
        finally:
            self.log = log


def _report(benchmark, summary) -> None:
    sessions = len(calendar.sessions_between(FIRST, LAST))
    total = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        sessions=sessions,
        cycles=summary.cycles,
        seconds=round(total, 2),
        ms_per_session=round(1000 * total / sessions, 2),
    )
    assert summary.sessions == sessions == 502


def test_bench_backtest_two_years_scheduler_only(benchmark, bundled, tmp_path):
    """Triggers + replay + runner + journal + one audit record per week, no pipeline work."""

    def factory(ctx):
        log = open_decision_log(ctx.db_url, ctx.mode, ctx.clock)
        return lambda constitution: _WeeklyOnlyRecords(constitution, log=log)

    runs = iter(range(10))
    summary = benchmark.pedantic(
        lambda: run_backtest(
            bundled,
            FIRST,
            LAST,
            f"sqlite:///{tmp_path}/s{next(runs)}.db",
            factory,
            synthetic_seed=1,
        ),
        rounds=1,
        iterations=1,
    )
    _report(benchmark, summary)


def test_bench_backtest_paper_pipeline(benchmark, bundled, tmp_path):
    """The real thing: synthetic market, paper broker, SQL ledger, durable-rules, audit log.

    By default this replays the first quarter of 2024 (61 sessions, every tick) and reports the
    per-session figure and a projection; set ALLUSE_BENCH_FULL=1 for the full two years
    (figures in docs/scheduler.md)."""
    full = os.environ.get("ALLUSE_BENCH_FULL") == "1"
    last = LAST if full else date(2024, 3, 28)
    summary = benchmark.pedantic(
        lambda: run_backtest(
            bundled,
            FIRST,
            last,
            f"sqlite:///{tmp_path}/p.db",
            compose.paper_cycle_factory,
            synthetic_seed=7,
        ),
        rounds=1,
        iterations=1,
    )
    sessions = len(calendar.sessions_between(FIRST, last))
    total = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        sessions=sessions,
        cycles=summary.cycles,
        decided=summary.decided,
        seconds=round(total, 2),
        ms_per_session=round(1000 * total / sessions, 2),
        projected_two_years_s=round(total / sessions * 502, 1),
    )
    assert summary.sessions == sessions
