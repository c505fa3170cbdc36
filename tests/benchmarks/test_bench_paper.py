"""One full paper cycle for a three-sleeve portfolio (target <= 20 ms, no timing asserts).

``cached_market``: the snapshot is built once (chains for 11 underlyings cost ~25 ms in the
synthetic adapter): this measures facts + rules + risk + audit + plan + orders + ledger.
``synthetic_market``: the same cycle including the synthetic market's snapshot.
Both decide every cycle (quiet ticks off); ``quiet_tick`` measures what a monitoring tick
costs when nothing changed since the decision in force (engine.cycle.quiet, D27)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.brokers.paper import PaperBroker
from engine.clock import FixedClock
from engine.cycle.bootstrap import Portfolio, open_portfolio
from engine.cycle.quiet import QuietTicks
from engine.cycle.trading import TradingCycle
from engine.execution.executor import MemoryLedgerStore
from engine.records.audit import RunMode
from engine.records.log import InMemoryDecisionLog
from tests.execution import helpers

THURSDAY = helpers.at(helpers.WEEK.replace(day=11), 10, 0)


class CachedMarket:
    def __init__(self, market):
        self.market, self.cache = market, {}

    def snapshot(self, at, symbols, params):
        key = (at, tuple(symbols))
        if key not in self.cache:
            self.cache[key] = self.market.snapshot(at, symbols, params)
        return self.cache[key]

    def history(self, symbol, first, last):
        return self.market.history(symbol, first, last)


def _cycle(bundled, market, db_url=None, quiet=False):
    if db_url:
        from scheduler.compose import open_paper_cycle

        cycle, broker, _ = open_paper_cycle(db_url, market)
    else:
        broker = PaperBroker(market)
        broker.connect()
        log = InMemoryDecisionLog(RunMode.PAPER, FixedClock(datetime(2024, 1, 11, tzinfo=UTC)))
        cycle = TradingCycle(
            bundled, market, broker, MemoryLedgerStore(), log, venue_sync=broker.sync
        )
    t0 = helpers.at(helpers.WEEK, 9, 40)
    broker.sync(t0, market.snapshot(t0, cycle.symbols, cycle.params))
    open_portfolio(cycle, Portfolio(helpers.CAPITAL, helpers.WEEK), t0, broker.seed_position)
    if not quiet:
        cycle.quiet = QuietTicks(None, 0)  # decide every cycle: the full pipeline is measured
    cycle.run(THURSDAY)  # the Thursday entries happen once; the benchmark measures steady cycles
    return cycle


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_bench_paper_cycle_cached_market(benchmark, bundled, store, tmp_path):
    cycle = _cycle(
        bundled,
        CachedMarket(helpers.market()),
        f"sqlite:///{tmp_path / 'b.db'}" if store == "sqlite" else None,
    )
    report = benchmark(cycle.run, THURSDAY)
    assert set(report.equity) == {"GEN", "REV", "COM"} and not report.quiet


def test_bench_paper_cycle_synthetic_market(benchmark, bundled):
    cycle = _cycle(bundled, helpers.market())
    report = benchmark(cycle.run, THURSDAY)
    assert set(report.equity) == {"GEN", "REV", "COM"} and not report.quiet


def test_bench_paper_cycle_quiet_tick(benchmark, bundled, tmp_path):
    cycle = _cycle(bundled, helpers.market(), f"sqlite:///{tmp_path / 'q.db'}", quiet=True)
    cycle.run(THURSDAY.replace(minute=5))  # settles the reference tick
    report = benchmark(cycle.run, THURSDAY.replace(minute=10))
    assert report.quiet and set(report.equity) == {"GEN", "REV", "COM"}
