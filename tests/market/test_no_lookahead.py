"""No look-ahead: nothing the replay market says at time t depends on a bar value stamped after t.

A daily bar's open is stamped at its session's open, its high, low, close and volume at the
session's close (docs/decisions.md D26, D80). For a set of instants t across a week - before
the open, at it, in the entry window, near and at the close, after it, on an early close and
over a weekend - every value stamped after t is perturbed (or the future bars removed), and the
snapshot and the facts at t must be byte-identical to those of the untouched history.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from datetime import date, datetime

import numpy as np
import pytest

from adapters.market_data.files import BarMarketData
from adapters.market_data.synthetic import generate
from engine.market import calendar
from engine.market.facts_builder import build_facts, candidates_for_day
from engine.market.snapshot import DailyHistory, MarketSnapshot
from scheduler.cli.data_cmds import demo_accounts
from tests.bundled_params import PARAMS, with_tickers
from tests.market.conftest import ny

LAST = date(2024, 12, 6)
SYMBOLS = ("SPY", "AAPL", "NVDA")
TICKERS = {"gen": ("AAPL", "SPY"), "rev": ("NVDA",), "com": ("AAPL",)}
INSTANTS = [
    ny(date(2024, 11, 25), 9, 0),  # Monday before the open (the weekend's Friday close in force)
    ny(date(2024, 11, 25), 9, 30),
    ny(date(2024, 11, 27), 10, 0),  # Wednesday: Rev's entry window
    ny(date(2024, 11, 27), 15, 59, 59),
    ny(date(2024, 11, 27), 16, 0),  # the close itself
    ny(date(2024, 11, 28), 12, 0),  # Thanksgiving: no session
    ny(date(2024, 11, 29), 12, 45),  # early close (13:00)
    ny(date(2024, 11, 29), 13, 0),
    ny(date(2024, 12, 2), 10, 0),  # Monday, Com's window
    ny(date(2024, 12, 5), 10, 15),  # Thursday, Gen's window
    ny(date(2024, 12, 5), 16, 30),
]


@functools.cache
def _bars() -> dict[str, DailyHistory]:
    bars = dict(generate(21, LAST, SYMBOLS).bars)
    spy = bars["SPY"]  # the S&P 500 as the real file has it: closes only
    nan = np.full(len(spy), np.nan)
    bars["SPX"] = DailyHistory("SPX", spy.days, nan, nan, nan, spy.close * 10, nan, close_only=True)
    return bars


def _stamped_after(h: DailyHistory, t: datetime) -> dict[str, np.ndarray]:
    """Per column, the rows whose value is stamped after ``t``: a bar's open at its session's
    open, the rest at its close."""
    day = calendar.new_york_date(t)
    today = np.datetime64(day, "D")
    opened = calendar.is_session(day) and t >= calendar.session_open(day)
    closed = calendar.is_session(day) and t >= calendar.session_close(day)
    opens = (h.days > today) | ((h.days == today) & (not opened))
    closes = (h.days > today) | ((h.days == today) & (not closed))
    return {"open": opens, "high": closes, "low": closes, "close": closes, "volume": closes}


def _perturbed(bars: dict[str, DailyHistory], t: datetime, seed: int) -> dict[str, DailyHistory]:
    rng = np.random.default_rng(seed)
    out = {}
    for symbol, h in bars.items():
        cols = {}
        for name, after in _stamped_after(h, t).items():
            col = getattr(h, name).copy()
            col[after] *= rng.uniform(0.5, 2.0, int(after.sum()))  # a different future
            cols[name] = col
        out[symbol] = replace(h, **cols)
    return out


def _truncated(bars: dict[str, DailyHistory], t: datetime) -> dict[str, DailyHistory]:
    """The history as a data vendor would have it at t: no bar that has not opened, and of a
    session under way only its open."""
    out = {}
    for symbol, h in bars.items():
        after = _stamped_after(h, t)
        cols = {k: getattr(h, k).copy() for k in ("high", "low", "close", "volume")}
        for name, col in cols.items():
            col[after[name]] = np.nan
        out[symbol] = replace(h, **cols).slice(0, int((~after["open"]).sum()))
    return out


def _picture(bars: dict[str, DailyHistory], t: datetime) -> str:
    """Everything the market says at t, as text: the facts document and every chain's columns."""
    market = BarMarketData(bars, index_symbol="SPX")
    snap = market.snapshot(t, [*SYMBOLS, "SPX"], PARAMS)
    facts = build_facts(
        snap,
        demo_accounts(t, snap),
        candidates=candidates_for_day(calendar.new_york_date(t), with_tickers(TICKERS)),
        params=PARAMS,
    )
    return json.dumps({"facts": facts.model_dump(mode="json"), "chains": _chains(snap)})


def _chains(snap: MarketSnapshot) -> dict:
    return {
        s: {
            k: np.asarray(getattr(c, k)).astype(str).tolist()
            for k in ("expiry", "strike", "is_call", "bid", "ask", "delta", "iv", "volume")
        }
        | {"spot": c.spot}
        for s, c in sorted(snap.chains.items())
    }


@pytest.mark.parametrize("t", INSTANTS, ids=lambda t: t.strftime("%a %m-%d %H:%M"))
def test_nothing_at_t_depends_on_a_bar_value_stamped_after_t(t):
    bars = _bars()
    seen = _picture(bars, t)

    assert _picture(_perturbed(bars, t, seed=1), t) == seen
    assert _picture(_perturbed(bars, t, seed=2), t) == seen
    assert _picture(_truncated(bars, t), t) == seen


def test_the_perturbation_reaches_what_is_known_after_t():
    """The check has teeth: what the market says after the perturbed close does change."""
    bars = _bars()
    t = ny(date(2024, 11, 27), 15, 59, 59)
    later = ny(date(2024, 11, 27), 16, 0)

    assert _picture(_perturbed(bars, t, seed=1), later) != _picture(bars, later)


def test_close_only_bars_show_the_last_close_until_the_session_closes():
    bars = _bars()
    market = BarMarketData(bars, index_symbol="SPX")
    spx = bars["SPX"]
    i = int(np.flatnonzero(spx.days == np.datetime64("2024-11-27"))[0])

    at_open = market.snapshot(ny(date(2024, 11, 27), 9, 30), ["SPX"], PARAMS).quotes["SPX"].last
    at_close = market.snapshot(ny(date(2024, 11, 27), 16, 0), ["SPX"], PARAMS).quotes["SPX"].last

    assert at_open == spx.close[i - 1] and at_close == spx.close[i]
