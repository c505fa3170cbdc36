"""``strike_grids`` (every expiry's strikes at once, for a chain) lists what the rule in
engine/market/listings.py's docstring lists for each expiry on its own, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.listings import (
    LADDER,
    NEAR_TERM_DAYS,
    short_term_increment,
    strike_grids,
    strike_increment,
)


def _one_expiry(symbol, spot, sd, days, strike_sds, min_each_side, max_strikes):
    """The rule for one expiry, written out plainly: the interval for its term, widened along
    the ladder until the grid fits, at least ``min_each_side`` strikes each side."""
    step = (
        short_term_increment(symbol, spot)
        if days <= NEAR_TERM_DAYS
        else strike_increment(symbol, spot)
    )
    half = max(strike_sds * sd, min_each_side * step)
    for rung in [r for r in LADDER if r >= step]:
        step = rung
        if 2 * int(half // step) + 1 <= max_strikes:
            break
    n = min(max(int(half // step), min_each_side), (max_strikes - 1) // 2)
    centre = round(spot / step) * step
    strikes = centre + np.arange(-n, n + 1) * step
    return strikes[strikes > 0]


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.sampled_from(["SPY", "QQQ", "AAPL", "NVDA", "XYZ"]),
    spot=st.floats(0.2, 5000),
    expiries=st.lists(st.tuples(st.floats(0, 2000), st.floats(0, 400)), min_size=1, max_size=12),
    strike_sds=st.sampled_from([2.0, 4.0, 6.5]),
    min_each_side=st.sampled_from([1, 5, 10, 20]),
    max_strikes=st.sampled_from([11, 41, 81, 201]),
)
def test_every_expiry_gets_the_strikes_of_the_rule(
    symbol, spot, expiries, strike_sds, min_each_side, max_strikes
):
    sd = np.array([e[0] for e in expiries])
    days = np.array([e[1] for e in expiries])
    knobs = dict(strike_sds=strike_sds, min_each_side=min_each_side, max_strikes=max_strikes)
    strikes, sizes = strike_grids(symbol, spot, sd, days, **knobs)
    expected = [_one_expiry(symbol, spot, s, d, **knobs) for s, d in expiries]
    assert sizes.tolist() == [len(e) for e in expected]
    assert strikes.tobytes() == np.concatenate(expected).tobytes()


def test_a_standard_deviation_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match="no strike grid"):
        strike_grids("SPY", 500.0, np.array([np.nan]), np.array([5.0]))
