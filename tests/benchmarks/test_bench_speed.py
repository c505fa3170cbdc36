"""Issue 18 benchmarks, each beside its reference in one run (figures, no timing asserts).

* one explained evaluation (3 sleeves, 10 positions): compiled vs durable-rules vs the
  hand-written v1.3 (tests/benchmarks/handwritten_v13.py); also the compiled matching alone
  (the explanation is built when the decision is asked for);
* 10,000 accounts: compiled (matching, and the explained decision) vs hand-written;
* the README's two-year synthetic backtest: event-driven + compiled, with its chain feed (the
  default on two cores, D212) and in one process, vs tick by tick + durable-rules (the path
  before issue 18). By default the first quarter of 2024 and a projection;
  ALLUSE_BENCH_FULL=1 for the full two years; ALLUSE_BENCH_ROUNDS (default 1) rounds of each;
* real history (../shared/data: VIX and S&P 500 daily bars, 1990-2023), converted to the
  ``--data DIR`` bar store by ``alluse data import``'s ``import_bars``, run in a process of its
  own (tests/benchmarks/real_history_run.py): seconds and peak memory (that process's maximum
  resident set); ALLUSE_BENCH_YEARS (default 3) sets the span, 34 for 1990-02-01..2023-06-16;
* a sweep of one-year backtests in 1 and 2 processes (ALLUSE_BENCH_SWEEP_POINTS, default 4;
  16 for the issue's figure; ALLUSE_BENCH_SWEEP_MONTHS, default 1, 12 for a year).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date

import pytest

from engine.rules.collector import collector_paused
from engine.rules.evaluate import evaluate, evaluation
from scheduler import compose
from scheduler.backtest import run_backtest
from tests.benchmarks import handwritten_v13 as hand
from tests.benchmarks.portfolios import many_accounts, portfolio
from tests.conftest import SHARED_DATA

FULL = os.environ.get("ALLUSE_BENCH_FULL") == "1"
# Rounds of each two-year backtest (default 1): on a machine whose speed swings, the least of a
# few is the figure of what the code can do, the mean of what one run may take.
BACKTEST_ROUNDS = int(os.environ.get("ALLUSE_BENCH_ROUNDS", "1"))


@pytest.fixture(scope="module")
def small():
    return portfolio()


@pytest.fixture(scope="module")
def ten_thousand():
    return many_accounts(n_groups=3334)  # 10,002 accounts, 33,340 positions


# --- one evaluation ------------------------------------------------------------------------------

# The same rounds for all four, after a warm-up: the first call compiles the constitution's
# matchers (once per digest), which would otherwise be timed as a round and cut the rest short.
ONE = {"rounds": 2000, "warmup_rounds": 100}


def _one(benchmark, fn, *args, **kwargs):
    benchmark.group = "one explained evaluation (3 sleeves, 10 positions)"
    return benchmark.pedantic(fn, args=args, kwargs=kwargs, **ONE)


def test_bench_explained_evaluation_compiled(benchmark, bundled, small):
    decision = _one(benchmark, evaluate, bundled, small)
    assert decision.to_json() == evaluate(bundled, small, evaluator="durable").to_json()


def test_bench_explained_evaluation_durable(benchmark, bundled, small):
    assert _one(benchmark, evaluate, bundled, small, evaluator="durable").actions


def _handwritten(facts):
    """The reference under the same collector policy as both evaluators (engine.rules.collector),
    so the ratios compare the evaluators and not the garbage collector."""
    with collector_paused():
        return hand.evaluate(facts)


def test_bench_explained_evaluation_handwritten(benchmark, small):
    assert _one(benchmark, _handwritten, small)


def test_bench_evaluation_compiled_unexplained(benchmark, bundled, small):
    assert _one(benchmark, evaluation, bundled, small).fired


# --- 10,000 accounts -----------------------------------------------------------------------------


def test_bench_10000_accounts_compiled(benchmark, bundled, ten_thousand):
    benchmark.group = "10,000 accounts"
    e = benchmark.pedantic(evaluation, args=(bundled, ten_thousand), rounds=3, warmup_rounds=1)
    assert len({f.account for f in e.fired}) >= 9000


def test_bench_10000_accounts_compiled_explained(benchmark, bundled, ten_thousand):
    benchmark.group = "10,000 accounts"
    d = benchmark.pedantic(evaluate, args=(bundled, ten_thousand), rounds=2, warmup_rounds=1)
    assert len({a.account for a in d.actions}) >= 9000


def test_bench_10000_accounts_handwritten(benchmark, ten_thousand):
    benchmark.group = "10,000 accounts"
    assert benchmark.pedantic(_handwritten, args=(ten_thousand,), rounds=3, warmup_rounds=1)


# --- backtests -----------------------------------------------------------------------------------


def _durable_tick_by_tick(ctx):
    """Today's path before issue 18: durable-rules decides (with the compiled shadow), every
    tick is run (the factory's cycles are not skippable)."""
    from engine.rules import evaluate as E

    build = compose.paper_cycle_factory(ctx)

    def make(constitution):
        opening = build(constitution)
        opening.cycle.shadow = None
        real = E.evaluate

        class _Durable:
            def run(self, at):
                return opening.run(at)

        opening.cycle._evaluate = lambda facts: (
            real(constitution, facts, evaluator="durable"),
            None,
        )
        return _Durable()

    return make


@pytest.fixture(scope="module")
def warm(bundled, tmp_path_factory):
    """One short backtest first, so that no timed one pays for the process's first imports and
    the constitution's compiled matchers."""
    db = tmp_path_factory.mktemp("warm") / "w.db"
    first = date(2024, 1, 2)
    run_backtest(
        bundled,
        first,
        date(2024, 1, 5),
        f"sqlite:///{db}",
        compose.paper_cycle_factory,
        synthetic_seed=7,
    )


@pytest.mark.parametrize(
    "path",
    ["event-driven+compiled+chain feed", "event-driven+compiled", "tick-by-tick+durable"],
)
def test_bench_two_year_synthetic_backtest(benchmark, bundled, tmp_path, path, warm):
    benchmark.group = "README two-year synthetic backtest"
    first, last = date(2024, 1, 2), (date(2025, 12, 31) if FULL else date(2024, 3, 28))
    factory = compose.paper_cycle_factory if path.startswith("event") else _durable_tick_by_tick
    runs = iter(range(BACKTEST_ROUNDS))
    summary = benchmark.pedantic(
        lambda: run_backtest(
            bundled,
            first,
            last,
            f"sqlite:///{tmp_path}/b{next(runs)}.db",
            factory,
            synthetic_seed=7,
            chain_feed=path.endswith("chain feed"),  # D212; the reference runs in one process
        ),
        rounds=BACKTEST_ROUNDS,
        iterations=1,
    )
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(
        sessions=summary.sessions,
        cycles=summary.cycles,
        run=summary.run,
        decided=summary.decided,
        rounds=BACKTEST_ROUNDS,
        seconds=round(seconds, 2),  # the least of the rounds
        mean_s=round(benchmark.stats.stats.mean, 2),
        projected_two_years_s=round(seconds / summary.sessions * 502, 1),
    )
    assert summary.trades > 0


def _bar_store(tmp_path):
    if not (SHARED_DATA / "vix-daily.csv").exists():
        pytest.skip(f"real history not present in {SHARED_DATA}")
    from adapters.market_data.files import import_bars

    store = tmp_path / "bars"
    import_bars(SHARED_DATA / "vix-daily.csv", "VIX", store)
    import_bars(SHARED_DATA / "spx-daily-close.csv", "SPX", store)
    return store


def test_bench_real_history_backtest(benchmark, tmp_path):
    """In a process of its own, so the peak memory is this run's, not the largest of every
    benchmark before it (10,000 accounts take ~420 MB); the figure is the run's own seconds,
    the process's start and imports apart."""
    benchmark.group = "real history (VIX + S&P 500 daily)"
    store = _bar_store(tmp_path)
    years = int(os.environ.get("ALLUSE_BENCH_YEARS", "3"))
    first = date(1990, 2, 1)  # the ATR's first bars need sessions before the first day
    last = min(date(1990 + years, 1, 31), date(2023, 6, 16))
    args = [str(store), first.isoformat(), last.isoformat(), f"sqlite:///{tmp_path}/r.db"]
    report = benchmark.pedantic(lambda: _alone(args), rounds=1, iterations=1)
    benchmark.extra_info.update(report)
    assert report["sessions"] > 200


def _alone(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.real_history_run", *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("processes", [1, 2])
def test_bench_sweep_scales_with_processes(benchmark, tmp_path, processes):
    from scheduler import sweep

    benchmark.group = "sweep of one-year backtests"
    points = int(os.environ.get("ALLUSE_BENCH_SWEEP_POINTS", "4"))
    months = int(os.environ.get("ALLUSE_BENCH_SWEEP_MONTHS", "1"))
    values = [75 + i for i in range(points)]
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"from: 2024-01-02\nto: 2024-{months:02d}-28\nsynthetic: 7\n"
        f"grid:\n  vix.kill_switch: {values}\n"
    )
    started = time.perf_counter()
    rows = benchmark.pedantic(
        lambda: sweep.sweep(sweep.load_grid(grid), tmp_path / "out", sweep.local(processes)).rows,
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(
        points=points,
        months=months,
        processes=processes,
        seconds=round(time.perf_counter() - started, 2),
    )
    assert len(rows) == points
