"""Market-data benchmarks (pytest-benchmark; figures, no timing asserts).

Targets: a chain of 8 expiries x 60 strikes <= 5 ms; facts for a three-sleeve portfolio
<= 5 ms; ATR(5) over 30 years of daily bars <= 50 ms.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest

from adapters.market_data.synthetic import generate
from engine.facts.model import NEW_YORK, Account, Position
from engine.market import calendar
from engine.market.facts_builder import build_facts, candidates_for_day
from engine.market.indicators import atr_series, clean_history
from engine.market.options import synthetic_chain
from engine.market.snapshot import AtrReading, MarketSnapshot, Quote
from tests.bundled_params import ATR, PARAMS, with_tickers

AT = datetime.combine(date(2026, 11, 19), time(10, 0), tzinfo=NEW_YORK)
VIX_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vix-daily.csv"
TICKERS = {
    "gen": ("AAPL", "MSFT", "AMZN", "GOOG", "SPY", "QQQ", "IWM"),
    "rev": ("NVDA", "TSLA"),
    "com": ("AAPL", "MSFT", "AMZN", "GOOGL", "NVDA", "TSLA", "META"),
}
PRICES = {
    "AAPL": 230.0,
    "MSFT": 420.0,
    "AMZN": 190.0,
    "GOOG": 170.0,
    "GOOGL": 169.0,
    "SPY": 600.0,
    "QQQ": 510.0,
    "IWM": 225.0,
    "NVDA": 180.0,
    "TSLA": 400.0,
    "META": 700.0,
}


def test_bench_chain_11_expiries_as_listed(benchmark):
    synthetic_chain("AAPL", 231.7, 18.0, AT)  # warm the calendar tables and the VIX anchor

    chain = benchmark(synthetic_chain, "AAPL", 231.7, 18.0, AT)

    # 8 weeklies and 3 monthlies, each with its listed strikes (4 sd either side), put and call
    assert len(chain.expiries) == 11 and len(chain) > 900


def _portfolio() -> tuple[Account, ...]:
    friday = date(2026, 11, 20)
    base = dict(
        equity=500_000,
        base_equity=500_000,
        high_water_mark=520_000,
        cash=300_000,
        opened=date(2025, 1, 2),
    )
    gen = Account(
        id="GEN",
        kind="gen",
        **base,
        positions=tuple(
            Position(
                symbol=s,
                right="put",
                side="short",
                strike=round(PRICES[s] * 0.97),
                expiry=friday,
                contracts=3,
                entry_credit=1.2,
                mark=0.6,
                delta=-0.2,
            )
            for s in TICKERS["gen"]
        ),
    )
    rev = Account(
        id="REV",
        kind="rev",
        **base,
        positions=tuple(
            Position(
                symbol=s,
                right="put",
                side="short",
                strike=round(PRICES[s] * 0.95),
                expiry=friday + timedelta(days=7),
                contracts=5,
                entry_credit=2.0,
            )
            for s in TICKERS["rev"]
        ),
    )
    com = Account(
        id="COM",
        kind="com",
        **base,
        positions=tuple(
            p
            for s in TICKERS["com"]
            for p in (
                Position(
                    symbol=s, right="stock", side="long", shares=200, cost_basis=PRICES[s] * 0.8
                ),
                Position(
                    symbol=s,
                    right="call",
                    side="short",
                    strike=round(PRICES[s] * 1.04),
                    expiry=friday,
                    contracts=2,
                    entry_credit=1.5,
                ),
            )
        ),
    )
    return gen, rev, com


def _snapshot() -> MarketSnapshot:
    return MarketSnapshot(
        as_of=AT,
        quotes={
            s: Quote(s, p, AT - timedelta(seconds=1), bid=p - 0.01, ask=p + 0.01)
            for s, p in PRICES.items()
        },
        vix=Quote("VIX", 18.0, AT),
        atr5={s: AtrReading(p * 0.015, "wilder", date(2026, 11, 18)) for s, p in PRICES.items()},
        chains={s: synthetic_chain(s, p, 18.0, AT) for s, p in PRICES.items()},
        last_close={s: (date(2026, 11, 18), p) for s, p in PRICES.items()},
        vix_last_close=(date(2026, 11, 18), 18.0),
        spx_drawdown=0.02,
        breadth_above_50dma=0.55,
    )


def test_bench_facts_for_a_three_sleeve_portfolio(benchmark):
    snapshot, accounts = _snapshot(), _portfolio()
    candidates = candidates_for_day(AT.date(), with_tickers(TICKERS))

    facts = benchmark(build_facts, snapshot, accounts, params=PARAMS, candidates=candidates)

    assert len(facts.accounts) == 3 and len(facts.market.underlyings) == 11 and facts.quality == ()


@pytest.fixture(scope="module")
def thirty_years():
    if VIX_CSV.is_file():
        from adapters.market_data.files import read_bars

        h = clean_history(read_bars(VIX_CSV, "VIX"))
        return h.slice(len(h) - 30 * 252, len(h))
    # no real history here: thirty years of the synthetic market instead
    return generate(
        1,
        calendar.sessions_between(date(2000, 1, 3), date(2030, 1, 2))[-1].astype(date),
        symbols=("SPY",),
    ).bars["SPY"]


def test_bench_atr5_over_30_years_of_daily_bars(benchmark, thirty_years):
    days, atr = benchmark(atr_series, thirty_years, ATR.period)

    assert len(days) >= 7_500 and np.isfinite(atr[4:]).all()
