"""Issue 3 benchmarks: one evaluation of a three-sleeve portfolio (target <= 2 ms) and of
1,000 accounts (target <= 1.5 s) through durable-rules, each beside a hand-written Python
evaluation of the same decisions. Figures are printed by pytest-benchmark; nothing asserts time."""

from __future__ import annotations

import pytest

from engine.rules.evaluate import evaluate
from tests.benchmarks import handwritten_v13 as hand
from tests.benchmarks.portfolios import many_accounts, portfolio


@pytest.fixture(scope="module")
def small():
    return portfolio()


@pytest.fixture(scope="module")
def large():
    return many_accounts()


def test_handwritten_baseline_decides_exactly_like_the_engine(bundled, small, large):
    for facts in (small, large):
        assert hand.evaluate(facts) == hand.engine_firings(evaluate(bundled, facts))


def test_bench_portfolio_durable(benchmark, bundled, small):
    benchmark.group = "portfolio: 3 sleeves, 10 positions"
    decision = benchmark(evaluate, bundled, small)
    assert len(decision.actions) >= 8


def test_bench_portfolio_handwritten(benchmark, small):
    benchmark.group = "portfolio: 3 sleeves, 10 positions"
    assert benchmark(hand.evaluate, small)


def test_bench_1000_accounts_durable(benchmark, bundled, large):
    benchmark.group = "1,000 accounts"
    decision = benchmark.pedantic(
        evaluate, args=(bundled, large), rounds=3, iterations=1, warmup_rounds=1
    )
    assert len({a.account for a in decision.actions}) >= 900


def test_bench_1000_accounts_handwritten(benchmark, large):
    benchmark.group = "1,000 accounts"
    assert benchmark.pedantic(hand.evaluate, args=(large,), rounds=5, iterations=1)
