"""The bundled constitution's market values for tests that call the market room directly:
the tests read them from the constitution, as the engine does, never from a copy."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from constitution.load import bundled_path, load_constitution
from engine.market.params import MarketParams, market_params

BUNDLED = load_constitution(bundled_path())
PARAMS = market_params(BUNDLED.model)
CADENCE = PARAMS.cadence
ATR = PARAMS.atr


def with_tickers(tickers) -> MarketParams:
    """The bundled values with other sleeve tickers ({sleeve: symbols})."""
    return replace(
        PARAMS, sleeve_tickers=MappingProxyType({k: tuple(v) for k, v in tickers.items()})
    )


# The executor's order terms (orders.cancel_replace_seconds, orders.retry_smaller).
ORDER_TERMS = {
    "cancel_replace_seconds": BUNDLED.model.orders.cancel_replace_seconds,
    "retry_smaller": BUNDLED.model.orders.retry_smaller,
}

# select_strike's liquidity filter (liquidity.*).
LIQUIDITY = {
    "min_open_interest": BUNDLED.model.liquidity.min_open_interest,
    "min_volume": BUNDLED.model.liquidity.min_volume,
    "max_spread_pct": BUNDLED.model.liquidity.max_spread_pct_of_mid,
}
