"""Metrics: empyrical-reloaded's on series whose answers are worked by hand, and the
hand-written ones (drawdown duration, win rate, profit factor) at their edges."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from scheduler.reports.metrics import (
    drawdown_days,
    monthly_returns,
    performance,
    profit_factor,
    win_rate,
)


def _returns(values: list[float], start: str = "2024-01-02") -> pd.Series:
    wealth = pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)
    return wealth.pct_change().dropna()


def test_max_drawdown_is_the_deepest_fall_from_a_peak():
    perf = performance(_returns([100, 120, 90, 130, 65]))
    assert perf.max_drawdown == pytest.approx(0.5)  # 130 -> 65


def test_cagr_of_a_doubling_over_252_sessions_is_100_percent():
    daily = 2 ** (1 / 252) - 1
    r = pd.Series([daily] * 252, index=pd.bdate_range("2024-01-02", periods=252))
    perf = performance(r)
    assert perf.cagr == pytest.approx(1.0, rel=1e-9)
    assert perf.volatility == pytest.approx(0.0, abs=1e-12)
    assert perf.max_drawdown == 0.0 and perf.calmar is None and perf.drawdown_days == 0


def test_sharpe_is_mean_over_std_times_sqrt_252():
    r = pd.Series([0.01, -0.005, 0.002, 0.007], index=pd.bdate_range("2024-01-02", periods=4))
    expected = r.mean() / r.std(ddof=1) * 252**0.5
    assert performance(r).sharpe == pytest.approx(expected)


def test_too_few_returns_give_no_figures_rather_than_nan():
    perf = performance(_returns([100, 101]))
    assert perf.cagr is None and perf.sharpe is None and perf.max_drawdown is None


def test_drawdown_days_run_from_the_peak_to_the_recovery():
    values = pd.Series(
        [100, 110, 100, 105, 110, 120],
        index=pd.to_datetime(
            ["2024-01-01", "2024-01-05", "2024-01-10", "2024-01-20", "2024-02-04", "2024-02-05"]
        ),
    )
    assert drawdown_days(values) == 30  # peak 2024-01-05, back at 110 on 2024-02-04


def test_drawdown_days_of_an_unrecovered_fall_run_to_the_last_day():
    values = pd.Series(
        [100, 90, 95], index=pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-11"])
    )
    assert drawdown_days(values) == 10


def test_a_new_high_equal_to_the_peak_ends_the_drawdown():
    values = pd.Series(
        [100, 99, 100, 99],
        index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05"]),
    )
    assert drawdown_days(values) == 2  # 01-01 -> 01-03, then 01-03 -> 01-05


def test_performance_counts_the_start_session_as_the_first_peak():
    r = pd.Series([-0.1, 0.2], index=pd.to_datetime(["2024-01-03", "2024-01-04"]))
    assert performance(r, start=date(2024, 1, 2)).drawdown_days == 2


def test_win_rate_counts_only_positive_trades_as_wins():
    assert win_rate([10.0, -5.0, 0.0, 3.0]) == 0.5  # a flat trade is not a win
    assert win_rate([]) is None


def test_profit_factor_is_gross_profit_over_gross_loss():
    assert profit_factor([30.0, -10.0, -5.0, 15.0]) == pytest.approx(3.0)
    assert profit_factor([1.0, 2.0]) is None  # nothing lost: no finite factor
    assert profit_factor([-1.0]) == 0.0


def test_monthly_returns_compound_the_sessions_of_each_month():
    r = pd.Series(
        [0.1, 0.1, -0.5], index=pd.to_datetime(["2024-01-30", "2024-01-31", "2024-02-01"])
    )
    assert monthly_returns(r) == {(2024, 1): pytest.approx(0.21), (2024, 2): pytest.approx(-0.5)}
