"""Vectorised Black-Scholes against vollib, the synthetic chain's shape, strike selection."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from vollib.black_scholes import black_scholes
from vollib.black_scholes.greeks.analytical import delta as vollib_delta
from vollib.black_scholes.implied_volatility import implied_volatility

from engine.market.listings import strike_increment
from engine.market.options import (
    ChainModel,
    bs_delta,
    bs_price,
    expiry_dates,
    implied_vol,
    select_strike,
    synthetic_chain,
    years_to_expiry,
)
from engine.market.snapshot import OptionChain, OptionContract
from tests.bundled_params import LIQUIDITY
from tests.market.conftest import ny

THURSDAY = ny(date(2026, 11, 19), 10, 0)
RATE = ChainModel().rate


@pytest.fixture(scope="module")
def chain() -> OptionChain:
    return synthetic_chain("AAPL", 231.7, 18.0, THURSDAY)


def _t(chain: OptionChain) -> np.ndarray:
    exp = [e.astype(date) for e in chain.expiry]
    lookup = dict(
        zip(chain.expiries, years_to_expiry(chain.as_of, list(chain.expiries)), strict=True)
    )
    return np.array([lookup[e] for e in exp])


def test_chain_prices_and_deltas_match_vollib_point_by_point(chain):
    t = _t(chain)
    price = bs_price(chain.spot, chain.strike, t, RATE, chain.iv, chain.is_call)
    delta = bs_delta(chain.spot, chain.strike, t, RATE, chain.iv, chain.is_call)

    for i in range(len(chain)):
        flag = "c" if chain.is_call[i] else "p"
        args = (flag, chain.spot, float(chain.strike[i]), float(t[i]), RATE, float(chain.iv[i]))
        assert price[i] == pytest.approx(black_scholes(*args), rel=1e-9, abs=1e-10)
        assert delta[i] == pytest.approx(vollib_delta(*args), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(chain.delta, delta)


def test_chain_mid_is_the_model_price_within_half_a_tick(chain):
    model = bs_price(chain.spot, chain.strike, _t(chain), RATE, chain.iv, chain.is_call)
    tick = np.where(model < 3.0, 0.01, 0.05)  # AAPL: pennies below $3, nickels above

    assert (np.abs(chain.mid - model) <= tick / 2 + 1e-9).all()
    quoted = chain.bid > 0  # worthless wings are quoted 0 bid
    assert ((chain.ask - chain.bid)[quoted] >= tick[quoted] - 1e-9).all() and (chain.bid >= 0).all()
    on_grid = np.round(chain.ask / tick) * tick
    assert np.allclose(chain.ask, on_grid)


def test_deep_in_the_money_spreads_stay_dollars_not_tens_of_dollars(chain):
    deep = chain.is_call & (chain.strike < chain.spot * 0.75)

    assert deep.any() and (chain.ask - chain.bid)[deep].max() < 0.5


def test_implied_vol_inverts_the_price_like_vollib():
    spot, t = 100.0, 7 / 365
    strikes = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    sigma = np.array([0.45, 0.32, 0.25, 0.22, 0.21])
    call = np.array([False, False, True, True, True])
    price = bs_price(spot, strikes, t, RATE, sigma, call)

    ours = implied_vol(price, spot, strikes, t, RATE, call)

    np.testing.assert_allclose(ours, sigma, rtol=1e-7)
    for i in range(5):
        ref = implied_volatility(
            float(price[i]), spot, float(strikes[i]), t, RATE, "c" if call[i] else "p"
        )
        assert ours[i] == pytest.approx(ref, rel=1e-6)


def test_implied_vol_is_nan_outside_the_arbitrage_bounds():
    out = implied_vol(np.array([0.0, 150.0, np.nan]), 100.0, 100.0, 0.1, RATE, True)

    assert np.isnan(out).all()


def test_chain_lists_the_weeklies_then_the_next_monthlies(chain):
    # Thursday 2026-11-19: eight short-term expiries - AAPL is on the 2026 Monday/Wednesday
    # programme, so Mondays, Wednesdays and Fridays (D19) - then the next monthlies not among
    # them (third Fridays)
    assert chain.expiries == (
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 25),
        date(2026, 11, 27),
        date(2026, 11, 30),
        date(2026, 12, 2),
        date(2026, 12, 4),
        date(2026, 12, 7),
        date(2026, 12, 18),
        date(2027, 1, 15),
        date(2027, 2, 19),
    )
    near = chain.expiry == np.datetime64("2026-11-20")
    assert np.allclose(np.diff(np.unique(chain.strike[near])), 2.5)  # weekly: $2.50 at $232
    far = chain.expiry == np.datetime64("2027-02-19")
    assert np.diff(np.unique(chain.strike[far])).min() >= 2.5
    assert (chain.strike[near].min() < 231.7 < chain.strike[near].max()).all()


def test_stock_weeklies_include_the_1dte_friday_and_move_to_thursday_on_good_friday():
    # GOOG (class C) is not on the 2026 Monday/Wednesday programme: Fridays only
    assert expiry_dates("GOOG", THURSDAY, 3) == [
        date(2026, 11, 20),
        date(2026, 11, 27),
        date(2026, 12, 4),
    ]
    assert expiry_dates("GOOG", ny(date(2026, 3, 30)), 2) == [date(2026, 4, 2), date(2026, 4, 10)]


def test_the_programmes_mega_caps_list_monday_wednesday_and_friday_expiries():
    assert expiry_dates("AAPL", THURSDAY, 3) == [
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 25),
    ]
    # before the programme's first expiry (Monday 2026-02-02): Fridays only
    assert expiry_dates("NVDA", ny(date(2026, 1, 26)), 2) == [date(2026, 1, 30), date(2026, 2, 2)]
    assert expiry_dates("NVDA", ny(date(2025, 11, 17)), 2) == [
        date(2025, 11, 21),
        date(2025, 11, 28),
    ]


def test_index_etfs_list_daily_expiries_including_0dte():
    assert expiry_dates("SPY", THURSDAY, 3) == [
        date(2026, 11, 19),
        date(2026, 11, 20),
        date(2026, 11, 23),
    ]
    assert expiry_dates("SPY", ny(date(2026, 11, 19), 16, 5), 1) == [
        date(2026, 11, 20)
    ]  # after the close


@pytest.mark.parametrize(
    ("symbol", "spot", "step"),
    [
        ("SPY", 600, 1.0),
        ("F", 12, 0.5),
        ("KO", 70, 1.0),
        ("AAPL", 231, 2.5),
        ("META", 700, 5.0),
        ("BKNG", 5000, 10.0),
    ],
)
def test_strike_increments_follow_listing_practice(symbol, spot, step):
    assert strike_increment(symbol, spot) == step


def test_volatility_rises_with_vix_and_has_a_put_skew():
    calm = synthetic_chain("SPY", 600.0, 12.0, THURSDAY)
    stress = synthetic_chain("SPY", 600.0, 36.0, THURSDAY)

    def atm(c):
        return (c.strike == 600.0) & c.is_call & (c.expiry == c.expiry[0])

    assert stress.iv[atm(stress)] > 2 * calm.iv[atm(calm)]
    puts = ~calm.is_call & (calm.expiry == calm.expiry[0])
    assert calm.iv[puts][0] > calm.iv[atm(calm)][0]  # the lowest strike is the richest


def _chain_of(*rows) -> OptionChain:
    contracts = [
        OptionContract("XYZ", date(2026, 11, 20), k, "put", bid, ask, d, 0.3, oi, vol)
        for k, d, bid, ask, oi, vol in rows
    ]
    return OptionChain.from_contracts("XYZ", THURSDAY, 100.0, contracts)


def test_selection_takes_the_delta_closest_to_the_middle_of_the_band():
    ch = _chain_of(
        (98, -0.41, 1.00, 1.02, 900, 300),
        (99, -0.43, 1.20, 1.22, 900, 300),
        (100, -0.47, 1.40, 1.42, 900, 300),
    )

    choice = select_strike(ch, "put", (0.40, 0.45), **LIQUIDITY)

    assert choice.contract.strike == 99 and choice.reason == "ok" and choice.in_band == 2


def test_selection_never_leaves_the_band():
    ch = _chain_of((97, -0.30, 1.0, 1.02, 900, 300), (100, -0.50, 1.4, 1.42, 900, 300))

    choice = select_strike(ch, "put", (0.40, 0.45), **LIQUIDITY)

    assert choice.contract is None and choice.reason == "none-in-band"


@pytest.mark.parametrize(
    ("row", "kwargs"),
    [
        ((99, -0.425, 1.0, 1.02, 499, 300), {}),  # open interest below 500
        ((99, -0.425, 1.0, 1.02, 900, 99), {}),  # volume below 100
        ((99, -0.425, 1.0, 1.06, 900, 300), {}),  # spread 5.8 % of mid
        (
            (99, -0.425, 1.0, 1.02, 900, 300),
            {"min_open_interest": 1000},
        ),  # threshold is an argument
    ],
)
def test_illiquid_candidates_are_filtered_out(row, kwargs):
    ch = _chain_of(row)

    choice = select_strike(ch, "put", (0.40, 0.45), **{**LIQUIDITY, **kwargs})

    assert choice.contract is None and choice.reason == "none-liquid" and choice.in_band == 1


def test_a_less_central_but_liquid_strike_beats_a_central_illiquid_one():
    ch = _chain_of((99, -0.425, 1.0, 1.02, 10, 300), (98, -0.405, 0.9, 0.92, 900, 300))

    assert select_strike(ch, "put", (0.40, 0.45), **LIQUIDITY).contract.strike == 98


def test_selection_on_a_real_sized_chain_respects_band_and_liquidity(chain):
    expiry = date(2026, 11, 27)  # the next week's Friday

    choice = select_strike(chain, "put", (0.30, 0.35), expiry=expiry, **LIQUIDITY)

    c = choice.contract
    assert c is not None and c.expiry == expiry and c.right == "put"
    assert 0.30 <= abs(c.delta) <= 0.35
    assert c.open_interest >= 500 and c.volume >= 100 and c.spread_pct <= 0.05
    assert math.isclose(abs(c.delta), 0.325, abs_tol=0.025)
