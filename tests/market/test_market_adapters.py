"""File and synthetic market-data adapters: reading, importing, replay snapshots, the seed."""

from __future__ import annotations

import importlib.util
import json
from datetime import date

import numpy as np
import pytest

from adapters.market_data.files import (
    BarMarketData,
    FileMarketData,
    import_bars,
    load_store,
    read_bars,
)
from adapters.market_data.synthetic import EPOCH, generate, synthetic_market
from constitution.errors import InvalidInput
from engine.market import calendar
from engine.market.facts_builder import build_facts
from engine.market.indicators import clean_history
from engine.market.snapshot import QualityCode
from tests.bundled_params import PARAMS
from tests.market.conftest import ny

OHLC_CSV = """Date,Open,High,Low,Close,Volume
2026-11-16,100,101,99,100.5,1000
2026-11-18,101,102,100,101.5,1000
2026-11-17,100.5,102,100,101,1000
2026-11-18,101,103,100,102.5,1100
not-a-date,1,1,1,1,1
2026-11-19,102,101,103,102,1000
2026-11-20,102,104,101,nan,1000
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_problems_are_repaired_or_reported_never_raised(tmp_path):
    h = read_bars(_write(tmp_path, "x.csv", OHLC_CSV), "XYZ")

    codes = {f.code for f in h.findings}
    assert codes == {QualityCode.BAD_DATE, QualityCode.UNSORTED_DATES, QualityCode.DUPLICATE_DATE}
    assert h.days.astype(str).tolist() == [
        "2026-11-16",
        "2026-11-17",
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ]
    assert h.close[2] == 102.5  # the last of the duplicates


SORTED_CSV = """Date,Open,High,Low,Close,Volume
2026-11-16,100,101,99,100.5,1000
2026-11-17,100.5,102,100,101,1000
2026-11-18,101,103,100,102.5,1100
not-a-date,1,1,1,1,1
2026-11-19,102,101,103,102,1000
2026-11-20,102,104,101,nan,1000
"""


def test_import_stores_only_clean_rows_and_reports_the_rest(tmp_path):
    result = import_bars(_write(tmp_path, "x.csv", SORTED_CSV), "XYZ", tmp_path / "store")

    codes = {f.code for f in result.findings}
    assert {QualityCode.HIGH_BELOW_LOW, QualityCode.NON_FINITE_PRICE, QualityCode.BAD_DATE} <= codes
    assert (result.rows_read, result.rows_stored) == (6, 3)
    stored = load_store(tmp_path / "store")["XYZ"]
    assert stored.days.astype(str).tolist() == ["2026-11-16", "2026-11-17", "2026-11-18"]
    assert clean_history(stored).findings == ()
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert {f["code"] for f in manifest["symbols"]["XYZ"]["findings"]} >= {"high-below-low"}


def test_close_only_files_are_accepted_and_flagged(tmp_path):
    h = read_bars(_write(tmp_path, "c.csv", "DATE,CLOSE\n2026-11-16,10\n2026-11-17,11\n"), "C")

    assert h.close_only and np.isnan(h.high).all()
    assert QualityCode.CLOSE_ONLY in {f.code for f in clean_history(h).findings}


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("a.csv", "day,price\n2026-11-16,1\n", "missing-columns"),
        ("a.xlsx", "x", "unknown-format"),
        ("missing.csv", None, "not-found"),
    ],
)
def test_unreadable_files_are_invalid_input(tmp_path, name, text, code):
    path = _write(tmp_path, name, text) if text is not None else tmp_path / name

    with pytest.raises(InvalidInput) as exc:
        read_bars(path, "A")

    assert exc.value.problems[0].code == code


def test_parquet_round_trip(tmp_path):
    if not (importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet")):
        pytest.skip(
            "no Parquet engine installed (pyarrow or fastparquet); Parquet support is optional"
        )
    import pandas as pd

    path = tmp_path / "p.parquet"
    pd.DataFrame({"date": ["2026-11-16", "2026-11-17"], "close": [1.0, 2.0]}).to_parquet(path)

    assert read_bars(path, "P").close.tolist() == [1.0, 2.0]


def test_parquet_without_an_engine_is_a_clear_invalid_input(tmp_path, monkeypatch):
    # pyarrow is in the test extra; a machine without any engine is simulated the way pandas
    # reports it, so this runs everywhere instead of skipping where an engine is installed.
    import pandas as pd

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    path = _write(tmp_path, "p.parquet", "not really parquet")

    with pytest.raises(InvalidInput) as exc:
        read_bars(path, "P")

    assert exc.value.problems[0].code == "parquet-unavailable"


def test_real_vix_history_imports_and_serves_a_snapshot(vix_csv, spx_csv, tmp_path):
    store = tmp_path / "store"
    vix = import_bars(vix_csv, "VIX", store)
    spx = import_bars(spx_csv, "SPX", store)
    at = ny(date(2020, 3, 17), 10, 0)  # the day after the record close of 82.69

    snap = FileMarketData(store, index_symbol="SPX").snapshot(at, ["SPX"], PARAMS)
    facts = build_facts(snap, [], params=PARAMS)

    # Cboe computed VIX on 33 days the NYSE was closed (2004-06-11, Memorial Day 2022 ...)
    assert vix.rows_stored == vix.rows_read - 33 and spx.close_only
    assert {f.code for f in vix.findings} == {
        QualityCode.OPEN_OUTSIDE_RANGE,
        QualityCode.HISTORY_GAP,
        QualityCode.NOT_A_SESSION,
    }
    assert snap.vix_last_close == (date(2020, 3, 16), 82.69)
    assert facts.market.vix_closes_above_30 >= 5
    assert 0.25 < facts.market.spx_drawdown < 0.35  # S&P was ~29 % off its high
    assert facts.market.underlyings["SPX"].atr_source == "close_to_close"


def test_replay_quote_is_the_open_during_the_session_and_the_close_after():
    hist = generate(3, date(2026, 11, 20), symbols=("SPY",))
    market = BarMarketData(hist.bars)
    bars = hist.bars["SPY"]

    during = market.snapshot(ny(date(2026, 11, 20), 10, 0), ["SPY"], PARAMS)
    after = market.snapshot(ny(date(2026, 11, 20), 16, 30), ["SPY"], PARAMS)
    before = market.snapshot(ny(date(2026, 11, 20), 9, 0), ["SPY"], PARAMS)

    assert during.quotes["SPY"].last == bars.open[-1]
    assert after.quotes["SPY"].last == bars.close[-1]
    assert "SPY" not in before.quotes and before.last_close["SPY"][0] == date(2026, 11, 19)
    assert during.atr5["SPY"].last_bar == date(2026, 11, 19)  # no look-ahead into today's bar


# --- synthetic -------------------------------------------------------------------------------


def test_synthetic_market_is_reproducible_from_the_seed():
    a, b, c = (
        generate(11, date(2010, 12, 31)),
        generate(11, date(2010, 12, 31)),
        generate(12, date(2010, 12, 31)),
    )

    for s in a.bars:
        assert np.array_equal(a.bars[s].close, b.bars[s].close) and np.array_equal(
            a.bars[s].high, b.bars[s].high
        )
    assert not np.array_equal(a.bars["SPY"].close, c.bars["SPY"].close)


def test_synthetic_path_does_not_depend_on_its_end_date_or_other_symbols():
    short, long = generate(5, date(2005, 6, 30), symbols=("NVDA",)), generate(5, date(2012, 1, 31))
    n = len(short.days)

    assert np.array_equal(short.bars["NVDA"].close, long.bars["NVDA"].close[:n])
    assert np.array_equal(short.bars["VIX"].close, long.bars["VIX"].close[:n])


def test_synthetic_bars_are_valid_and_on_nyse_sessions():
    hist = generate(1, date(2026, 11, 27))

    for h in hist.bars.values():
        assert clean_history(h).findings == ()
    assert (
        hist.days[0] == np.datetime64(EPOCH)
        and date(2026, 11, 26) not in hist.days.astype(date).tolist()
    )
    assert np.array_equal(hist.days, calendar.sessions_between(EPOCH, date(2026, 11, 27)))


def test_synthetic_vix_and_volatility_move_together_across_regimes():
    hist = generate(2, date(2026, 11, 27))
    vix = hist.bars["VIX"].close
    spy = hist.bars["SPY"].close
    ret = np.diff(np.log(spy))
    realised = np.sqrt(252 * np.convolve(ret**2, np.ones(20) / 20, mode="valid")) * 100

    by_regime = [vix[hist.regime == r].mean() for r in range(3)]
    assert set(np.unique(hist.regime)) == {0, 1, 2}
    assert by_regime[0] < by_regime[1] < by_regime[2]
    assert np.corrcoef(realised, vix[20:])[0, 1] > 0.6
    assert np.corrcoef(np.diff(np.log(vix)), ret)[0, 1] < -0.5  # VIX jumps on down days


def test_synthetic_market_serves_facts_for_every_sleeve_ticker():
    market = synthetic_market(9, date(2026, 11, 19))
    symbols = ["AAPL", "MSFT", "AMZN", "GOOG", "GOOGL", "META", "NVDA", "TSLA", "SPY", "QQQ", "IWM"]

    facts = build_facts(
        market.snapshot(ny(date(2026, 11, 19), 10, 0), symbols, PARAMS), [], params=PARAMS
    )

    assert sorted(facts.market.underlyings) == sorted(symbols)
    assert all(
        u.quote_ok and u.chain_available and u.atr_source == "wilder"
        for u in facts.market.underlyings.values()
    )
    # breadth is not modelled; the S&P drawdown comes from SPY, and the facts say so
    assert {q.code for q in facts.quality} == {"indicator-defaulted", "index-proxy"}


def test_the_last_close_is_the_last_bar_clean_history_keeps_in_the_window():
    """The adapter's last close (``_last_usable``, made once per symbol) is the last bar that
    ``clean_history`` keeps of the ``lookback`` bars through the last completed session."""
    from datetime import timedelta

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from engine.market.snapshot import DailyHistory

    days = calendar.sessions_between(date(2024, 1, 2), date(2024, 2, 29))[:20]
    value = st.one_of(
        st.floats(min_value=50, max_value=60),
        st.sampled_from([float("nan"), 0.0, -1.0, float("inf")]),
    )

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.tuples(value, value, value, value), min_size=1, max_size=20),
        st.booleans(),
        st.integers(1, 8),
        st.data(),
    )
    def check(rows, close_only, lookback, data):
        n = len(rows)
        o, hi, lo, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
        h = DailyHistory("X", days[:n], o, hi, lo, c, np.zeros(n), close_only=close_only)
        market = BarMarketData({"X": h}, lookback_sessions=lookback)
        k = data.draw(st.integers(0, n - 1))  # the last completed session
        day = days[k].astype(date)
        kept = clean_history(h.slice(max(k + 1 - lookback, 0), k + 1))
        expected = (kept.days[-1].astype(date), float(kept.close[-1])) if len(kept) else None
        after_close = calendar.session_close(day) + timedelta(hours=1)
        assert market._last_close("X", after_close) == expected

    check()
