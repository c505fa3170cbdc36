"""Performance metrics of a daily return series.

CAGR, volatility, Sharpe, Sortino, Calmar and maximum drawdown come from empyrical-reloaded
(the maintained fork of Quantopian's empyrical), on daily returns annualised over 252
sessions with a zero risk-free rate. What it lacks is written here and tested against values
worked by hand (tests/reports/test_metrics.py): the longest drawdown's duration, win rate and
profit factor of closed trades. A figure that cannot be computed (too few returns, no losing
trade) is ``None``, never NaN or infinity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd


@dataclass(frozen=True)
class Performance:
    cagr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float | None  # a positive fraction: 0.12 is a 12 % fall from the peak
    drawdown_days: int | None  # calendar days of the longest peak -> recovery (or -> end)


def _finite(x: float) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def performance(returns: pd.Series, start: date | None = None) -> Performance:
    """``returns``: daily simple returns indexed by session date; ``start``: the session the
    first return is measured from (its value is the first peak of the drawdown)."""
    import empyrical  # the reports extra; the text summary's figures do without it

    if len(returns) < 2:
        return Performance(None, None, None, None, None, None, None)
    dd = _finite(empyrical.max_drawdown(returns))
    wealth = (1 + returns).cumprod()
    if start is not None:
        wealth = pd.concat([pd.Series([1.0], index=[pd.Timestamp(start)]), wealth])
    return Performance(
        cagr=_finite(empyrical.annual_return(returns)),
        volatility=_finite(empyrical.annual_volatility(returns)),
        sharpe=_finite(empyrical.sharpe_ratio(returns)),
        sortino=_finite(empyrical.sortino_ratio(returns)),
        calmar=_finite(empyrical.calmar_ratio(returns)) if dd else None,
        max_drawdown=abs(dd) if dd is not None else None,
        drawdown_days=drawdown_days(wealth),
    )


def drawdown_days(values: pd.Series) -> int:
    """Calendar days of the longest drawdown of ``values`` (indexed by date): from the day a
    peak was set to the first day the value is back at it, or to the last day if it never
    recovered. 0 without a drawdown."""
    longest, peak, peak_day = 0, -math.inf, None
    below = False
    for index, value in values.items():
        day = pd.Timestamp(index).date()  # type: ignore[arg-type]  # pandas-stubs: labels are Hashable
        if value >= peak:
            if below and peak_day is not None:
                longest = max(longest, (day - peak_day).days)
            peak, peak_day, below = value, day, False
        elif peak_day is not None:
            below = True
            longest = max(longest, (day - peak_day).days)
    return longest


def win_rate(pnls: Sequence[float]) -> float | None:
    """Share of closed trades with a positive P&L."""
    return sum(p > 0 for p in pnls) / len(pnls) if pnls else None


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit / gross loss of closed trades; None when nothing was lost."""
    loss = -sum(p for p in pnls if p < 0)
    return sum(p for p in pnls if p > 0) / loss if loss > 0 else None


def monthly_returns(returns: pd.Series) -> dict[tuple[int, int], float]:
    """(year, month) -> compounded return of that month's sessions."""
    import empyrical

    if returns.empty:
        return {}
    by_month = empyrical.aggregate_returns(returns, "monthly")
    return {(int(y), int(m)): float(v) for (y, m), v in by_month.items()}
