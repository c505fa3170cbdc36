"""The facts-file market-data port: what a snapshot serves from each field of the file."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from adapters.market_data.facts_market import FactsMarketData
from constitution.errors import FactsInvalid
from engine.market.facts_builder import MarketDataUnavailable, build_facts
from engine.market.snapshot import QualityCode
from tests.bundled_params import PARAMS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "facts-calm-thursday.yaml"


def _market(tmp_path, *edits) -> FactsMarketData:
    text = EXAMPLE.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "facts.yaml"
    path.write_text(text)
    return FactsMarketData.load(path)


def test_a_snapshot_serves_the_files_prices_vix_atr_and_modelled_chains(tmp_path):
    m = _market(tmp_path)
    at = m.as_of
    snap = m.snapshot(at, ["AAPL", "TSLA", "META"], PARAMS)
    assert snap.quotes["AAPL"].last == 228.5 and snap.quotes["AAPL"].at == at - timedelta(seconds=2)
    assert snap.vix.last == 18.4
    assert snap.atr5["TSLA"].value == 14.0 and snap.atr5["TSLA"].source == "wilder"
    assert snap.chains["AAPL"].spot == 228.5 and len(snap.chains["AAPL"]) > 0
    assert (snap.spx_drawdown, snap.breadth_above_50dma, snap.vix_closes_above_30) == (
        0.03,
        0.55,
        0,
    )
    assert "META" not in snap.quotes
    assert [(f.code, f.subject) for f in snap.findings] == [(QualityCode.MISSING_QUOTE, "META")]
    facts = build_facts(snap, [], symbols=["AAPL", "TSLA"], params=PARAMS)
    assert facts.market.underlyings["AAPL"].price == 228.5 and facts.market.data_age_seconds == 2
    assert facts.market.underlyings["TSLA"].atr5 == 14.0


def test_a_bad_quote_becomes_a_flagged_last_close_and_no_chain_means_none(tmp_path):
    m = _market(
        tmp_path,
        (
            "AAPL: {price: 228.5, atr5: 3.1, earnings_this_week: false}",
            "AAPL: {price: 228.5, atr5: 3.1, quote_ok: false, chain_available: false, earnings_this_week: true}",
        ),
    )
    snap = m.snapshot(m.as_of, ["AAPL"], PARAMS)
    assert "AAPL" not in snap.quotes and snap.last_close["AAPL"] == (date(2026, 11, 18), 228.5)
    assert "AAPL" not in snap.chains and "AAPL" in snap.earnings_this_week
    u = build_facts(snap, [], symbols=["AAPL"], params=PARAMS).market.underlyings["AAPL"]
    assert (u.quote_ok, u.chain_available, u.price, u.earnings_this_week) == (
        False,
        False,
        228.5,
        True,
    )


def test_served_later_the_quotes_age_and_never_pass_for_fresh(tmp_path):
    m = _market(tmp_path)
    facts = build_facts(
        m.snapshot(m.as_of + timedelta(seconds=20), ["AAPL"], PARAMS),
        [],
        symbols=["AAPL"],
        params=PARAMS,
    )
    assert facts.market.data_age_seconds == 22 and facts.market.underlyings["AAPL"].quote_ok
    with pytest.raises(
        MarketDataUnavailable
    ):  # past the 30 s limit even VIX is stale: no facts at all
        build_facts(
            m.snapshot(m.as_of + timedelta(minutes=5), ["AAPL"], PARAMS),
            [],
            symbols=["AAPL"],
            params=PARAMS,
        )


def test_history_is_one_bar_at_the_files_price_on_its_day(tmp_path):
    m = _market(tmp_path)
    day = date(2026, 11, 19)
    h = m.history("NVDA", day, day)
    assert list(h.close) == [142.0] and h.last_day == day and h.close_only
    assert len(m.history("NVDA", day + timedelta(days=1), day + timedelta(days=5))) == 0
    assert len(m.history("META", day, day)) == 0 and list(m.history("VIX", day, day).close) == [
        18.4
    ]


def test_require_names_the_unpriced_symbols_at_the_underlyings_line(tmp_path):
    m = _market(tmp_path)
    m.require(["AAPL", "SPY"], "held")
    with pytest.raises(FactsInvalid) as exc:
        m.require(["AAPL", "META", "ZZZ"], "held")
    [p] = exc.value.problems
    assert (p.line, p.code, p.path) == (
        11,
        "missing-underlying",
        "market.underlyings",
    ) and "META, ZZZ" in p.message
