"""ATR(5) against talipp on real history; bar checks; the constitution's fallbacks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from talipp.indicators import ATR
from talipp.ohlcv import OHLCV

from adapters.market_data.files import read_bars
from engine.market import calendar
from engine.market.indicators import atr_reading, atr_series, clean_history, wilder
from engine.market.snapshot import QualityCode
from tests.bundled_params import ATR as BUNDLED_ATR
from tests.market.conftest import history, ny


def _talipp_atr(high, low, close, period=BUNDLED_ATR.period) -> np.ndarray:
    bars = [OHLCV(c, h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
    return np.array(
        [np.nan if v is None else v for v in ATR(period, input_values=bars)], dtype=float
    )


def test_atr5_matches_talipp_on_36_years_of_real_vix_ohlc(vix_csv):
    h = clean_history(read_bars(vix_csv, "VIX"))

    days, ours = atr_series(h, BUNDLED_ATR.period)
    ref = _talipp_atr(h.high, h.low, h.close)

    assert len(h) > 9000 and len(days) == len(ref)
    assert np.isnan(ours[:4]).all() and np.isnan(ref[:4]).all()
    np.testing.assert_allclose(ours[4:], ref[4:], rtol=1e-12, atol=1e-12)


def test_close_only_atr_matches_talipp_on_bars_spanning_consecutive_closes(spx_csv):
    # A close-to-close range is the true range of a bar whose high and low are the two closes.
    h = clean_history(read_bars(spx_csv, "SPX"))
    prev, cur = h.close[:-1], h.close[1:]

    days, ours = atr_series(h, BUNDLED_ATR.period)
    ref = _talipp_atr(np.maximum(prev, cur), np.minimum(prev, cur), cur)

    assert h.close_only and days[0] == h.days[1]
    np.testing.assert_allclose(ours[4:], ref[4:], rtol=1e-12, atol=1e-12)
    assert any(f.code is QualityCode.CLOSE_ONLY for f in h.findings)


def test_known_vix_extremes_are_in_the_real_history(vix_csv):
    h = read_bars(vix_csv, "VIX")

    above_80 = h.days[h.close > 80].astype(str).tolist()

    assert above_80 == ["2008-10-27", "2008-11-20", "2020-03-16"]


def test_wilder_of_a_constant_range_is_that_range():
    assert np.allclose(wilder(np.full(50, 2.5), BUNDLED_ATR.period)[4:], 2.5)
    assert np.isnan(wilder(np.ones(4), BUNDLED_ATR.period)).all()


def _week(n=12, start=date(2026, 11, 2)):
    return calendar.sessions_between(start, date(2026, 12, 31))[:n].astype(date).tolist()


def _ohlc(n=12, close=100.0):
    days = _week(n)
    c = np.full(n, close)
    return days, c, c + 1, c - 1


def test_fresh_atr_is_wilder_and_uses_only_bars_before_the_refresh():
    days, c, hi, lo = _ohlc()
    hi[-1] = 1_000.0  # today's bar must not leak into today's ATR
    h = clean_history(history("AAPL", days, c, hi, lo))

    reading = atr_reading(h, ny(days[-1], 10), price=100.0, atr=BUNDLED_ATR)

    assert reading.source == "wilder"
    assert reading.value == pytest.approx(2.0)
    assert reading.last_bar == days[-2]


def test_atr_more_than_24h_past_its_refresh_is_last_value_times_1_1():
    days, c, hi, lo = _ohlc()
    h = clean_history(history("AAPL", days[:-2], c[:-2], hi[:-2], lo[:-2]))  # last two bars missing

    reading = atr_reading(h, ny(days[-1], 10), price=100.0, atr=BUNDLED_ATR)

    assert reading.source == "stale_fallback"
    assert reading.value == pytest.approx(2.0 * 1.1)
    assert [f.code for f in reading.findings] == [QualityCode.STALE_ATR]


def test_monday_atr_from_fridays_bar_is_not_stale():
    days = calendar.sessions_between(date(2026, 11, 2), date(2026, 11, 20)).astype(date).tolist()
    c = np.full(len(days), 50.0)
    h = clean_history(history("MSFT", days, c, c + 0.5, c - 0.5))

    reading = atr_reading(h, ny(date(2026, 11, 23), 10), price=50.0, atr=BUNDLED_ATR)

    assert reading.source == "wilder" and reading.value == pytest.approx(1.0)


def test_no_atr_at_all_is_two_percent_of_price():
    days, c, hi, lo = _ohlc(n=3)
    h = clean_history(history("TSLA", days, c, hi, lo))

    reading = atr_reading(h, ny(date(2026, 11, 20)), price=250.0, atr=BUNDLED_ATR)

    assert reading.source == "price_fallback" and reading.value == pytest.approx(5.0)
    assert QualityCode.NO_ATR in [f.code for f in reading.findings]


def test_no_atr_and_no_price_gives_no_value_rather_than_a_guess():
    days, c, hi, lo = _ohlc(n=3)

    reading = atr_reading(
        clean_history(history("TSLA", days, c, hi, lo)),
        ny(date(2026, 11, 20)),
        price=float("nan"),
        atr=BUNDLED_ATR,
    )

    assert reading.value is None and reading.source == "price_fallback"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("close", np.nan, QualityCode.NON_FINITE_PRICE),
        ("close", np.inf, QualityCode.NON_FINITE_PRICE),
        ("close", 0.0, QualityCode.NON_POSITIVE_PRICE),
        ("low", -3.0, QualityCode.NON_POSITIVE_PRICE),
        ("high", 50.0, QualityCode.HIGH_BELOW_LOW),
        ("close", 100.9, None),  # inside the range: fine
        ("close", 105.0, QualityCode.CLOSE_OUTSIDE_RANGE),
        ("open", 105.0, QualityCode.OPEN_OUTSIDE_RANGE),
    ],
)
def test_bad_bars_are_dropped_with_a_finding(field, value, code):
    days, c, hi, lo = _ohlc()
    cols = {"close": c.copy(), "high": hi.copy(), "low": lo.copy(), "open": c.copy()}
    cols[field][5] = value

    clean = clean_history(
        history("AAPL", days, cols["close"], cols["high"], cols["low"], open_=cols["open"])
    )

    codes = [f.code for f in clean.findings]
    if code is QualityCode.OPEN_OUTSIDE_RANGE:  # reported, but the bar is kept
        assert len(clean) == 12 and codes == [code]
    elif code is None:
        assert len(clean) == 12 and codes == []
    else:
        assert len(clean) == 11 and code in codes
        assert np.datetime64(days[5]) not in clean.days


def test_a_dropped_bar_shows_up_as_a_gap_and_the_atr_still_comes_out():
    days, c, hi, lo = _ohlc()
    c = c.copy()
    c[5] = np.nan

    clean = clean_history(history("AAPL", days, c, hi, lo, open_=np.full(12, 100.0)))
    reading = atr_reading(clean, ny(days[-1], 10), price=100.0, atr=BUNDLED_ATR)

    gap = [f for f in clean.findings if f.code is QualityCode.HISTORY_GAP]
    assert gap and str(days[5]) in gap[0].detail
    assert reading.value == pytest.approx(2.0)
