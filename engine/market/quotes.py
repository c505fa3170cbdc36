"""Prices for planning and paper fills: one view of a market snapshot.

Listed contracts are quoted from the snapshot's chain. Contracts a chain does not list (LEAPs
12-18 months out, SPX and VIX hedges 6-12 months out: the synthetic chain lists the short-term
expiries and the next three monthlies) are *modelled*: Black-Scholes on the same
implied-volatility surface the chains use (SSVI from VIX, scaled per underlying:
``engine.market.options.surface_for``), with a spread of 3 % of the price (at least two
cents), flagged ``modelled``. Both the planner
and the paper broker use this view, so a paper order is priced and filled by the same model.

SPX is quoted as 10 x SPY when the snapshot has no SPX; VIX options are priced on the VIX
index with a volatility of 90 % (VIX options really price off VIX futures: a paper model,
documented in docs/execution.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from engine.market import calendar
from engine.market.instruments import ContractSpec, SecType
from engine.market.listings import strike_increment
from engine.market.options import bs_delta, bs_price, surface_for, years_to_expiry
from engine.market.snapshot import BidAsk, MarketSnapshot, OptionChain

RATE = 0.04
VIX_VOL = 0.90
MODEL_SPREAD = 0.03
MODEL_VOLUME = 1_000  # contracts/day assumed for modelled far-dated contracts


@dataclass(frozen=True, slots=True)
class OptionQuote(BidAsk):
    bid: float
    ask: float
    delta: float
    volume: int
    open_interest: int
    modelled: bool = False


class MarketView:
    """Quotes at ``snapshot.as_of`` (read-only; built once per cycle)."""

    def __init__(self, snapshot: MarketSnapshot):
        self.snapshot = snapshot
        self.as_of = snapshot.as_of
        self.today = calendar.new_york_date(snapshot.as_of)
        self._quotes: dict[
            ContractSpec, OptionQuote | None
        ] = {}  # a view never changes: one lookup per contract

    @property
    def vix(self) -> float | None:
        q = self.snapshot.vix
        if q is not None and math.isfinite(q.last) and q.last > 0:
            return q.last
        last = self.snapshot.vix_last_close
        return last[1] if last else None

    def spot(self, symbol: str) -> float | None:
        if symbol == "VIX":
            return self.vix
        q = self.snapshot.quotes.get(symbol)
        if q is not None and math.isfinite(q.last) and q.last > 0:
            return q.last
        last = self.snapshot.last_close.get(symbol)
        if last is not None:
            return last[1]
        if symbol == "SPX":
            spy = self.spot("SPY")
            return spy * 10 if spy else None
        return None

    def chain(self, symbol: str) -> OptionChain | None:
        return self.snapshot.chains.get(symbol)

    def quote(self, contract: ContractSpec) -> OptionQuote | None:
        try:
            return self._quotes[contract]
        except KeyError:
            q = self._quotes[contract] = self._quote(contract)
            return q

    def _quote(self, contract: ContractSpec) -> OptionQuote | None:
        if contract.sec_type is SecType.STOCK:
            s = self.spot(contract.symbol)
            return OptionQuote(s, s, 1.0, 10**9, 10**9) if s else None
        listed = self._listed(contract)
        if listed is not None or contract.expiry is None or contract.strike is None:
            return listed
        return self.model(contract.symbol, contract.expiry, contract.strike, contract.right or "P")

    def _listed(self, c: ContractSpec) -> OptionQuote | None:
        chain = self.chain(c.symbol)
        if chain is None:
            return None
        rows = np.flatnonzero(
            (chain.expiry == np.datetime64(c.expiry, "D"))
            & (chain.strike == c.strike)
            & (chain.is_call == (c.right == "C"))
        )
        if not len(rows):
            return None
        i = int(rows[0])
        return OptionQuote(
            float(chain.bid[i]),
            float(chain.ask[i]),
            float(chain.delta[i]),
            int(chain.volume[i]),
            int(chain.open_interest[i]),
        )

    def model(self, symbol: str, expiry: date, strike: float, right: str) -> OptionQuote | None:
        spot = self.spot(symbol)
        vix = self.vix
        if not spot or not vix or expiry < self.today:
            return None
        t = float(years_to_expiry(self.as_of, [expiry])[0])
        sigma = float(self._sigma(symbol, spot, vix, np.array([strike]), t)[0])
        is_call = right in ("C", "call")
        price = float(bs_price(spot, strike, t, RATE, sigma, is_call))
        delta = float(bs_delta(spot, strike, t, RATE, sigma, is_call))
        half = max(0.01, round(price * MODEL_SPREAD / 2, 2))
        mid = max(round(price, 2), half + 0.01)
        return OptionQuote(
            round(mid - half, 2), round(mid + half, 2), delta, MODEL_VOLUME, MODEL_VOLUME * 10, True
        )

    def _sigma(
        self, symbol: str, spot: float, vix: float, strikes: np.ndarray, t: float
    ) -> np.ndarray:
        """Implied vol of modelled contracts: the chains' surface (``surface_for``), with the
        underlying's measured vol scale when the snapshot has one; VIX options at VIX_VOL."""
        if symbol == "VIX":
            return np.full(len(strikes), VIX_VOL)
        surface = surface_for(symbol, vix, self.snapshot.vol_scales.get(symbol))
        forward = spot * np.exp(RATE * t)
        return surface.vol(np.log(strikes / forward), np.full(len(strikes), t))

    def strike_for_delta(
        self, symbol: str, expiry: date, right: str, band: tuple[float, float]
    ) -> float | None:
        """A modelled strike whose |delta| is nearest the middle of ``band`` (LEAPs)."""
        spot = self.spot(symbol)
        if not spot:
            return None
        step = strike_increment(symbol, spot)
        strikes = np.round(spot / step) * step + np.arange(-80, 81) * step
        strikes = strikes[strikes > 0]
        vix = self.vix or 20.0
        t = float(years_to_expiry(self.as_of, [expiry])[0])
        sigma = self._sigma(symbol, spot, vix, strikes, t)
        deltas = np.abs(bs_delta(spot, strikes, t, RATE, sigma, right in ("C", "call")))
        lo, hi = sorted(band)
        inside = (deltas >= lo) & (deltas <= hi)
        if not inside.any():
            return None
        idx = np.flatnonzero(inside)
        return float(strikes[idx[np.argmin(np.abs(deltas[idx] - (lo + hi) / 2))]])
