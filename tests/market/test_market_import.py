"""`alluse data import` and the bar store: the layouts users have, validation, the manifest,
and `--data` reading a folder of such files directly."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import numpy as np
import pytest

from adapters.market_data import store
from adapters.market_data.files import FileMarketData
from constitution.errors import InvalidInput
from engine.market.facts_builder import build_facts
from engine.market.snapshot import QualityCode
from scheduler.cli import main
from tests.bundled_params import PARAMS
from tests.market.conftest import SHARED_DATA, ny, shared_file

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700
2024-01-03,184.22,185.88,183.43,184.25,183.55,58414500
2024-01-04,null,null,null,null,null,null
2024-01-05,181.99,182.76,180.17,181.18,180.49,62303300
"""
STOOQ = """<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>
MSFT.US,D,20240102,000000,373.86,375.9,366.77,370.87,25258600,0
MSFT.US,D,20240103,000000,369.01,373.26,368.51,370.6,23083500,0
MSFT.US,D,20240104,000000,370.67,373.1,367.17,367.94,20901500,0
"""
IB_EXPORT = """date,open,high,low,close,volume,average,barCount
2024-01-02,472.16,473.67,470.49,472.65,123623700.0,472.1,456789
2024-01-03,470.43,471.19,468.17,468.79,103585900.0,469.6,401234
"""


def _file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _ohlc(days: list[str]) -> str:
    return "date,open,high,low,close\n" + "".join(f"{d},10,11,9,10.5\n" for d in days)


def test_the_shared_files_import_under_their_symbols_with_a_manifest(tmp_path):
    vix, spx = shared_file("vix-daily.csv"), shared_file("spx-daily-close.csv")

    results = store.import_files([(vix, None), (spx, None)], tmp_path / "bars")

    assert [(r.symbol, r.close_only) for r in results] == [("VIX", False), ("SPX", True)]
    manifest = json.loads((tmp_path / "bars" / "manifest.json").read_text())
    entry = manifest["symbols"]["SPX"]
    assert entry["source"] == str(spx) and entry["source_format"] == "close-only"
    assert (entry["rows"], entry["first"], entry["last"]) == (8430, "1990-01-02", "2023-06-16")
    assert entry["source_sha256"] == hashlib.sha256(spx.read_bytes()).hexdigest()
    assert (
        entry["sha256"] == hashlib.sha256((tmp_path / "bars" / "SPX.csv").read_bytes()).hexdigest()
    )
    assert manifest["symbols"]["VIX"]["last"] == "2026-07-23"


def test_a_yahoo_file_uses_close_and_drops_null_rows_as_a_reported_gap(tmp_path):
    v = store.validate(_file(tmp_path, "AAPL.csv", YAHOO))

    assert (v.symbol, v.source_format) == ("AAPL", "yahoo")
    assert v.history.close.tolist() == [185.64, 184.25, 181.18]  # Close, not Adj Close
    found = {f.code: f.detail for f in v.history.findings}
    assert "2024-01-04" in found[QualityCode.NON_FINITE_PRICE]
    assert "2024-01-04" in found[QualityCode.HISTORY_GAP]


def test_a_stooq_file_takes_its_symbol_from_the_ticker_column(tmp_path):
    v = store.validate(_file(tmp_path, "msft.us.txt", STOOQ))

    assert (v.symbol, v.source_format, len(v.history)) == ("MSFT", "stooq", 3)
    assert v.history.volume[0] == 25258600


def test_a_stooq_weekly_file_is_refused(tmp_path):
    with pytest.raises(InvalidInput) as exc:
        store.validate(_file(tmp_path, "w.txt", STOOQ.replace(",D,", ",W,")), "MSFT")

    assert exc.value.problems[0].code == "not-daily"


def test_an_ib_export_is_read(tmp_path):
    v = store.validate(_file(tmp_path, "SPY_1D.csv", IB_EXPORT))

    assert (v.symbol, v.source_format) == ("SPY", "ib")
    assert v.history.days.astype(str).tolist() == ["2024-01-02", "2024-01-03"]


def test_intraday_bars_are_refused_with_their_line(tmp_path):
    text = "date,open,high,low,close\n2024-01-02,1,1,1,1\n2024-01-02 10:30:00,1,1,1,1\n"

    with pytest.raises(InvalidInput) as exc:
        store.validate(_file(tmp_path, "X.csv", text))

    assert (exc.value.problems[0].code, exc.value.problems[0].line) == ("not-daily", 3)


def test_an_unsorted_file_refuses_the_whole_batch_and_writes_nothing(tmp_path):
    good = _file(tmp_path, "GOOD.csv", _ohlc(["2024-01-02", "2024-01-03"]))
    bad = _file(tmp_path, "BAD.csv", _ohlc(["2024-01-02", "2024-01-04", "2024-01-03"]))

    with pytest.raises(InvalidInput) as exc:
        store.import_files([(good, None), (bad, None)], tmp_path / "bars")

    problem = exc.value.problems[0]
    assert (problem.code, problem.line, problem.file) == ("unsorted-dates", 4, str(bad))
    assert not (tmp_path / "bars").exists()


def test_a_date_twice_with_different_prices_is_refused_naming_both_lines(tmp_path):
    text = _ohlc(["2024-01-02", "2024-01-03"]) + "2024-01-03,10,12,9,11\n"

    with pytest.raises(InvalidInput) as exc:
        store.validate(_file(tmp_path, "X.csv", text))

    assert exc.value.problems[0].code == "duplicate-date"
    assert "lines 3 and 4" in exc.value.problems[0].message


def test_a_date_twice_with_the_same_prices_is_kept_once_and_reported(tmp_path):
    v = store.validate(_file(tmp_path, "X.csv", _ohlc(["2024-01-02", "2024-01-03", "2024-01-03"])))

    assert len(v.history) == 2
    assert QualityCode.DUPLICATE_DATE in {f.code for f in v.history.findings}


def test_a_newest_first_file_is_reversed_and_reported(tmp_path):
    v = store.validate(_file(tmp_path, "X.csv", _ohlc(["2024-01-04", "2024-01-03", "2024-01-02"])))

    assert v.history.days.astype(str).tolist() == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert QualityCode.UNSORTED_DATES in {f.code for f in v.history.findings}


def test_gaps_and_rows_on_closed_days_are_reported_and_nothing_is_invented(tmp_path):
    # 2024-01-03/04 missing; 2024-01-06 is a Saturday; 2024-01-15 is Martin Luther King Day
    days = ["2024-01-02", "2024-01-05", "2024-01-06", "2024-01-08", "2024-01-15", "2024-01-16"]

    v = store.validate(_file(tmp_path, "X.csv", _ohlc(days)))

    found = {f.code: f.detail for f in v.history.findings}
    assert found[QualityCode.HISTORY_GAP].startswith(
        "6 sessions missing: 2024-01-03, 2024-01-04, 2024-01-09"
    )
    assert "2024-01-06, 2024-01-15" in found[QualityCode.NOT_A_SESSION]
    assert v.history.days.astype(str).tolist() == [
        "2024-01-02",
        "2024-01-05",
        "2024-01-08",
        "2024-01-16",
    ]


def test_the_same_symbol_twice_in_a_batch_is_refused(tmp_path):
    a = _file(tmp_path, "X.csv", _ohlc(["2024-01-02"]))
    b = _file(tmp_path, "x-daily.csv", _ohlc(["2024-01-03"]))

    with pytest.raises(InvalidInput) as exc:
        store.import_files([(a, None), (b, None)], tmp_path / "bars")

    assert exc.value.problems[0].code == "same-symbol"


def test_a_second_import_adds_to_the_store_and_keeps_the_manifest_whole(tmp_path):
    store.import_files([(_file(tmp_path, "A.csv", _ohlc(["2024-01-02"])), None)], tmp_path / "s")
    store.import_files([(_file(tmp_path, "B.csv", _ohlc(["2024-01-03"])), None)], tmp_path / "s")

    assert sorted(store.manifest_entries(tmp_path / "s")) == ["A", "B"]
    assert sorted(store.open_bars(tmp_path / "s")) == ["A", "B"]


def test_a_store_file_changed_after_its_import_is_refused(tmp_path):
    store.import_files([(_file(tmp_path, "A.csv", _ohlc(["2024-01-02"])), None)], tmp_path / "s")
    stored = tmp_path / "s" / "A.csv"
    stored.write_text(stored.read_text().replace("10.5", "99.0"))

    with pytest.raises(InvalidInput) as exc:
        store.open_bars(tmp_path / "s")

    assert exc.value.problems[0].code == "store-modified"


def test_a_folder_of_files_with_an_unnamed_one_is_refused_naming_it(tmp_path):
    _file(tmp_path, "A.csv", _ohlc(["2024-01-02"]))
    odd = _file(tmp_path, "my prices.csv", _ohlc(["2024-01-02"]))

    with pytest.raises(InvalidInput) as exc:
        store.open_bars(tmp_path)

    assert [(p.code, p.file) for p in exc.value.problems] == [("bad-symbol", str(odd))]


def test_data_reads_the_shared_folder_directly_and_takes_the_drawdown_from_the_index():
    shared_file("vix-daily.csv")
    market = FileMarketData(SHARED_DATA)

    snap = market.snapshot(ny(date(2020, 3, 23), 10, 0), ["SPX"], PARAMS)
    facts = build_facts(snap, [], params=PARAMS)

    # S&P 500 closed at 2,304.92 on 2020-03-20, 32 % under its 52-week high of 3,386.15
    assert facts.market.spx_drawdown == pytest.approx(1 - 2304.92 / 3386.15, abs=1e-4)
    assert not {"index-proxy", "indicator-defaulted"} & {
        q.code for q in facts.quality if q.subject == "spx_drawdown"
    }


def test_without_index_bars_the_drawdown_comes_from_spy_and_says_so():
    from adapters.market_data.synthetic import synthetic_market

    market = synthetic_market(5, date(2024, 3, 1), ("SPY",))

    facts = build_facts(
        market.snapshot(ny(date(2024, 3, 1), 10, 0), ["SPY"], PARAMS), [], params=PARAMS
    )

    proxy = [q for q in facts.quality if q.code == "index-proxy"]
    assert [(q.subject, "SPY" in q.detail) for q in proxy] == [("spx_drawdown", True)]


def test_cli_imports_the_shared_files_into_a_store(tmp_path, capsys):
    shared_file("vix-daily.csv")
    into = tmp_path / "bars"

    code = main(
        [
            "data",
            "import",
            str(SHARED_DATA / "vix-daily.csv"),
            str(SHARED_DATA / "spx-daily-close.csv"),
            "--into",
            str(into),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "VIX: 9202 of 9235 rows stored (OHLC, 1990-01-02..2026-07-23)" in out
    assert "SPX: 8430 of 8430 rows stored (closes only, 1990-01-02..2023-06-16)" in out
    assert np.isclose(store.open_bars(into)["VIX"].close[-1], 18.70)


def test_cli_import_of_a_bad_file_is_exit_2_with_its_location(tmp_path, capsys):
    bad = _file(tmp_path, "BAD.csv", _ohlc(["2024-01-03", "2024-01-02", "2024-01-04"]))

    assert main(["data", "import", str(bad), "--into", str(tmp_path / "s")]) == 2

    err = capsys.readouterr().err
    assert f"{bad}:3:1: unsorted-dates" in err and "Traceback" not in err
