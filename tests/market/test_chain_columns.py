"""An OptionChain's columns cannot change under it: each is read-only, and a copy of what it
was given unless that can never change (a view of immutable bytes, as a chain feed sends)."""

import json
import math
import warnings
from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.market_data.chain_feed import COLUMNS
from engine.market.snapshot import OptionChain

AT = datetime(2024, 1, 2, 15, tzinfo=UTC)


def _columns() -> dict[str, np.ndarray]:
    return {
        "expiry": np.array(["2024-01-19", "2024-01-19"], dtype="datetime64[D]"),
        "strike": np.array([95.0, 100.0]),
        "is_call": np.array([False, True]),
        "bid": np.array([1.0, 2.0]),
        "ask": np.array([1.2, 2.3]),
        "delta": np.array([-0.3, 0.5]),
        "iv": np.array([0.2, 0.21]),
        "open_interest": np.array([10, 20], dtype=np.int64),
        "volume": np.array([1, 2], dtype=np.int64),
    }


def _as_bytes_views(cols: dict[str, np.ndarray], buffer_type=bytes) -> dict[str, np.ndarray]:
    return {
        name: np.frombuffer(buffer_type(np.ascontiguousarray(cols[name], dtype=d).tobytes()), d)
        for name, d in COLUMNS
    }


def test_writable_columns_are_copied_and_the_chain_is_read_only():
    cols = _columns()
    chain = OptionChain("XYZ", AT, 99.0, **cols)
    cols["bid"][0] = 99.0
    assert chain.bid[0] == 1.0
    for name, _ in COLUMNS:
        assert not getattr(chain, name).flags.writeable, name
    with pytest.raises(ValueError):
        chain.strike[0] = 1.0


def test_views_of_immutable_bytes_are_kept_as_they_are():
    views = _as_bytes_views(_columns())
    chain = OptionChain("XYZ", AT, 99.0, **views)
    assert all(getattr(chain, name) is views[name] for name, _ in COLUMNS)
    assert chain.bid.tolist() == [1.0, 2.0] and chain.all_well_formed


def test_views_of_a_writable_buffer_are_copied():
    views = _as_bytes_views(_columns(), bytearray)
    chain = OptionChain("XYZ", AT, 99.0, **views)
    assert all(getattr(chain, name) is not views[name] for name, _ in COLUMNS)
    views["ask"].base[0:8] = np.array([5.0]).tobytes()  # the buffer changes; the chain does not
    assert chain.ask[0] == 1.2


def test_a_bytes_view_of_another_type_is_converted():
    views = _as_bytes_views(_columns())
    views["strike"] = np.frombuffer(np.array([95, 100], dtype=np.int64).tobytes(), np.int64)
    chain = OptionChain("XYZ", AT, 99.0, **views)
    assert chain.strike.dtype == np.float64 and chain.strike.tolist() == [95.0, 100.0]


# --- well-formed rows ----------------------------------------------------------------------------

_ODD = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 1.0000001, -1.0000001, 5e-324, 1e308]


def _usable(strike, bid, ask, delta, oi, volume) -> bool:
    """The docstring's rule, row by row."""
    finite = all(math.isfinite(v) for v in (strike, bid, ask, delta))
    return (
        finite
        and strike > 0
        and ask > 0
        and 0 <= bid <= ask
        and abs(delta) <= 1
        and oi >= 0
        and volume >= 0
    )


_FLOAT = st.one_of(st.sampled_from(_ODD), st.floats(allow_nan=True, allow_infinity=True))


@given(
    st.lists(
        st.tuples(_FLOAT, _FLOAT, _FLOAT, _FLOAT, st.integers(-2, 3), st.integers(-2, 3)),
        min_size=1,
        max_size=30,
    )
)
def test_well_formed_rows_are_the_ones_the_rule_allows(rows):
    strike, bid, ask, delta, oi, volume = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    chain = OptionChain(
        "XYZ",
        AT,
        99.0,
        expiry=np.array(["2024-01-19"] * n, dtype="datetime64[D]"),
        strike=np.array(strike),
        is_call=np.zeros(n, dtype=bool),
        bid=np.array(bid),
        ask=np.array(ask),
        delta=np.array(delta),
        iv=np.full(n, 0.2),
        open_interest=np.array(oi, dtype=np.int64),
        volume=np.array(volume, dtype=np.int64),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a NaN or an infinity
        good = chain.well_formed.tolist()
    assert good == [_usable(*r) for r in rows]
    assert chain.all_well_formed == all(good)
    assert not chain.well_formed.flags.writeable


@pytest.mark.parametrize(
    ("field", "at", "past"),
    [
        ("delta", 1.0, 1.0000001),
        ("delta", -1.0, -1.0000001),
        ("bid", 0.0, -1e-9),
        ("bid", 1.2, 1.2000001),  # at the ask, just past it (crossed)
        ("ask", 1e308, math.inf),
        ("strike", 5e-324, 0.0),
    ],
)
def test_well_formed_boundaries(field, at, past):
    def row(value):
        values = {"strike": 95.0, "bid": 1.0, "ask": 1.2, "delta": -0.3, **{field: value}}
        cols = {**_columns(), **{k: np.array([v, v]) for k, v in values.items()}}
        return bool(OptionChain("XYZ", AT, 99.0, **cols).well_formed[0])

    assert row(at) and not row(past)


def test_a_chain_sent_by_the_feed_arrives_whole_and_aligned():
    """Through a feed's message and back: the same columns, and every eight-byte one aligned
    (an odd number of rows would put columns after a one-byte one off their boundary)."""
    from adapters.market_data.chain_feed import _chain, _message

    n = 1001
    rng = np.random.default_rng(3)
    cols = {
        "expiry": np.full(n, np.datetime64("2024-01-19", "D")),
        "strike": rng.uniform(50, 150, n),
        "is_call": rng.random(n) < 0.5,
        "bid": rng.uniform(0, 1, n),
        "ask": rng.uniform(1, 2, n),
        "delta": rng.uniform(-1, 1, n),
        "iv": rng.uniform(0.1, 0.5, n),
        "open_interest": rng.integers(0, 100, n),
        "volume": rng.integers(0, 100, n),
    }
    sent = OptionChain("XYZ", AT, 99.0, **cols)
    message = _message({"key": "k", "day": "2024-01-02"}, sent)
    size = 4 + int.from_bytes(message[:4], "big")
    header = json.loads(message[4:size])
    got = _chain(header, bytes(message[size:]), AT)
    for name, _ in COLUMNS:
        column = getattr(got, name)
        assert column.tobytes() == getattr(sent, name).tobytes(), name
        assert column.flags.aligned and not column.flags.writeable, name


def test_the_expiries_are_the_listed_dates_in_order_made_once():
    cols = _columns()
    cols["expiry"] = np.array(["2024-02-16", "2024-01-19"], dtype="datetime64[D]")
    chain = OptionChain("XYZ", AT, 99.0, **cols)
    assert chain.expiries == (date(2024, 1, 19), date(2024, 2, 16))
    assert chain.expiries is chain.expiries  # cached: the chain's columns never change
