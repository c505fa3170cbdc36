"""Option pricing (vectorised Black-Scholes), a synthetic chain, and strike selection by delta.

Pricing is plain Black-Scholes on numpy arrays (European, continuous dividend yield ``q``),
checked point by point against vollib in the tests. Implied volatility is a bracketed Newton
iteration: Newton steps where vega is usable, bisection otherwise, so it always converges for
prices inside the no-arbitrage bounds and gives NaN outside them.

The synthetic chain is a *model* of a chain, for demos, backtests and tests with no live
data: volatility comes from VIX times a per-underlying scale (``VOL_SCALE``), with a put skew;
spreads, open interest and volume fall off with distance from the money in standard
deviations, so far wings are illiquid the way real ones are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from scipy.special import ndtr  # normal CDF; scipy comes with vollib

from engine import calendar
from engine.market import OptionChain, OptionContract, Right

YEAR_SECONDS = 365.0 * 24 * 3600
MIN_T = 60.0 / YEAR_SECONDS  # one minute: an option at its expiry still has a finite price
_SQRT_2PI = np.sqrt(2 * np.pi)

# --- Black-Scholes ------------------------------------------------------------------------


def _d1_d2(spot, strike, t, r, sigma, q):
    vol_t = sigma * np.sqrt(t)
    d1 = (np.log(spot / strike) + (r - q + 0.5 * sigma * sigma) * t) / vol_t
    return d1, d1 - vol_t


def bs_price(spot, strike, t, r, sigma, is_call, q=0.0) -> np.ndarray:
    """Black-Scholes price; all arguments broadcast. ``t`` in years."""
    spot, strike, t, sigma = (np.asarray(x, dtype=float) for x in (spot, strike, t, sigma))
    d1, d2 = _d1_d2(spot, strike, t, r, sigma, q)
    fwd_s, disc_k = spot * np.exp(-q * t), strike * np.exp(-r * t)
    call = fwd_s * ndtr(d1) - disc_k * ndtr(d2)
    put = disc_k * ndtr(-d2) - fwd_s * ndtr(-d1)
    return np.where(is_call, call, put)


def bs_delta(spot, strike, t, r, sigma, is_call, q=0.0) -> np.ndarray:
    """Black-Scholes delta per share (calls in [0, 1], puts in [-1, 0])."""
    spot, strike, t, sigma = (np.asarray(x, dtype=float) for x in (spot, strike, t, sigma))
    d1, _ = _d1_d2(spot, strike, t, r, sigma, q)
    carry = np.exp(-q * t)
    return np.where(is_call, carry * ndtr(d1), carry * (ndtr(d1) - 1.0))


def bs_vega(spot, strike, t, r, sigma, q=0.0) -> np.ndarray:
    """dPrice/dSigma (per 1.00 of volatility, not per point)."""
    d1, _ = _d1_d2(spot, strike, t, r, sigma, q)
    return spot * np.exp(-q * t) * np.exp(-0.5 * d1 * d1) / _SQRT_2PI * np.sqrt(t)


def implied_vol(price, spot, strike, t, r, is_call, q=0.0, *, tol=1e-10, max_iter=100) -> np.ndarray:
    """Implied volatility by safeguarded Newton; NaN where the price breaks arbitrage bounds."""
    price, spot, strike, t = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (price, spot, strike, t)))
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

# Implied-volatility scale over VIX/100 for each underlying: sigma_ATM = scale * VIX / 100.
# VIX is the 30-day implied vol of the S&P 500, so SPY is 1.0; the others are the typical
# ratio of their 30-day at-the-money implied vol to VIX over 2019-2025 (rounded; a model,
# not a measurement - see docs/market-data.md).
VOL_SCALE: dict[str, float] = {
    "SPY": 1.0, "SPX": 1.0, "QQQ": 1.25, "IWM": 1.35, "DIA": 0.95,
    "AAPL": 1.45, "MSFT": 1.35, "GOOG": 1.55, "GOOGL": 1.55, "AMZN": 1.65,
    "META": 1.85, "NVDA": 2.50, "TSLA": 3.00,
}
DEFAULT_VOL_SCALE = 1.8  # an unknown single stock: between the mega-caps and the volatile names

# Index ETFs list expiries every session (Mon-Fri dailies); single stocks list weeklies
# (the week's last session, Thursday when Friday is a holiday).
DAILY_EXPIRY = frozenset({"SPY", "QQQ", "IWM", "SPX", "DIA"})

# Base open interest at the money for a 1-week expiry (contracts); liquidity falls off from it.
BASE_OPEN_INTEREST: dict[str, float] = {
    "SPY": 40_000, "QQQ": 25_000, "IWM": 12_000, "AAPL": 15_000, "MSFT": 8_000, "AMZN": 10_000,
    "GOOG": 5_000, "GOOGL": 7_000, "META": 7_000, "NVDA": 25_000, "TSLA": 25_000,
}
DEFAULT_OPEN_INTEREST = 3_000.0

PUT_SKEW = 0.8  # d(sigma)/sigma per unit of -ln(K/S)/(sigma sqrt t) in the put wing, capped
CALL_SKEW = 0.15


def vol_scale(symbol: str) -> float:
    return VOL_SCALE.get(symbol, DEFAULT_VOL_SCALE)


def strike_increment(symbol: str, spot: float) -> float:
    """Listed strike spacing near the money for weekly options (US listing practice)."""
    if symbol in DAILY_EXPIRY:
        return 1.0 if spot < 1000 else 5.0
    for limit, step in ((25, 0.5), (100, 1.0), (250, 2.5), (1000, 5.0)):
        if spot < limit:
            return step
    return 10.0


def expiry_dates(symbol: str, as_of: datetime, count: int = 8) -> list[date]:
    """The next ``count`` expiries still trading at ``as_of`` (today's until its close)."""
    today = calendar.new_york_date(as_of)
    day = today if calendar.is_session(today) else calendar.next_session(today)
    if as_of >= calendar.session_close(day):
        day = calendar.next_session(day)
    # one calendar lookup for the whole span (weekly: count weeks plus slack for holidays)
    weeks = count + 2 if symbol not in DAILY_EXPIRY else count // 5 + 3
    monday = day - timedelta(days=day.weekday())
    sessions = calendar.sessions_between(day, monday + timedelta(days=7 * weeks - 1))
    picks = sessions if symbol in DAILY_EXPIRY else sessions[calendar.week_last(sessions)]
    return picks[:count].astype(date).tolist()


def years_to_expiry(as_of: datetime, expiries: list[date]) -> np.ndarray:
    """Calendar time from ``as_of`` to each expiry's session close, in years (>= 1 minute)."""
    closes = calendar.session_closes_utc(np.array(expiries, dtype="datetime64[D]"))
    now = np.datetime64(int(as_of.timestamp() * 1e9), "ns")
    secs = (closes - now).astype(np.int64) / 1e9
    return np.maximum(secs / YEAR_SECONDS, MIN_T)


@dataclass(frozen=True)
class ChainModel:
    """Knobs of the synthetic chain (defaults are the documented model)."""

    expiries: int = 8
    strikes: int = 60  # per expiry, centred on spot, each with a put and a call
    rate: float = 0.04
    dividend_yield: float = 0.0
    min_spread: float = 0.02  # dollars: the least ask - bid (two ticks)
    base_spread_pct: float = 0.02  # at the money
    wing_spread_pct: float = 0.03  # added per standard deviation out of the money


DEFAULT_CHAIN_MODEL = ChainModel()


def _skewed_vol(atm: float, z: np.ndarray) -> np.ndarray:
    # z = ln(K/S) / (atm sqrt t): negative in the put wing, where implied vol is richer.
    bump = np.where(z < 0, -PUT_SKEW * z, CALL_SKEW * z) * 0.1
    return atm * (1.0 + np.clip(bump, -0.3, 1.0))


def _quotes(mid, spot, K, T, call, z, model: ChainModel) -> tuple[np.ndarray, np.ndarray]:
    """Bid/ask in cents around the model mid.

    The spread is a share of the *time value* (the out-of-the-money twin's price, by put-call
    parity) growing with distance from the money, plus 0.2 % of intrinsic value: a deep
    in-the-money option is quoted like its cheap twin, not at a huge percentage of its price.
    """
    parity = spot * np.exp(-model.dividend_yield * T) - K * np.exp(-model.rate * T)
    twin = np.where(call, mid - parity, mid + parity)
    time_value = np.clip(np.minimum(mid, twin), 0.0, None)
    pct = model.base_spread_pct + model.wing_spread_pct * np.minimum(np.abs(z), 10.0)
    spread = np.maximum(model.min_spread, pct * time_value + 0.002 * (mid - time_value))
    half = np.ceil(50 * spread - 1e-9) / 100  # half-spread rounded up to a cent
    mid_c = np.round(mid, 2)
    return np.maximum(np.round(mid_c - half, 2), 0.0), np.round(mid_c + half, 2)


def synthetic_chain(
    symbol: str, spot: float, vix: float, as_of: datetime, model: ChainModel = DEFAULT_CHAIN_MODEL
) -> OptionChain:
    """A Black-Scholes-priced chain: ``model.expiries`` x ``model.strikes`` x (put, call)."""
    exp = expiry_dates(symbol, as_of, model.expiries)
    step = strike_increment(symbol, spot)
    centre = round(spot / step) * step
    offsets = np.arange(model.strikes) - model.strikes // 2
    strikes = centre + offsets * step
    strikes = strikes[strikes > 0]
    t = years_to_expiry(as_of, exp)
    # grid: expiry-major, then strike, then (put, call)
    n_e, n_k = len(exp), len(strikes)
    T = np.repeat(t, n_k * 2)
    K = np.tile(np.repeat(strikes, 2), n_e)
    call = np.tile(np.array([False, True]), n_e * n_k)
    atm = vol_scale(symbol) * vix / 100.0
    z = np.log(K / spot) / (atm * np.sqrt(T))
    sigma = _skewed_vol(atm, z)
    mid = bs_price(spot, K, T, model.rate, sigma, call, model.dividend_yield)
    delta = bs_delta(spot, K, T, model.rate, sigma, call, model.dividend_yield)
    bid, ask = _quotes(mid, spot, K, T, call, z, model)
    weeks = np.maximum(T * 52.0, 1.0 / 5)
    oi = BASE_OPEN_INTEREST.get(symbol, DEFAULT_OPEN_INTEREST) * np.exp(-0.5 * z * z) / np.sqrt(weeks)
    volume = oi * 0.4 / np.sqrt(weeks)
    return OptionChain(
        symbol, as_of, float(spot),
        expiry=np.repeat(np.array(exp, dtype="datetime64[D]"), n_k * 2),
        strike=K, is_call=call, bid=bid, ask=ask, delta=delta, iv=sigma,
        open_interest=np.floor(oi).astype(np.int64), volume=np.floor(volume).astype(np.int64),
    )


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
    min_open_interest: int = 500,
    min_volume: int = 100,
    max_spread_pct: float = 0.05,
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
    liquid = mask & (chain.open_interest >= min_open_interest) & (chain.volume >= min_volume) & (spread <= max_spread_pct)
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

