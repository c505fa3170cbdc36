"""A seeded synthetic market: daily bars for several underlyings and a VIX path with regimes.

For demos, tests and backtests on a machine with no data. The model, in one paragraph:

* a regime chain (calm -> stress -> crash) moves once per NYSE session (``TRANSITIONS``);
* log VIX mean-reverts towards its regime's level (``VIX_LEVEL``), faster in a crash;
* each underlying's daily volatility is its ``engine.market.options.VOL_SCALE`` x *yesterday's* VIX,
  so volatility and VIX move together, and the market shock is negatively correlated with the
  VIX shock (the leverage effect: VIX jumps on down days);
* crash sessions add a negative drift;
* each path is scaled to pass through its symbol's real close on 2024-01-02 (``ANCHOR_PRICE``),
  so the listed strike intervals and option prices have the proportions they had.

Reproducible from the seed, and prefix-stable: every session draws a fixed number of random
numbers from a fixed epoch (``EPOCH``), so the bars of 2024-03-01 are the same whether the
path is generated to 2024-03-31 or to 2030. Each symbol has its own stream seeded from
(seed, symbol), so adding a symbol does not change the others.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from adapters.market_data.files import BarMarketData
from engine.market import calendar
from engine.market.options import DAILY_EXPIRY, vol_scale
from engine.market.snapshot import DailyHistory

EPOCH = date(2000, 1, 3)
REGIMES = ("calm", "stress", "crash")
# Row: from; column: to (calm, stress, crash). Expected stays: calm ~200 sessions,
# stress ~25, crash ~12.
TRANSITIONS = np.array(
    [
        [0.995, 0.0045, 0.0005],
        [0.035, 0.955, 0.010],
        [0.000, 0.080, 0.920],
    ]
)
VIX_LEVEL = np.array([14.0, 24.0, 48.0])
VIX_REVERSION = np.array([0.06, 0.10, 0.25])  # per session, in log space
VIX_SHOCK = 0.065  # daily sd of log VIX
VIX_FLOOR_LOG = float(np.log(9.0))  # VIX has never closed below 9; the path reflects off it
LEVERAGE = -0.75  # corr(market shock, VIX shock)
CRASH_DRIFT = -0.006  # per session, on top of the diffusion

DEFAULT_SYMBOLS = (
    "SPY",
    "QQQ",
    "IWM",
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOG",
    "GOOGL",
    "META",
    "NVDA",
    "TSLA",
)
START_PRICE = {
    "SPY": 140.0,
    "QQQ": 90.0,
    "IWM": 50.0,
    "AAPL": 25.0,
    "MSFT": 55.0,
    "AMZN": 40.0,
    "GOOG": 50.0,
    "GOOGL": 50.0,
    "META": 60.0,
    "NVDA": 10.0,
    "TSLA": 20.0,
}
# Real closes on 2024-01-02, as traded that day (NVDA before its 2024 split): each synthetic
# path is scaled to pass through its symbol's (``generate``).
ANCHOR = date(2024, 1, 2)
ANCHOR_PRICE = {
    "SPY": 472.65,
    "QQQ": 402.60,
    "IWM": 198.89,
    "AAPL": 185.64,
    "MSFT": 370.87,
    "AMZN": 149.93,
    "GOOG": 139.56,
    "GOOGL": 138.17,
    "META": 346.29,
    "NVDA": 481.68,
    "TSLA": 248.42,
}
MARKET_BETA = {"SPY": 0.97, "QQQ": 0.9, "IWM": 0.85}  # corr with the market shock; stocks 0.6
ANNUAL_DRIFT = 0.08


@dataclass(frozen=True)
class SyntheticHistory:
    seed: int
    days: np.ndarray  # datetime64[D] sessions
    regime: np.ndarray  # index into REGIMES, per session
    bars: dict[str, DailyHistory]  # the underlyings and "VIX"


def _vix_path(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(regime, VIX close, market shock) per session; 3 draws per session, prefix-stable."""
    u = rng.random((n, 3))
    regime = np.empty(n, dtype=np.int8)
    vix = np.empty(n)
    z_m = _normal(u[:, 1])
    z_v = LEVERAGE * z_m + np.sqrt(1 - LEVERAGE**2) * _normal(u[:, 2])
    cum = np.cumsum(TRANSITIONS, axis=1).tolist()
    levels, speed = np.log(VIX_LEVEL).tolist(), VIX_REVERSION.tolist()
    shocks, draws = (VIX_SHOCK * z_v).tolist(), u[:, 0].tolist()
    r, x = 0, levels[0]
    for t in range(n):  # a Markov chain is inherently sequential; plain floats keep it fast
        row = cum[r]
        r = 0 if draws[t] < row[0] else 1 if draws[t] < row[1] else 2
        x = max(x + speed[r] * (levels[r] - x) + shocks[t], VIX_FLOOR_LOG)
        regime[t], vix[t] = r, x
    vix = np.exp(vix)
    return regime, vix, z_m


def _normal(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri  # inverse normal CDF: uniforms -> normals, row-stable

    return ndtri(np.clip(u, 1e-12, 1 - 1e-12))


def _ohlc(
    rng: np.random.Generator, prev_close: np.ndarray, close: np.ndarray, sd: np.ndarray
) -> tuple[np.ndarray, ...]:
    u = rng.random((len(close), 3))
    open_ = prev_close * np.exp(0.3 * sd * _normal(u[:, 0]))
    high = np.maximum(open_, close) * np.exp(0.5 * sd * np.abs(_normal(u[:, 1])))
    low = np.minimum(open_, close) * np.exp(-0.5 * sd * np.abs(_normal(u[:, 2])))
    return open_, high, low


def _symbol_bars(
    seed: int,
    symbol: str,
    days: np.ndarray,
    vix_prev: np.ndarray,
    z_m: np.ndarray,
    regime: np.ndarray,
) -> DailyHistory:
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode())])
    n = len(days)
    u = rng.random((n, 2))  # idiosyncratic shock, volume
    rho = MARKET_BETA.get(symbol, 0.6)
    sd = vol_scale(symbol) * vix_prev / 100 / np.sqrt(252)
    shock = rho * z_m + np.sqrt(1 - rho**2) * _normal(u[:, 0])
    ret = ANNUAL_DRIFT / 252 - 0.5 * sd**2 + sd * shock + np.where(regime == 2, CRASH_DRIFT, 0.0)
    close = START_PRICE.get(symbol, 100.0) * np.exp(np.cumsum(ret))
    prev = np.concatenate(([START_PRICE.get(symbol, 100.0)], close[:-1]))
    o, h, lo = _ohlc(np.random.default_rng([seed, zlib.crc32(symbol.encode()), 1]), prev, close, sd)
    base_volume = 8e7 if symbol in DAILY_EXPIRY else 3e7
    volume = np.floor(base_volume * (vix_prev / 16) * np.exp(0.3 * _normal(u[:, 1])))
    return DailyHistory(symbol, days, o, h, lo, close, volume)


def _vix_bars(seed: int, days: np.ndarray, vix: np.ndarray) -> DailyHistory:
    prev = np.concatenate(([vix[0]], vix[:-1]))
    rng = np.random.default_rng([seed, zlib.crc32(b"VIX")])
    o, h, lo = _ohlc(rng, prev, vix, np.full(len(vix), VIX_SHOCK))
    return DailyHistory("VIX", days, o, h, lo, vix, np.zeros(len(vix)))


def generate(seed: int, last: date, symbols: Sequence[str] = DEFAULT_SYMBOLS) -> SyntheticHistory:
    """Bars for every session from ``EPOCH`` to ``last`` (inclusive).

    Each path is scaled so that its close on ``ANCHOR`` is ``ANCHOR_PRICE`` (the symbol's real
    close that day): listed strike intervals and option prices then have the proportions they
    had. The path is always drawn through ``ANCHOR``, so a date's bars still do not depend on
    the end date."""
    if last < EPOCH:
        raise ValueError(f"the synthetic market starts on {EPOCH}; {last} is before it")
    days = calendar.sessions_between(EPOCH, max(last, ANCHOR))
    regime, vix, z_m = _vix_path(np.random.default_rng(seed), len(days))
    vix_prev = np.concatenate(([vix[0]], vix[:-1]))  # today's vol is set by yesterday's VIX
    at = int(np.searchsorted(days, np.datetime64(ANCHOR, "D")))
    bars = {s: _anchored(_symbol_bars(seed, s, days, vix_prev, z_m, regime), at) for s in symbols}
    bars["VIX"] = _vix_bars(seed, days, vix)
    keep = int(np.searchsorted(days, np.datetime64(last, "D"), side="right"))
    bars = {s: h.slice(0, keep) for s, h in bars.items()}
    return SyntheticHistory(seed, days[:keep], regime[:keep], bars)


def _anchored(h: DailyHistory, at: int) -> DailyHistory:
    f = ANCHOR_PRICE.get(h.symbol, 100.0) / h.close[at]
    return DailyHistory(h.symbol, h.days, h.open * f, h.high * f, h.low * f, h.close * f, h.volume)


def earnings_dates(seed: int, symbol: str, last: date) -> list[date]:
    """Quarterly report dates for single stocks (none for index ETFs), seeded per symbol."""
    if symbol in DAILY_EXPIRY:
        return []
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()), 2])
    offset = int(
        rng.integers(0, 15)
    )  # each company reports on its own day, 3-5 weeks after quarter end
    return [
        date(y, m, 1) + timedelta(days=20 + offset)
        for y in range(EPOCH.year, last.year + 1)
        for m in (1, 4, 7, 10)
    ]


def synthetic_market(
    seed: int, last: date, symbols: Sequence[str] = DEFAULT_SYMBOLS, **kwargs: Any
) -> BarMarketData:
    """A ``MarketDataPort`` over a synthetic history ending on ``last``."""
    hist = generate(seed, last, symbols)
    earnings = {s: earnings_dates(seed, s, last) for s in symbols}
    return BarMarketData(
        hist.bars, vix_symbol="VIX", index_symbol="SPY", earnings=earnings, **kwargs
    )
