"""The constitution's values the market room reads, built once from a validated constitution.

``MarketParams`` is the one source of every constitution value that facts building, the ATR,
the calendar's windows and the market-data adapters use (the rules read theirs through
``params.*`` names, the planner and risk guard from the model itself): nothing in ``engine/``,
``adapters/`` or ``scheduler/`` restates one as a constant or a default argument. A cycle
builds it once (``market_params``) and passes it down; an adapter is handed it with each
snapshot, because one market serves every constitution the scheduler swaps in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from types import MappingProxyType

from constitution.models import Constitution, HedgeTriggers, Sleeve
from engine.market.calendar import Cadence, cadence_of
from engine.market.snapshot import Right

SLEEVES = ("gen", "rev", "com")


@dataclass(frozen=True, slots=True)
class CandidateSpec:
    """Which contract's liquidity the facts report for an underlying (the entry candidate)."""

    right: Right
    delta_band: tuple[float, float]
    min_dte: int
    max_dte: int


@dataclass(frozen=True, slots=True)
class AtrParams:
    """§8 ATR specification (``protocol.atr``)."""

    period: int
    refresh: time
    stale_after: timedelta  # stale_hours
    stale_factor: float  # stale_multiplier
    price_fraction: float  # fallback_pct_of_price


@dataclass(frozen=True)
class MarketParams:
    cadence: Cadence
    atr: AtrParams
    max_quote_age: timedelta  # data_failures.quote_stale_seconds
    candidates: Mapping[str, CandidateSpec]  # sleeve -> its new short option
    sleeve_tickers: Mapping[str, tuple[str, ...]]
    vix_above: float  # hedging.triggers.vix_above: the level vix_closes_above_30 counts
    hedge_triggers: HedgeTriggers  # §5 strategic triggers: judge the trigger history (D16)


def market_params(constitution: Constitution) -> MarketParams:
    """The market values of a validated ``constitution.models.Constitution``."""
    c = constitution
    a = c.protocol.atr
    return MarketParams(
        cadence=cadence_of(c),
        atr=AtrParams(
            period=a.period,
            refresh=a.refresh,
            stale_after=timedelta(hours=a.stale_hours),
            stale_factor=a.stale_multiplier,
            price_fraction=a.fallback_pct_of_price,
        ),
        max_quote_age=timedelta(seconds=c.data_failures.quote_stale_seconds),
        candidates=MappingProxyType({k: _candidate(getattr(c.sleeves, k)) for k in SLEEVES}),
        sleeve_tickers=MappingProxyType({k: tuple(getattr(c.sleeves, k).tickers) for k in SLEEVES}),
        vix_above=c.hedging.triggers.vix_above,
        hedge_triggers=c.hedging.triggers,
    )


def _candidate(sleeve: Sleeve) -> CandidateSpec:
    right: Right = "put" if sleeve.instrument == "csp" else "call"
    return CandidateSpec(
        right, (sleeve.delta.min, sleeve.delta.max), sleeve.dte.min, sleeve.dte.max
    )
