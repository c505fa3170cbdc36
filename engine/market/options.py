"""Option pricing (vectorised Black-Scholes), a synthetic chain, and strike selection by delta.

Pricing is plain Black-Scholes on numpy arrays (European, continuous dividend yield ``q``),
checked point by point against vollib in the tests. Implied volatility is a bracketed Newton
iteration: Newton steps where vega is usable, bisection otherwise, so it always converges for
prices inside the no-arbitrage bounds and gives NaN outside them.

The synthetic chain is a *model* of a chain, for demos, backtests and tests with no live
data: implied volatility by moneyness and expiry from VIX on an SSVI surface with put skew and
a term structure (``engine.market.surface``), scaled per underlying; expiries and strikes as
exchanges list them (``engine.market.listings``); spreads widen away from the money and as
expiry nears, open interest and volume fall off, so far wings are illiquid the way real ones
are. docs/market-data.md documents the model and its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr  # normal CDF; scipy comes with vollib

from engine.market import calendar
from engine.market.listings import (
    INDEX_PRODUCTS,
    expiries_from,
    monthly_expiry,
    product_kind,
    strike_grids,
)
from engine.market.snapshot import OptionChain, OptionContract, Right
from engine.market.surface import (
    INDEX_SMILE,
    STOCK_SMILE,
    Smile,
    Surface,
    atm_vol_for_vix,
)

YEAR_SECONDS = 365.0 * 24 * 3600
MIN_T = 60.0 / YEAR_SECONDS  # one minute: an option at its expiry still has a finite price
_SQRT_2PI = np.sqrt(2 * np.pi)

# --- Black-Scholes ------------------------------------------------------------------------


def _d1_d2(
    spot: np.ndarray, strike: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, q: float
) -> tuple[np.ndarray, np.ndarray]:
    vol_t = sigma * np.sqrt(t)
    d1 = (np.log(spot / strike) + (r - q + 0.5 * sigma * sigma) * t) / vol_t
    return d1, d1 - vol_t


def bs_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    r: float,
    sigma: ArrayLike,
    is_call: ArrayLike,
    q: float = 0.0,
) -> np.ndarray:
    """Black-Scholes price; all arguments broadcast. ``t`` in years."""
    spot, strike, t, sigma = (np.asarray(x, dtype=float) for x in (spot, strike, t, sigma))
    d1, d2 = _d1_d2(spot, strike, t, r, sigma, q)
    fwd_s, disc_k = spot * np.exp(-q * t), strike * np.exp(-r * t)
    call = fwd_s * ndtr(d1) - disc_k * ndtr(d2)
    put = disc_k * ndtr(-d2) - fwd_s * ndtr(-d1)
    return np.where(is_call, call, put)


def bs_delta(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    r: float,
    sigma: ArrayLike,
    is_call: ArrayLike,
    q: float = 0.0,
) -> np.ndarray:
    """Black-Scholes delta per share (calls in [0, 1], puts in [-1, 0])."""
    spot, strike, t, sigma = (np.asarray(x, dtype=float) for x in (spot, strike, t, sigma))
    d1, _ = _d1_d2(spot, strike, t, r, sigma, q)
    carry = np.exp(-q * t)
    return np.where(is_call, carry * ndtr(d1), carry * (ndtr(d1) - 1.0))


def bs_vega(
    spot: ArrayLike, strike: ArrayLike, t: ArrayLike, r: float, sigma: ArrayLike, q: float = 0.0
) -> np.ndarray:
    """dPrice/dSigma (per 1.00 of volatility, not per point)."""
    s, k, tt, v = (np.asarray(x, dtype=float) for x in (spot, strike, t, sigma))
    d1, _ = _d1_d2(s, k, tt, r, v, q)
    return s * np.exp(-q * tt) * np.exp(-0.5 * d1 * d1) / _SQRT_2PI * np.sqrt(tt)


def implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    r: float,
    is_call: ArrayLike,
    q: float = 0.0,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """Implied volatility by safeguarded Newton; NaN where the price breaks arbitrage bounds."""
    price, spot, strike, t = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (price, spot, strike, t))
    )
    is_call = np.broadcast_to(is_call, price.shape)
    fwd_s, disc_k = spot * np.exp(-q * t), strike * np.exp(-r * t)
    lower = np.where(is_call, np.maximum(fwd_s - disc_k, 0), np.maximum(disc_k - fwd_s, 0))
    upper = np.where(is_call, fwd_s, disc_k)
    ok = np.isfinite(price) & (price > lower) & (price < upper)
    lo, hi = np.full(price.shape, 1e-6), np.full(price.shape, 10.0)
    sigma = np.full(price.shape, 0.3)
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            diff = bs_price(spot, strike, t, r, sigma, is_call, q) - price
            done = ~ok | (np.abs(diff) < tol)
            if done.all():
                break
            # keep the bracket: a price too high means sigma is too high
            hi = np.where(diff > 0, sigma, hi)
            lo = np.where(diff <= 0, sigma, lo)
            newton = sigma - diff / bs_vega(spot, strike, t, r, sigma, q)
            inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
            sigma = np.where(done, sigma, np.where(inside, newton, 0.5 * (lo + hi)))
    return np.where(ok, sigma, np.nan)


# --- the synthetic chain -------------------------------------------------------------------

# Fallback scale of each underlying's implied vol over the index's, for when its history is too
# short for a realised-volatility ratio (``BarMarketData`` measures it): the typical ratio of
# 30-day at-the-money implied vols over 2019-2025, rounded (a model, not a measurement).
VOL_SCALE: dict[str, float] = {
    "SPY": 1.0,
    "SPX": 1.0,
    "QQQ": 1.25,
    "IWM": 1.35,
    "DIA": 0.95,
    "AAPL": 1.45,
    "MSFT": 1.35,
    "GOOG": 1.55,
    "GOOGL": 1.55,
    "AMZN": 1.65,
    "META": 1.85,
    "NVDA": 2.50,
    "TSLA": 3.00,
}
DEFAULT_VOL_SCALE = 1.8  # an unknown single stock: between the mega-caps and the volatile names

# Index products list short-term expiries on more weekdays (engine.market.listings).
DAILY_EXPIRY = INDEX_PRODUCTS

# Base open interest at the money for a 1-week expiry (contracts); liquidity falls off from it.
BASE_OPEN_INTEREST: dict[str, float] = {
    "SPY": 40_000,
    "QQQ": 25_000,
    "IWM": 12_000,
    "AAPL": 15_000,
    "MSFT": 8_000,
    "AMZN": 10_000,
    "GOOG": 5_000,
    "GOOGL": 7_000,
    "META": 7_000,
    "NVDA": 25_000,
    "TSLA": 25_000,
}
DEFAULT_OPEN_INTEREST = 3_000.0
MONTHLY_OI_FACTOR = 2.0  # monthly series carry more open interest than the weeklies around them


def vol_scale(symbol: str) -> float:
    return VOL_SCALE.get(symbol, DEFAULT_VOL_SCALE)


def smile_of(symbol: str) -> Smile:
    return INDEX_SMILE if symbol in INDEX_PRODUCTS else STOCK_SMILE


def surface_for(symbol: str, vix: float, scale: float | None = None) -> Surface:
    """``symbol``'s implied-volatility surface when VIX is ``vix`` (``engine.market.surface``);
    ``scale`` is its vol over the index's (default: ``VOL_SCALE``)."""
    return Surface(
        index_sigma30=atm_vol_for_vix(vix),
        scale=vol_scale(symbol) if scale is None else scale,
        smile=smile_of(symbol),
    )


def _first_session(as_of: datetime) -> date:
    """The first session whose close is still ahead of ``as_of`` (today's until its close)."""
    today = calendar.new_york_date(as_of)
    day = today if calendar.is_session(today) else calendar.next_session(today)
    close = calendar.session_close(day)
    return calendar.next_session(day) if close is not None and as_of >= close else day


def expiry_dates(symbol: str, as_of: datetime, count: int = 8) -> list[date]:
    """The next ``count`` short-term expiries still trading at ``as_of`` (today's until its
    close), as listed at the time (``engine.market.listings``)."""
    return list(expiries_from(product_kind(symbol), _first_session(as_of), count, 0))


def chain_expiries(symbol: str, as_of: datetime, model: ChainModel) -> list[date]:
    """The expiries a chain lists: the short-term ones, then the next monthlies."""
    kind, first = product_kind(symbol), _first_session(as_of)
    return list(expiries_from(kind, first, model.short_expiries, model.monthlies))


def years_to_expiry(as_of: datetime, expiries: list[date]) -> np.ndarray:
    """Calendar time from ``as_of`` to each expiry's session close, in years (>= 1 minute)."""
    closes = calendar.session_closes_utc(np.array(expiries, dtype="datetime64[D]"))
    return _years_to(closes, as_of)


def _years_to(closes: np.ndarray, as_of: datetime) -> np.ndarray:
    now = np.datetime64(int(as_of.timestamp() * 1e9), "ns")
    secs = (closes - now).astype(np.int64) / 1e9
    return np.maximum(secs / YEAR_SECONDS, MIN_T)


@dataclass(frozen=True)
class _Expiries:
    """A chain's expiries as listed on one session, with what every chain of that session
    needs of them: their closes and which are monthlies (made once per session and product
    kind, not per chain)."""

    dates: tuple[date, ...]
    days: np.ndarray  # datetime64[D]
    closes: np.ndarray  # each expiry's session close, UTC, datetime64[ns]
    monthly: np.ndarray  # bool: the month's standard expiry


@lru_cache(maxsize=4096)
def _expiries(kind: str, first: date, short: int, monthlies: int) -> _Expiries:
    dates = expiries_from(kind, first, short, monthlies)
    days = np.array(dates, dtype="datetime64[D]")
    closes = calendar.session_closes_utc(days)
    monthly = np.array([d == monthly_expiry(d.year, d.month) for d in dates], dtype=bool)
    for a in (days, closes, monthly):
        a.flags.writeable = False  # shared by every chain of the session
    return _Expiries(dates, days, closes, monthly)


@dataclass(frozen=True)
class ChainModel:
    """Knobs of the synthetic chain (defaults are the documented model, docs/market-data.md)."""

    short_expiries: int = 8  # short-term (daily / weekly) expiries listed ahead
    monthlies: int = 3  # then the next monthly expiries not already among them
    strike_sds: float = 4.0  # strikes cover this many standard deviations either side
    min_strikes_each_side: int = 10
    max_strikes: int = 81  # per expiry; beyond it the interval widens
    rate: float = 0.04
    dividend_yield: float = 0.0
    base_spread_pct: float = 0.015  # of the time value, at the money, for a single stock
    index_spread_factor: float = 0.5  # index ETFs are quoted tighter
    wing_spread_pct: float = 0.02  # added per standard deviation out of the money
    short_time_spread: float = 0.25  # spreads x (1 + this / sqrt(days to expiry))


DEFAULT_CHAIN_MODEL = ChainModel()


def tick_size(symbol: str, price: np.ndarray) -> np.ndarray:
    """Minimum price increment: index ETFs a penny at every price, single stocks a penny below
    $3 and a nickel above (the Penny Interval Program's rule)."""
    if symbol in INDEX_PRODUCTS:
        return np.full(np.shape(price), 0.01)
    return np.where(price < 3.0, 0.01, 0.05)


def _quotes(
    symbol: str,
    mid: np.ndarray,
    spot: float,
    strike: np.ndarray,
    t: np.ndarray,
    call: np.ndarray,
    z: np.ndarray,
    model: ChainModel,
) -> tuple[np.ndarray, np.ndarray]:
    """Bid/ask on the tick grid around the model mid (``mid`` and ``call`` per row, a put then
    a call per strike; ``strike``, ``t`` and ``z`` per strike).

    The spread is a share of the *time value* (the out-of-the-money twin's price, by put-call
    parity) growing with distance from the money and as expiry nears, plus 0.2 % of intrinsic
    value, in whole ticks (at least one) centred on the model mid: a deep in-the-money option
    is quoted like its cheap twin, not at a huge percentage of its price. A price below half
    the spread is quoted 0 bid.
    """
    parity = np.repeat(
        spot * np.exp(-model.dividend_yield * t) - strike * np.exp(-model.rate * t), 2
    )
    twin = np.where(call, mid - parity, mid + parity)
    time_value = np.clip(np.minimum(mid, twin), 0.0, None)
    product = model.index_spread_factor if symbol in INDEX_PRODUCTS else 1.0
    days = np.maximum(t * 365.0, 1.0 / 24)
    pct = (
        model.base_spread_pct * product + model.wing_spread_pct * np.minimum(np.abs(z), 10.0)
    ) * (1 + model.short_time_spread / np.sqrt(days))
    tick = tick_size(symbol, mid)
    spread = np.repeat(pct, 2) * time_value + 0.002 * (mid - time_value)
    ticks = np.maximum(1.0, np.round(spread / tick))  # the spread in whole ticks
    bid = np.round((mid - ticks * tick / 2) / tick) * tick  # centred on the model mid
    bid = np.maximum(bid, 0.0)
    return np.round(bid, 2), np.round(bid + ticks * tick, 2)


def _grid(
    symbol: str, spot: float, surf: Surface, t: np.ndarray, model: ChainModel
) -> tuple[np.ndarray, np.ndarray]:
    """Every expiry's listed strikes, one after the other, and how many each has."""
    sd = spot * surf.atm_vol(t) * np.sqrt(t)
    return strike_grids(
        symbol,
        spot,
        sd,
        t * 365,
        strike_sds=model.strike_sds,
        min_each_side=model.min_strikes_each_side,
        max_strikes=model.max_strikes,
    )


def synthetic_chain(
    symbol: str,
    spot: float,
    vix: float,
    as_of: datetime,
    model: ChainModel = DEFAULT_CHAIN_MODEL,
    scale: float | None = None,
) -> OptionChain:
    """A chain priced on ``symbol``'s SSVI surface (``surface_for``): the listed expiries, each
    with its listed strikes, put and call. ``scale`` is the underlying's vol over the index's."""
    listed = _expiries(
        product_kind(symbol), _first_session(as_of), model.short_expiries, model.monthlies
    )
    t = _years_to(listed.closes, as_of)
    surf = surface_for(symbol, vix, scale)
    strikes, sizes = _grid(symbol, spot, surf, t, model)
    # A put and a call share their strike's inputs (T, K, the smile's vol, d1, d2, N(d1)),
    # so those are computed once per strike and each row takes its strike's: the same numbers
    # as computing them per row, at half the cost. Rows: expiry-major, then strike, then
    # (put, call).
    t1 = np.repeat(t, sizes)
    forward = spot * np.exp((model.rate - model.dividend_yield) * t1)
    vol = surf.vol(np.log(strikes / forward), t1)
    (put, call_price), (put_delta, call_delta) = _prices_and_deltas(
        spot, strikes, t1, model.rate, vol, model.dividend_yield
    )
    z1 = np.log(strikes / spot) / (surf.atm_vol(t1) * np.sqrt(t1))
    call = np.tile(np.array([False, True]), len(strikes))
    mid = _pairs(put, call_price)
    delta = _pairs(put_delta, call_delta)
    bid, ask = _quotes(symbol, mid, spot, strikes, t1, call, z1, model)
    expiry = np.repeat(listed.days, sizes * 2)
    oi1, volume1 = _liquidity(symbol, z1, t1, np.repeat(listed.monthly, sizes))
    oi, volume = np.repeat(oi1, 2), np.repeat(volume1, 2)
    return OptionChain(
        symbol,
        as_of,
        float(spot),
        expiry=expiry,
        strike=np.repeat(strikes, 2),
        is_call=call,
        bid=bid,
        ask=ask,
        delta=delta,
        iv=np.repeat(vol, 2),
        open_interest=oi,
        volume=volume,
    )


def _prices_and_deltas(
    spot: float, strike: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, q: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((put, call) prices, (put, call) deltas) per strike: ``bs_price`` and ``bs_delta``
    with d1 and N(d1) computed once, the same expressions, so the same numbers to the last
    bit."""
    s = np.asarray(spot, dtype=float)
    d1, d2 = _d1_d2(s, strike, t, r, sigma, q)
    fwd_s, disc_k = s * np.exp(-q * t), strike * np.exp(-r * t)
    n1 = ndtr(d1)
    call = fwd_s * n1 - disc_k * ndtr(d2)
    put = disc_k * ndtr(-d2) - fwd_s * ndtr(-d1)
    carry = np.exp(-q * t)
    return (put, call), (carry * (n1 - 1.0), carry * n1)


def _pairs(put: np.ndarray, call: np.ndarray) -> np.ndarray:
    """Per strike, its put's value then its call's."""
    return np.stack((put, call), axis=1).ravel()


def _liquidity(
    symbol: str, z: np.ndarray, T: np.ndarray, monthly: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Open interest and volume: highest at the money, falling off as exp(-z^2/2) with distance
    in standard deviations, and with time to expiry; monthly series (``monthly``, per row)
    carry more."""
    weeks = np.maximum(T * 52.0, 1.0 / 5)
    base = BASE_OPEN_INTEREST.get(symbol, DEFAULT_OPEN_INTEREST)
    oi = base * np.exp(-0.5 * z * z) / np.sqrt(weeks) * np.where(monthly, MONTHLY_OI_FACTOR, 1.0)
    volume = oi * 0.4 / np.sqrt(weeks)
    return np.floor(oi).astype(np.int64), np.floor(volume).astype(np.int64)


# --- strike selection -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrikeChoice:
    """The chosen contract, or None with the reason (``none-in-band`` / ``none-liquid``)."""

    contract: OptionContract | None
    reason: str
    in_band: int  # contracts of the right kind and expiry inside the delta band
    liquid: int  # of those, how many passed the liquidity filter


def select_strike(
    chain: OptionChain,
    right: Right,
    delta_band: tuple[float, float],
    *,
    expiry: date | None = None,
    where: np.ndarray | None = None,
    min_open_interest: int,  # liquidity.min_open_interest
    min_volume: int,  # liquidity.min_volume
    max_spread_pct: float,  # liquidity.max_spread_pct_of_mid
) -> StrikeChoice:
    """The liquid contract whose |delta| is inside the band and closest to its middle.

    ``where`` is an extra row mask (e.g. expiries in a DTE range). Ties go to the nearer
    expiry, then the smaller spread. Pass ``min_open_interest=0,
    min_volume=0, max_spread_pct=inf`` to skip the liquidity filter.
    """
    lo, hi = sorted(abs(d) for d in delta_band)
    absd = np.abs(chain.delta)
    mask = (chain.is_call == (right == "call")) & (absd >= lo) & (absd <= hi) & np.isfinite(absd)
    if expiry is not None:
        mask &= chain.expiry == np.datetime64(expiry, "D")
    if where is not None:
        mask &= where
    in_band = int(mask.sum())
    mid = chain.mid
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(mid > 0, (chain.ask - chain.bid) / mid, np.inf)
    liquid = (
        mask
        & (chain.open_interest >= min_open_interest)
        & (chain.volume >= min_volume)
        & (spread <= max_spread_pct)
    )
    n_liquid = int(liquid.sum())
    if n_liquid == 0:
        return StrikeChoice(None, "none-in-band" if in_band == 0 else "none-liquid", in_band, 0)
    idx = np.flatnonzero(liquid)
    distance = np.abs(absd[idx] - (lo + hi) / 2)
    order = np.lexsort((spread[idx], chain.expiry[idx], distance))
    return StrikeChoice(chain.contract(int(idx[order[0]])), "ok", in_band, n_liquid)


def nearest_expiry(chain: OptionChain, as_of: datetime, min_dte: int, max_dte: int) -> date | None:
    """The earliest expiry whose calendar-day DTE (New York date) is within [min_dte, max_dte]."""
    today = calendar.new_york_date(as_of)
    for e in chain.expiries:
        if min_dte <= (e - today).days <= max_dte:
            return e
    return None
