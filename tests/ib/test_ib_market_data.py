"""IBMarketData against the stub gateway: quotes, chains with model greeks, daily history,
and data faults that must become findings, never exceptions."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, date, datetime

import numpy as np

from adapters.ib.market_data import SlidingWindow
from engine.clock import WallClock
from engine.market.facts_builder import build_facts
from engine.market.snapshot import QualityCode
from tests.bundled_params import PARAMS

AT = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)  # Monday 10:00 New York


def codes(findings, subject: str) -> set[str]:
    return {str(f.code) for f in findings if f.subject == subject}


def test_snapshot_has_quotes_vix_atr_and_a_chain_with_greeks(make_market):
    # A whole chain's greeks: give a loaded machine the adapter's default wait, not the fast
    # 1 s the fault tests use (waiting ends as soon as every line has ticked).
    md = make_market(max_dte=14, tick_wait=3.0)
    snap = md.snapshot(AT, ["AAPL"], PARAMS)
    q = snap.quotes["AAPL"]
    assert q.bid < q.ask and abs(q.mid - 200.0) < 1
    assert snap.vix is not None and abs(snap.vix.last - 16.0) < 0.01
    assert snap.atr5["AAPL"].source == "wilder" and snap.atr5["AAPL"].value > 0
    assert snap.last_close["AAPL"][0] == date(2025, 1, 3)
    chain = snap.chains["AAPL"]
    assert set(chain.expiries) == {date(2025, 1, 10), date(2025, 1, 17)}
    assert np.all(np.abs(chain.strike / 200.0 - 1) <= 0.10)
    puts = chain.delta[~chain.is_call]
    assert np.all((puts < 0) & (puts > -1)) and np.all(chain.delta[chain.is_call] > 0)
    assert np.all(chain.open_interest > 0)
    assert codes(snap.findings, "AAPL") == set()


def test_nan_quotes_become_findings_not_exceptions(make_market, stub):
    stub.faults.nan_quotes.add("NVDA")
    md = make_market()
    snap = md.snapshot(AT, ["NVDA"], PARAMS)
    assert math.isnan(snap.quotes["NVDA"].bid)
    facts = build_facts(snap, [], symbols=["NVDA"], params=PARAMS)
    assert "non-finite-price" in {f.code for f in facts.quality if f.subject == "NVDA"}


def test_missing_greeks_are_reported_and_left_as_nan(make_market, stub):
    stub.faults.missing_greeks.add("NVDA")
    md = make_market()
    snap = md.snapshot(AT, ["NVDA"], PARAMS)
    chain = snap.chains["NVDA"]
    assert np.all(np.isnan(chain.delta))
    assert str(QualityCode.BAD_CHAIN_ROWS) in codes(snap.findings, "NVDA")


def test_missing_option_subscription_is_a_missing_chain_finding(make_market, stub):
    stub.faults.no_option_data = True
    md = make_market()
    snap = md.snapshot(AT, ["AAPL"], PARAMS)
    assert "AAPL" not in snap.chains and "AAPL" in snap.quotes
    detail = next(f.detail for f in snap.findings if f.code is QualityCode.MISSING_CHAIN)
    assert "354" in detail and "subscription" in detail


def test_historical_pacing_violation_waits_and_retries(make_market, stub):
    stub.faults.hist_pacing = 2
    md = make_market()
    h = md.history("AAPL", date(2024, 12, 1), date(2025, 1, 3))
    assert len(h) == len([d for d in h.days if d >= np.datetime64("2024-12-01")]) > 20
    assert h.last_day == date(2025, 1, 3)
    assert md.session.pacing_waits == 2


def test_unknown_symbol_is_a_finding(make_market):
    md = make_market()
    snap = md.snapshot(AT, ["ZZZZ"], PARAMS)
    assert "ZZZZ" not in snap.quotes
    assert str(QualityCode.MISSING_QUOTE) in codes(snap.findings, "ZZZZ")


def test_sliding_window_waits_instead_of_failing():
    window = SlidingWindow(limit=2, window=0.2, clock=WallClock())

    async def five():
        for _ in range(5):
            await window.acquire()

    start = time.monotonic()
    asyncio.run(asyncio.wait_for(five(), 5))
    assert time.monotonic() - start >= 0.38
    assert window.waits >= 2
