"""The synthetic chain's shape: put skew, term structure, no calendar or butterfly arbitrage on
the generated grid, VIX reproduced, per-ticker scaling, listed grids, spreads that widen."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from adapters.market_data.files import BarMarketData
from adapters.market_data.synthetic import generate
from engine.market.listings import expiries_from, monthly_expiry, short_term_weekdays
from engine.market.options import (
    ChainModel,
    bs_price,
    surface_for,
    synthetic_chain,
    years_to_expiry,
)
from engine.market.quotes import MarketView
from engine.market.surface import (
    INDEX_SMILE,
    STOCK_SMILE,
    Smile,
    atm_vol_for_vix,
    variance_swap_rate,
)
from tests.bundled_params import PARAMS
from tests.market.conftest import ny

THURSDAY = ny(date(2026, 11, 19), 10, 0)
RATE = ChainModel().rate
CHAINS = [
    ("SPY", 600.0, 12.0),
    ("SPY", 600.0, 45.0),
    ("AAPL", 231.7, 18.0),
    ("NVDA", 141.3, 30.0),
    ("TSLA", 32.4, 80.0),
]


def _ids(case):
    return f"{case[0]}-vix{case[2]:g}"


def _t(chain) -> np.ndarray:
    lookup = dict(
        zip(chain.expiries, years_to_expiry(chain.as_of, list(chain.expiries)), strict=True)
    )
    return np.array([lookup[e.astype(date)] for e in chain.expiry])


def _model_prices(chain) -> np.ndarray:
    return bs_price(chain.spot, chain.strike, _t(chain), RATE, chain.iv, chain.is_call)


def _by_expiry(chain, mask):
    for e in np.unique(chain.expiry):
        rows = mask & (chain.expiry == e)
        order = np.argsort(chain.strike[rows])
        yield e, np.flatnonzero(rows)[order]


@pytest.mark.parametrize("case", CHAINS, ids=_ids)
def test_puts_are_richer_the_lower_the_strike(case):
    chain = synthetic_chain(case[0], case[1], case[2], THURSDAY)

    for _, rows in _by_expiry(chain, ~chain.is_call & (chain.strike < chain.spot)):
        assert (np.diff(chain.iv[rows]) < 0).all()  # skew: iv falls as the strike rises


def test_the_skew_is_steeper_for_the_index_than_for_a_stock():
    t = np.array([30 / 365])
    index, stock = surface_for("SPY", 20.0), surface_for("AAPL", 20.0, scale=1.0)
    k = -np.sqrt(index.theta(t))  # one standard deviation down

    assert index.vol(k, t) / index.atm_vol(t) > stock.vol(k, t) / stock.atm_vol(t) > 1


def test_term_structure_slopes_up_in_calm_markets_and_inverts_in_stress():
    t = np.array([1, 7, 30, 91, 182, 365]) / 365
    calm, stress = surface_for("SPY", 11.0).atm_vol(t), surface_for("SPY", 60.0).atm_vol(t)

    assert (np.diff(calm) > 0).all() and (np.diff(stress) < 0).all()
    assert calm[2] == pytest.approx(atm_vol_for_vix(11.0)) and stress[2] == pytest.approx(
        atm_vol_for_vix(60.0)
    )


@pytest.mark.parametrize("vix", [9.14, 12.0, 20.0, 35.0, 82.69])
def test_the_index_surface_reproduces_vix_as_its_30_day_variance_swap(vix):
    sigma30 = atm_vol_for_vix(vix)

    assert 100 * np.sqrt(variance_swap_rate(sigma30)) == pytest.approx(vix, rel=1e-3)
    assert 0.8 * vix / 100 < sigma30 < vix / 100  # ATM sits below VIX: the wings are rich


@pytest.mark.parametrize("case", CHAINS, ids=_ids)
def test_no_butterfly_arbitrage_on_the_generated_grid(case):
    chain = synthetic_chain(case[0], case[1], case[2], THURSDAY)
    price = _model_prices(chain)

    for _, rows in _by_expiry(chain, chain.is_call):
        k, c = chain.strike[rows], price[rows]
        assert (np.diff(c) <= 1e-9).all()  # calls fall as the strike rises
        slope = np.diff(c) / np.diff(k)
        assert (np.diff(slope) >= -1e-9).all()  # and are convex in it
        # nor can the quotes be traded into a free butterfly: buy the wings, sell the body
        ask, bid = chain.ask[rows], chain.bid[rows]
        w = (k[2:] - k[1:-1]) / (k[2:] - k[:-2])
        assert (w * ask[:-2] + (1 - w) * ask[2:] - bid[1:-1] >= -1e-9).all()


@pytest.mark.parametrize("case", CHAINS, ids=_ids)
def test_no_calendar_arbitrage_on_the_generated_grid(case):
    chain = synthetic_chain(case[0], case[1], case[2], THURSDAY)
    price = _model_prices(chain)
    expiries = np.unique(chain.expiry)

    for near, far in zip(expiries[:-1], expiries[1:], strict=True):
        a = chain.is_call & (chain.expiry == near)
        b = chain.is_call & (chain.expiry == far)
        common = np.intersect1d(chain.strike[a], chain.strike[b])
        assert len(common) >= 5
        na = np.flatnonzero(a)[np.searchsorted(chain.strike[a], common)]
        fb = np.flatnonzero(b)[np.searchsorted(chain.strike[b], common)]
        assert (price[fb] >= price[na] - 1e-9).all()  # a later call is worth at least as much
        assert (chain.ask[fb] >= chain.bid[na]).all()  # nor is it tradeable the other way


def test_total_variance_never_falls_with_maturity_at_any_moneyness():
    k = np.linspace(-1.0, 0.6, 161)
    for vix in (9.0, 20.0, 80.0):
        surf = surface_for("SPY", vix)
        t = np.array([1, 2, 7, 14, 30, 60, 91, 182, 365, 730]) / 365
        w = np.array([surf.total_variance(k, np.full_like(k, ti)) for ti in t])
        assert (np.diff(w, axis=0) >= -1e-12).all()


@pytest.mark.parametrize("smile", [INDEX_SMILE, STOCK_SMILE])
@pytest.mark.parametrize("theta", [1e-5, 1e-3, 0.02, 0.3])
def test_the_smile_has_a_non_negative_density_durrleman(smile, theta):
    """Durrleman's condition g(k) >= 0: the risk-neutral density the smile implies is positive."""
    k = np.linspace(-12, 8, 8001) * np.sqrt(theta)
    h = k[1] - k[0]
    w = smile.total_variance(k, np.full_like(k, theta))
    w1, w2 = np.gradient(w, h), np.gradient(np.gradient(w, h), h)
    g = (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2

    assert g[2:-2].min() >= -1e-6


def test_smile_parameters_outside_the_no_arbitrage_region_are_refused():
    with pytest.raises(ValueError):
        Smile(rho=-0.8, eta=1.2)  # eta (1 + |rho|) = 2.16 > 2
    with pytest.raises(ValueError):
        Smile(rho=-0.5, eta=1.0, gamma=0.7)


def test_each_ticker_is_the_index_surface_scaled_by_its_vol_ratio():
    t = np.array([7, 30, 182]) / 365
    index, twice = surface_for("SPY", 20.0), surface_for("NVDA", 20.0, scale=2.0)

    np.testing.assert_allclose(twice.atm_vol(t), 2 * index.atm_vol(t))


def test_the_replay_measures_each_tickers_vol_against_the_index_without_look_ahead():
    bars = generate(9, date(2024, 6, 28), ("SPY", "NVDA", "MSFT")).bars
    market = BarMarketData(bars)
    at = ny(date(2024, 6, 28), 10, 0)

    snap = market.snapshot(at, ["SPY", "NVDA", "MSFT"], PARAMS)

    # the synthetic market gives NVDA 2.5x and MSFT 1.35x the index's volatility
    assert snap.vol_scales["SPY"] == 1.0
    assert snap.vol_scales["NVDA"] == pytest.approx(2.5, rel=0.2)
    assert snap.vol_scales["MSFT"] == pytest.approx(1.35, rel=0.2)

    def atm_iv(chain, expiry):  # interpolated at the forward, where the smile is flat
        rows = chain.is_call & (chain.expiry == np.datetime64(expiry))
        forward = chain.spot * np.exp(RATE * 21 / 365)
        return np.interp(forward, chain.strike[rows], chain.iv[rows])

    monthly = date(2024, 7, 19)
    ratio = atm_iv(snap.chains["NVDA"], monthly) / atm_iv(snap.chains["SPY"], monthly)
    assert ratio == pytest.approx(snap.vol_scales["NVDA"], rel=0.05)


def test_modelled_far_quotes_sit_on_the_same_surface_as_the_chain():
    chain = synthetic_chain("SPY", 600.0, 20.0, THURSDAY)
    from engine.market.snapshot import MarketSnapshot, Quote

    snap = MarketSnapshot(
        as_of=THURSDAY,
        quotes={"SPY": Quote("SPY", 600.0, THURSDAY)},
        vix=Quote("VIX", 20.0, THURSDAY),
        chains={"SPY": chain},
    )
    view = MarketView(snap)
    last = chain.expiries[-1]
    i = int(
        np.flatnonzero(
            (chain.expiry == np.datetime64(last)) & chain.is_call & (chain.strike == 560.0)
        )[0]
    )

    modelled = view.model("SPY", last, 560.0, "C")

    assert modelled.modelled and modelled.delta == pytest.approx(chain.delta[i], abs=1e-9)


# --- listings -----------------------------------------------------------------------------


def test_expiries_follow_the_listing_programmes_of_their_time():
    assert short_term_weekdays("SPY", date(2004, 6, 1)) == ()
    assert short_term_weekdays("SPY", date(2008, 10, 1)) == (4,)
    assert short_term_weekdays("AAPL", date(2008, 10, 1)) == ()
    assert short_term_weekdays("AAPL", date(2020, 3, 2)) == (4,)
    assert short_term_weekdays("SPY", date(2020, 3, 2)) == (0, 2, 4)
    assert short_term_weekdays("SPY", date(2024, 3, 4)) == (0, 1, 2, 3, 4)


def test_in_2003_a_chain_lists_only_monthlies():
    chain = synthetic_chain("SPY", 100.0, 20.0, ny(date(2003, 3, 4), 10, 0))

    assert chain.expiries == (date(2003, 3, 21), date(2003, 4, 17), date(2003, 5, 16))


def test_monthly_expiry_is_the_third_friday_or_the_session_before_a_holiday():
    assert monthly_expiry(2026, 11) == date(2026, 11, 20)
    assert monthly_expiry(2003, 4) == date(2003, 4, 17)  # Good Friday 2003-04-18


def test_short_term_expiries_on_holidays_move_within_their_week():
    # M/W/F era: Presidents' Day 2020-02-17 (Monday) moves to Tuesday
    got = expiries_from("SPY", date(2020, 2, 14), 4, 0)

    assert got == (date(2020, 2, 14), date(2020, 2, 18), date(2020, 2, 19), date(2020, 2, 21))


@pytest.mark.parametrize(
    ("symbol", "spot", "step"),
    [
        ("SPY", 600.0, 1.0),
        ("F", 12.0, 0.5),
        ("KO", 70.0, 0.5),
        ("MRK", 120.0, 1.0),
        ("AAPL", 231.7, 2.5),
    ],
)
def test_near_term_strikes_use_the_short_term_intervals(symbol, spot, step):
    chain = synthetic_chain(symbol, spot, 20.0, THURSDAY)
    first = np.unique(chain.strike[chain.expiry == chain.expiry[0]])

    assert np.allclose(np.diff(first), step)
    assert first.min() < spot < first.max()


def test_strikes_cover_the_move_to_each_expiry_and_widen_for_far_ones():
    chain = synthetic_chain("SPY", 600.0, 20.0, THURSDAY)
    first = chain.strike[chain.expiry == chain.expiry[0]]
    last = chain.strike[chain.expiry == chain.expiry[-1]]

    assert last.max() - last.min() > 4 * (first.max() - first.min())
    assert np.diff(np.unique(last)).min() > np.diff(np.unique(first)).min()


# --- spreads ------------------------------------------------------------------------------


def test_spreads_widen_away_from_the_money_and_as_expiry_nears():
    chain = synthetic_chain("AAPL", 231.7, 18.0, THURSDAY)
    rel = (chain.ask - chain.bid) / chain.mid
    e1, e5 = chain.expiries[0], chain.expiries[4]

    def put(expiry, strike):
        rows = ~chain.is_call & (chain.expiry == np.datetime64(expiry)) & (chain.strike == strike)
        return float(rel[rows][0])

    assert put(e1, 230.0) < put(e1, 225.0) < put(e1, 220.0)  # out of the money: wider
    assert put(e5, 230.0) < put(e1, 230.0)  # a week out: narrower than tomorrow's
