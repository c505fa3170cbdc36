"""Honest coverage: before a backtest starts it says which tickers of each sleeve have data;
a sleeve with none is "not traded" in the summary; --require-data makes missing data an error."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from adapters.market_data.files import BarMarketData
from adapters.market_data.synthetic import generate
from adapters.storage.audit_store import AuditStore
from constitution.errors import InvalidInput
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.market.snapshot import DailyHistory
from scheduler.cli import main
from scheduler.coverage import coverage_of, require_data
from tests.market.conftest import ny

FIRST, LAST = date(2024, 3, 4), date(2024, 3, 15)


@pytest.fixture(scope="module")
def constitution():
    return load_constitution(bundled_path()).model


@pytest.fixture(scope="module")
def bars():
    return generate(4, LAST, ("SPY", "QQQ", "NVDA", "TSLA", "AAPL")).bars


def test_each_sleeve_ticker_is_full_partial_or_none(constitution, bars):
    late = bars["AAPL"].between(date(2024, 3, 8), LAST)  # starts mid-range
    market = BarMarketData({**bars, "AAPL": late})

    cov = coverage_of(constitution, market, FIRST, LAST)

    gen = {t.symbol: t.status for t in cov.sleeves["gen"]}
    assert gen == {
        "AAPL": "partial",
        "MSFT": "none",
        "AMZN": "none",
        "GOOG": "none",
        "SPY": "full",
        "QQQ": "full",
        "IWM": "none",
    }
    assert {t.status for t in cov.sleeves["rev"]} == {"full"}
    assert cov.vix.status == "full" and cov.index.symbol == "SPY"
    assert cov.not_traded() == {}


def test_a_sleeve_without_any_ticker_is_not_traded(constitution, bars):
    market = BarMarketData({"VIX": bars["VIX"], "SPY": bars["SPY"]})

    cov = coverage_of(constitution, market, FIRST, LAST)

    assert cov.not_traded() == {
        "rev": ("NVDA", "TSLA"),
        "com": ("AAPL", "MSFT", "AMZN", "GOOGL", "NVDA", "TSLA", "META"),
    }
    assert "  rev: not traded: no data for NVDA, TSLA" in cov.lines()


def test_gaps_inside_the_range_are_counted_not_called_missing(constitution, bars):
    nvda = bars["NVDA"]
    keep = nvda.days != np.datetime64("2024-03-12")
    holed = DailyHistory(
        "NVDA",
        *(getattr(nvda, c)[keep] for c in ("days", "open", "high", "low", "close", "volume")),
    )
    market = BarMarketData({**bars, "NVDA": holed})

    rev = coverage_of(constitution, market, FIRST, LAST).sleeves["rev"]

    nv = next(t for t in rev if t.symbol == "NVDA")
    assert (nv.status, nv.gaps, nv.describe()) == ("full", 1, "NVDA full, 1 sessions missing")


def test_require_data_names_every_ticker_without_the_whole_range(constitution, bars):
    market = BarMarketData({"VIX": bars["VIX"], "NVDA": bars["NVDA"], "TSLA": bars["TSLA"]})
    cov = coverage_of(constitution, market, FIRST, LAST)

    with pytest.raises(InvalidInput) as exc:
        require_data(cov, "bars/")

    paths = [p.path for p in exc.value.problems]
    assert "rev.NVDA" not in paths and "gen.AAPL" in paths and "com.META" in paths
    assert all(p.code == "missing-data" for p in exc.value.problems)


def _store(tmp_path, bars, symbols) -> str:
    folder = tmp_path / "bars"
    folder.mkdir()
    for s in symbols:
        h = bars[s]
        rows = ["date,open,high,low,close,volume"] + [
            f"{d},{o},{hi},{lo},{c},{v}"
            for d, o, hi, lo, c, v in zip(
                h.days.astype(str), h.open, h.high, h.low, h.close, h.volume, strict=True
            )
        ]
        (folder / f"{s}.csv").write_text("\n".join(rows) + "\n")
    return str(folder)


def test_backtest_prints_coverage_first_and_says_what_it_could_not_trade(tmp_path, capsys, bars):
    data = _store(tmp_path, bars, ("VIX", "SPY", "AAPL"))
    db = tmp_path / "bt.db"

    code = main(
        [
            "backtest",
            "--data",
            data,
            "--from",
            "2024-03-11",
            "--to",
            "2024-03-12",
            "--db",
            str(db),
            "--no-progress",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert out.index("data 2024-03-11..2024-03-12 (2 sessions):") < out.index("backtest 2024-03-11")
    assert "  market: VIX full; index SPY full - an ETF proxy for the S&P 500" in out
    assert "  gen: AAPL full; MSFT none; AMZN none; GOOG none; SPY full; QQQ none; IWM none" in out
    assert "  rev: not traded: no data for NVDA, TSLA" in out
    summary = out[out.index("backtest 2024-03-11") :]
    assert "rev sleeve" in summary and "not traded: no data for NVDA, TSLA" in summary
    assert "gen sleeve" not in summary and "com sleeve" not in summary


def test_require_data_refuses_to_start_with_exit_2_and_records_nothing(tmp_path, capsys, bars):
    data = _store(tmp_path, bars, ("VIX", "SPY", "NVDA", "TSLA"))
    db = tmp_path / "bt.db"

    code = main(
        [
            "backtest",
            "--data",
            data,
            "--from",
            "2024-03-11",
            "--to",
            "2024-03-12",
            "--db",
            str(db),
            "--no-progress",
            "--require-data",
        ]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert "missing-data: gen.AAPL: AAPL none" in err and "Traceback" not in err
    assert not db.exists() or AuditStore.open(f"sqlite:///{db}", FixedClock(ny(FIRST))).count() == 0


def test_synthetic_data_covers_every_sleeve(constitution):
    from adapters.market_data.synthetic import synthetic_market

    cov = coverage_of(constitution, synthetic_market(7, LAST), FIRST, LAST)

    assert cov.missing() == [] and cov.not_traded() == {}
