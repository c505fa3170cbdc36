"""Which option expiries and strikes US exchanges list: the grid of a synthetic chain.

**Expiries.** Every underlying lists the monthly expiry (the third Friday; the session before it
when that Friday is a holiday). Short-term ("Weeklys") expiries came later and on more weekdays
over time; the table below is the programme's history as the exchanges announced it, taken for
index products together (SPX, SPY, QQQ, IWM, DIA) - approximate for the smaller ones:

| from | index products | single stocks |
|---|---|---|
| before 2005-10-28 | monthly only | monthly only |
| 2005-10-28 (Cboe Weeklys launch) | Fridays | monthly only |
| 2010-06-04 (Weeklys on single stocks) | Fridays | Fridays |
| 2016-09-07 (SPY Wednesday Weeklys) | Wednesdays, Fridays | Fridays |
| 2018-02-16 (SPY Monday Weeklys) | Mondays, Wednesdays, Fridays | Fridays |
| 2022-11-14 (SPY Tuesday/Thursday) | every session | Fridays |
| 2026-01-26 (Nasdaq Monday/Wednesday STOs) | every session | Mondays, Wednesdays, Fridays for the qualifying mega-caps (AAPL, AMZN, GOOGL, META, MSFT, NVDA, TSLA, AVGO, IBIT); Fridays for the rest |

The 2026 programme's first expiries were Monday 2026-02-02 and Wednesday 2026-02-04; the
exchange skips a Monday or Wednesday that coincides with the company's earnings or a monthly
expiry (not modelled: the earnings filter skips puts in those weeks, and a monthly is a Friday).
Its qualifying list is reviewed quarterly; the table takes the first quarter's list as fixed.

A short-term expiry whose day is a holiday moves to the session before it in the same week
(Friday -> Thursday on Good Friday); a Monday one to the session after it.

**Strikes.** Near-term expiries (35 days or less) use the short-term intervals: index ETFs $1
(SPX $5), single stocks $0.50 below $100, $1 to $150, $2.50 to $500, $5 to $1,000, then $10.
Later expiries use the standard intervals ($0.50 below $25, $1 below $100, $2.50 below $250,
$5 below $1,000, then $10; index ETFs $1, $5 above $1,000). An expiry's strikes cover
``strike_sds`` standard deviations of the underlying to that expiry either side of the money
(at least ``min_each_side`` strikes); when that would be more than ``max_strikes``, the interval
widens along the listing ladder ($1 -> $2.50 -> $5 ...), as far-dated series are listed.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from engine.market import calendar

INDEX_PRODUCTS = frozenset({"SPY", "QQQ", "IWM", "DIA", "SPX"})
NEAR_TERM_DAYS = 35
LADDER = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0)
Eras = tuple[tuple[date, tuple[int, ...]], ...]  # (from, the weekdays listed) in date order
_INDEX_ERAS: Eras = (
    (date(2005, 10, 28), (4,)),
    (date(2016, 9, 7), (2, 4)),
    (date(2018, 2, 16), (0, 2, 4)),
    (date(2022, 11, 14), (0, 1, 2, 3, 4)),
)
_STOCK_ERAS: Eras = ((date(2010, 6, 4), (4,)),)
# Nasdaq's Monday/Wednesday short-term series for the qualifying mega-caps (SEC-approved
# January 2026, effective 2026-01-26; Q1 2026 list). D19: Rev's 3-5 DTE from Wednesday is
# next Monday's expiry on these.
MON_WED_STOCKS = frozenset(
    {"AAPL", "AMZN", "GOOGL", "META", "MSFT", "NVDA", "TSLA", "AVGO", "IBIT"}
)
_MON_WED_ERAS: Eras = (*_STOCK_ERAS, (date(2026, 1, 26), (0, 2, 4)))
FIRST_MON_WED_EXPIRY = date(2026, 2, 2)  # listed from 01-26; the first expiries the week after


def _not_yet_listed(symbol_kind: str, day: date) -> bool:
    """A Monday/Wednesday stock expiry before the programme's first (the week of 2026-01-26)."""
    return product_kind(symbol_kind) == "NVDA" and day < FIRST_MON_WED_EXPIRY and day.weekday() != 4


def short_term_weekdays(symbol: str, day: date) -> tuple[int, ...]:
    """The weekdays (Monday 0) on which ``symbol`` lists short-term expiries on ``day``."""
    if symbol in INDEX_PRODUCTS:
        eras = _INDEX_ERAS
    else:
        eras = _MON_WED_ERAS if symbol in MON_WED_STOCKS else _STOCK_ERAS
    days: tuple[int, ...] = ()
    for start, weekdays in eras:
        if day >= start:
            days = weekdays
    return days


@lru_cache(maxsize=2048)  # every chain of a session looks twelve weeks ahead
def _week_sessions(monday: date) -> tuple[date, ...]:
    return tuple(
        d.astype(date) for d in calendar.sessions_between(monday, monday + timedelta(days=6))
    )


def _listed_in_week(monday: date, weekdays: tuple[int, ...]) -> list[date]:
    sessions = _week_sessions(monday)
    out = set()
    for wd in weekdays:
        target = monday + timedelta(days=wd)
        if target in sessions:
            out.add(target)
            continue
        before = [s for s in sessions if s < target]
        after = [s for s in sessions if s > target]
        moved = (after[:1] if wd == 0 else before[-1:]) or after[:1]
        out.update(moved)
    return sorted(out)


def monthly_expiry(year: int, month: int) -> date:
    """The third Friday of the month, or the last session before it when it is a holiday."""
    first = date(year, month, 1)
    friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
    return friday if calendar.is_session(friday) else calendar.previous_session(friday)


@lru_cache(maxsize=8192)
def expiries_from(symbol_kind: str, first: date, short: int, monthlies: int) -> tuple[date, ...]:
    """Expiries still trading on session ``first``: up to ``short`` short-term ones, then the
    next ``monthlies`` monthly ones not among them (``symbol_kind`` is a product symbol; the
    cache key is the kind of product, not the ticker)."""
    weekdays = short_term_weekdays(symbol_kind, first)
    picked: list[date] = []
    monday = first - timedelta(days=first.weekday())
    for week in range(12 if weekdays else 0):
        for d in _listed_in_week(monday + timedelta(weeks=week), weekdays):
            if d >= first and len(picked) < short and not _not_yet_listed(symbol_kind, d):
                picked.append(d)
    months: list[date] = []
    year, month = first.year, first.month
    while len(months) < monthlies:
        m = monthly_expiry(year, month)
        if m >= first and m not in picked:
            months.append(m)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(sorted(picked + months))


def product_kind(symbol: str) -> str:
    """A representative of the symbol's listing rules (cache key for ``expiries_from``)."""
    if symbol in INDEX_PRODUCTS:
        return "SPY"
    return "NVDA" if symbol in MON_WED_STOCKS else "STOCK"


def strike_increment(symbol: str, spot: float) -> float:
    """The standard listed strike interval near the money (monthly and later expiries)."""
    if symbol in INDEX_PRODUCTS:
        return 1.0 if spot < 1000 else 5.0
    for limit, step in ((25, 0.5), (100, 1.0), (250, 2.5), (1000, 5.0)):
        if spot < limit:
            return step
    return 10.0


def short_term_increment(symbol: str, spot: float) -> float:
    """The short-term (weekly) strike interval near the money."""
    if symbol in INDEX_PRODUCTS:
        return 1.0 if spot < 1000 else 5.0
    for limit, step in ((100, 0.5), (150, 1.0), (500, 2.5), (1000, 5.0)):
        if spot < limit:
            return step
    return 10.0


def strike_grids(
    symbol: str,
    spot: float,
    sd: np.ndarray,
    days: np.ndarray,
    *,
    strike_sds: float = 4.0,
    min_each_side: int = 10,
    max_strikes: int = 81,
) -> tuple[np.ndarray, np.ndarray]:
    """The listed strikes of several expiries (``sd``, the underlying's standard deviation to
    each in dollars, and ``days``, the days to each), one expiry after the other, and how many
    each has. Each grid is ``centre + k x step`` for k in -n..n, kept above zero."""
    near, far = short_term_increment(symbol, spot), strike_increment(symbol, spot)
    shapes = [
        _grid_shape(
            symbol,
            spot,
            s,
            near if d <= NEAR_TERM_DAYS else far,
            strike_sds,
            min_each_side,
            max_strikes,
        )
        for s, d in zip(sd.tolist(), days.tolist(), strict=True)
    ]
    centre, step = np.array([c for c, _, _ in shapes]), np.array([s for _, s, _ in shapes])
    n = np.array([k for _, _, k in shapes], dtype=np.int64)
    count = 2 * n + 1
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count + n, count)
    strikes = np.repeat(centre, count) + offset * np.repeat(step, count)
    listed = strikes > 0
    expiry = np.repeat(np.arange(len(shapes)), count)
    return strikes[listed], np.bincount(expiry[listed], minlength=len(shapes))


def _grid_shape(
    symbol: str,
    spot: float,
    sd: float,
    step: float,
    strike_sds: float,
    min_each_side: int,
    max_strikes: int,
) -> tuple[float, float, int]:
    """One expiry's grid as (centre, step, n): ``step``, the interval for its term (near-term
    or standard), widened along the ladder until the grid fits, at least ``min_each_side``
    strikes either side."""
    half = max(strike_sds * sd, min_each_side * step)
    if not math.isfinite(half):
        raise ValueError(f"{symbol}: no strike grid for a standard deviation of {sd}")
    for rung in [r for r in LADDER if r >= step]:
        step = rung
        if 2 * int(half // step) + 1 <= max_strikes:
            break
    n = min(max(int(half // step), min_each_side), (max_strikes - 1) // 2)
    return round(spot / step) * step, step, n
