"""The implied-volatility surface synthetic chains and modelled quotes are priced on.

**Smile: SSVI** (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces", 2014). Total
implied variance at log-moneyness ``k = ln(K / F)`` (``F`` the forward) and time ``T``::

    w(k, T) = theta/2 * (1 + rho*phi*k + sqrt((phi*k + rho)**2 + 1 - rho**2)),
    phi(theta) = eta / (theta**gamma * (1 + theta)**(1 - gamma))

with ``theta = theta(T)`` the at-the-money total variance. ``rho < 0`` is the put skew (low
strikes richer), ``eta`` its steepness, ``gamma`` how it flattens with maturity. The
power-law ``phi`` with ``0 < gamma <= 1/2`` and ``eta * (1 + |rho|) <= 2`` makes the surface free
of butterfly and calendar arbitrage whenever ``theta(T)`` is non-decreasing (their section 4);
``Smile`` refuses parameters outside that region. Indexes and index ETFs get a steep skew
(``INDEX_SMILE``), single stocks a flatter one (``STOCK_SMILE``).

**Term structure**: the at-the-money variance is the average, to ``T``, of a variance that
reverts from its instantaneous level ``v0`` to a long-run level ``v_inf`` at rate ``kappa``::

    sigma_atm(T)**2 = v_inf + (v0 - v_inf) * (1 - exp(-kappa*T)) / (kappa*T)

anchored so that ``sigma_atm(30 days)`` is the index's 30-day at-the-money vol. Low VIX gives an
upward-sloping term structure, high VIX an inverted one, as VIX futures curves are.
``theta(T) = sigma_atm(T)**2 * T`` is increasing in ``T`` (``v0`` is kept at least
``min_spot_share * v30``).

**Anchor: VIX.** VIX is the square root of the S&P 500's 30-day variance-swap rate (Cboe's VIX
method prices a strip of out-of-the-money options). The index's 30-day at-the-money vol is the
one whose SSVI smile prices that strip at ``(VIX/100)**2`` - a little below VIX, because the
skew makes the wings rich (``atm_vol_for_vix``: 0.86-0.88 x VIX with the parameters below).

**Other underlyings** are the index's surface scaled: ``theta_X(T) = scale**2 * theta_index(T)``
with ``scale`` the underlying's realised volatility over the index's (``engine.market.options``
falls back to a fixed table when the history is too short), and their own smile shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

VIX_YEARS = 30.0 / 365.0  # the VIX horizon


@dataclass(frozen=True)
class Smile:
    """SSVI smile parameters (power-law ``phi``), checked against the no-arbitrage region."""

    rho: float
    eta: float
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if not (-1 < self.rho < 1 and self.eta > 0 and 0 < self.gamma <= 0.5):
            raise ValueError(f"SSVI parameters out of range: {self}")
        if self.eta * (1 + abs(self.rho)) > 2 + 1e-12:
            raise ValueError(f"eta * (1 + |rho|) must be <= 2 for no butterfly arbitrage: {self}")

    def phi(self, theta: np.ndarray) -> np.ndarray:
        return self.eta / (theta**self.gamma * (1 + theta) ** (1 - self.gamma))

    def total_variance(self, k: np.ndarray, theta: np.ndarray) -> np.ndarray:
        pk = self.phi(theta) * k
        return 0.5 * theta * (1 + self.rho * pk + np.sqrt((pk + self.rho) ** 2 + 1 - self.rho**2))


# Indexes: a steep put skew (at VIX 20, 30 days: one standard deviation down +5.2 vol points,
# two down +9.7, the 30-day ATM vol 0.87 x VIX); single stocks: a flatter one.
INDEX_SMILE = Smile(rho=-0.7, eta=0.9)
STOCK_SMILE = Smile(rho=-0.4, eta=1.0)


@dataclass(frozen=True)
class TermStructure:
    long_run_vol: float = 0.16  # the index's at-the-money vol far out (~0.85 x VIX's mean)
    reversion: float = 3.0  # kappa, per year: a shock to variance half-fades in ~3 months
    min_spot_share: float = 0.5  # v0 >= this x v30 (very low VIX: theta stays increasing)

    def atm_variance(self, sigma30: float, t: np.ndarray) -> np.ndarray:
        """Annualised at-the-money variance to each ``t`` (years), ``sigma30`` at 30 days."""
        k = self.reversion
        f30 = (1 - math.exp(-k * VIX_YEARS)) / (k * VIX_YEARS)
        v30, v_inf = sigma30**2, self.long_run_vol**2
        v0 = v_inf + (v30 - v_inf) / f30
        if v0 < self.min_spot_share * v30:  # keep both levels positive, still exact at 30 days
            v0 = self.min_spot_share * v30
            v_inf = (v30 - v0 * f30) / (1 - f30)
        t = np.asarray(t, dtype=float)
        f = -np.expm1(-k * t) / (k * t)
        return v_inf + (v0 - v_inf) * f


TERM = TermStructure()


@dataclass(frozen=True)
class Surface:
    """One underlying's implied volatility at one instant: ``vol(k, t)``."""

    index_sigma30: float  # the index's 30-day at-the-money vol
    scale: float  # this underlying's vol over the index's
    smile: Smile
    term: TermStructure = TERM

    def theta(self, t: np.ndarray) -> np.ndarray:
        """At-the-money total variance to ``t`` (years)."""
        return self.scale**2 * self.term.atm_variance(self.index_sigma30, t) * np.asarray(t)

    def atm_vol(self, t: np.ndarray) -> np.ndarray:
        return np.sqrt(self.theta(t) / np.asarray(t))

    def total_variance(self, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.smile.total_variance(np.asarray(k, dtype=float), self.theta(t))

    def vol(self, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.sqrt(self.total_variance(k, t) / np.asarray(t, dtype=float))


def variance_swap_rate(sigma30: float, smile: Smile = INDEX_SMILE, t: float = VIX_YEARS) -> float:
    """The fair variance (annualised) of a ``t``-year variance swap on the smile: the strip of
    out-of-the-money options, ``2/T * integral OTM(K)/K**2 dK`` (zero rates, F = 1)."""
    theta = sigma30**2 * t
    sd = math.sqrt(theta)
    k = np.linspace(-14 * sd, 10 * sd, 2001)
    w = smile.total_variance(k, np.full_like(k, theta))
    s = np.sqrt(w)
    d1 = -k / s + s / 2
    d2 = d1 - s
    strike = np.exp(k)
    otm = np.where(k < 0, strike * ndtr(-d2) - ndtr(-d1), ndtr(d1) - strike * ndtr(d2))
    return float(2 / t * np.trapezoid(otm * np.exp(-k), k))


@lru_cache(maxsize=1)
def _atm_ratio_table() -> tuple[np.ndarray, np.ndarray]:
    """(log VIX grid, ATM/VIX ratio): solved once, interpolated after (a backtest asks for
    thousands of distinct VIX values; the ratio moves slowly with the level)."""
    grid = np.linspace(math.log(5.0), math.log(200.0), 24)
    ratios = [brentq(_vix_gap, 0.5, 1.2, args=(math.exp(x),), xtol=1e-9) for x in grid]
    return grid, np.array(ratios)


def _vix_gap(ratio: float, vix: float) -> float:
    return variance_swap_rate(ratio * vix / 100) - (vix / 100) ** 2


def atm_vol_for_vix(vix: float) -> float:
    """The index's 30-day at-the-money implied vol whose smile reproduces VIX."""
    grid, ratios = _atm_ratio_table()
    return float(np.interp(math.log(vix), grid, ratios)) * vix / 100
