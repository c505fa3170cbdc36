"""Every bad-data case ends as a finding in the facts, never as an exception or a silent number."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from adapters.market_data.files import BarMarketData
from constitution.errors import FactsInvalid
from engine.facts.model import Account, Facts, Position
from engine.market import calendar
from engine.market.facts_builder import (
    MarketDataUnavailable,
    build_facts,
    candidates_for_day,
)
from engine.market.options import synthetic_chain
from engine.market.snapshot import AtrReading, MarketSnapshot, Quote
from tests.bundled_params import PARAMS, with_tickers
from tests.market.conftest import history, ny

AT = ny(date(2026, 11, 19), 10, 0)  # a Thursday (Gen's entry day)
NAN, INF = float("nan"), float("inf")


def _snapshot(**changes) -> MarketSnapshot:
    base = MarketSnapshot(
        as_of=AT,
        quotes={"AAPL": Quote("AAPL", 230.0, AT - timedelta(seconds=2), bid=229.99, ask=230.01)},
        vix=Quote("VIX", 18.0, AT - timedelta(seconds=1)),
        atr5={"AAPL": AtrReading(4.2, "wilder", date(2026, 11, 18))},
        chains={"AAPL": synthetic_chain("AAPL", 230.0, 18.0, AT)},
        last_close={"AAPL": (date(2026, 11, 18), 228.0)},
        vix_last_close=(date(2026, 11, 18), 17.5),
        spx_drawdown=0.03,
        breadth_above_50dma=0.6,
    )
    return replace(base, **changes)


def _gen(*positions) -> Account:
    return Account(
        id="GEN",
        kind="gen",
        equity=500_000,
        base_equity=500_000,
        high_water_mark=500_000,
        cash=500_000,
        opened=date(2025, 1, 2),
        positions=positions,
    )


SHORT_PUT = Position(
    symbol="AAPL",
    right="put",
    side="short",
    strike=220,
    expiry=date(2026, 11, 20),
    contracts=5,
    entry_credit=1.1,
)


def _codes(facts: Facts, subject: str | None = None) -> set[str]:
    return {q.code for q in facts.quality if subject is None or q.subject == subject}


def test_clean_data_gives_clean_facts():
    facts = build_facts(_snapshot(), [_gen(SHORT_PUT)], params=PARAMS)

    u = facts.market.underlyings["AAPL"]
    assert facts.quality == ()
    assert (u.price, u.atr5, u.quote_ok, u.chain_available, u.atr_source) == (
        230.0,
        4.2,
        True,
        True,
        "wilder",
    )
    assert facts.market.data_age_seconds == 2.0
    assert facts.market.vix == 18.0 and facts.market.spx_drawdown == 0.03
    Facts.model_validate(facts.model_dump(mode="json"))  # the same schema `alluse evaluate` reads


@pytest.mark.parametrize(
    ("quote", "code"),
    [
        (Quote("AAPL", NAN, AT), "non-finite-price"),
        (Quote("AAPL", INF, AT), "non-finite-price"),
        (Quote("AAPL", -INF, AT), "non-finite-price"),
        (Quote("AAPL", 0.0, AT), "non-positive-price"),
        (Quote("AAPL", -5.0, AT), "non-positive-price"),
        (Quote("AAPL", 230.0, AT, bid=231.0, ask=230.5), "crossed-quote"),
        (Quote("AAPL", 230.0, AT, bid=NAN, ask=230.5), "non-finite-price"),
        (Quote("AAPL", 230.0, AT - timedelta(seconds=31)), "stale-quote"),
    ],
)
def test_a_bad_quote_marks_the_underlying_and_falls_back_to_the_last_close(quote, code):
    facts = build_facts(_snapshot(quotes={"AAPL": quote}), [_gen(SHORT_PUT)], params=PARAMS)

    u = facts.market.underlyings["AAPL"]
    assert not u.quote_ok and u.price == 228.0
    assert {code, "price-from-last-close"} <= _codes(facts, "AAPL")
    # the close of 11-18 (16:00) is 18 h old at 10:00 on 11-19
    assert facts.market.data_age_seconds == pytest.approx(18 * 3600)


def test_a_quote_30_seconds_old_is_still_fresh():
    facts = build_facts(
        _snapshot(quotes={"AAPL": Quote("AAPL", 230.0, AT - timedelta(seconds=30))}),
        [],
        params=PARAMS,
    )

    assert facts.market.underlyings["AAPL"].quote_ok and facts.market.data_age_seconds == 30.0


def test_the_stale_limit_is_an_argument():
    quote = Quote("AAPL", 230.0, AT - timedelta(seconds=10))

    facts = build_facts(
        _snapshot(quotes={"AAPL": quote}),
        [],
        params=replace(PARAMS, max_quote_age=timedelta(seconds=5)),
    )

    assert "stale-quote" in _codes(facts, "AAPL")


def test_a_missing_quote_is_reported():
    facts = build_facts(_snapshot(quotes={}), [_gen(SHORT_PUT)], params=PARAMS)

    assert {"missing-quote", "price-from-last-close"} <= _codes(facts, "AAPL")
    assert not facts.market.underlyings["AAPL"].quote_ok


def test_a_missing_chain_sets_chain_available_false():
    facts = build_facts(_snapshot(chains={}), [_gen(SHORT_PUT)], params=PARAMS)

    assert facts.market.underlyings["AAPL"].chain_available is False
    assert "missing-chain" in _codes(facts, "AAPL")


def test_unusable_chain_rows_are_dropped_and_counted():
    good = synthetic_chain("AAPL", 230.0, 18.0, AT)
    bid = good.bid.copy()
    bid[:3] = np.nan
    bad = replace(good, bid=bid)

    facts = build_facts(_snapshot(chains={"AAPL": bad}), [], params=PARAMS)

    assert facts.market.underlyings["AAPL"].chain_available
    assert any(
        q.code == "bad-chain-rows" and q.detail.startswith(f"3 of {len(good)} ")
        for q in facts.quality
    )


def test_a_chain_with_no_usable_row_counts_as_missing():
    good = synthetic_chain("AAPL", 230.0, 18.0, AT)
    bad = replace(good, ask=np.full(len(good), np.inf))

    facts = build_facts(_snapshot(chains={"AAPL": bad}), [], params=PARAMS)

    assert not facts.market.underlyings["AAPL"].chain_available
    assert {"bad-chain-rows", "missing-chain"} <= _codes(facts, "AAPL")


@pytest.mark.parametrize("vix", [Quote("VIX", NAN, AT), Quote("VIX", 0.0, AT), None])
def test_a_bad_vix_falls_back_to_its_last_close(vix):
    facts = build_facts(_snapshot(vix=vix), [], params=PARAMS)

    assert facts.market.vix == 17.5
    assert "vix-from-last-close" in _codes(facts, "VIX")


def test_no_vix_at_all_is_an_operational_failure_not_a_guess():
    with pytest.raises(MarketDataUnavailable):
        build_facts(_snapshot(vix=None, vix_last_close=None), [], params=PARAMS)


def test_a_held_symbol_with_no_price_anywhere_cannot_become_facts():
    with pytest.raises(MarketDataUnavailable):
        build_facts(_snapshot(quotes={}, last_close={}), [_gen(SHORT_PUT)], params=PARAMS)


def test_a_watched_symbol_with_no_price_is_left_out_with_a_finding():
    facts = build_facts(_snapshot(), [], symbols=["ZZZ"], params=PARAMS)

    assert "ZZZ" not in facts.market.underlyings
    assert "no-price" in _codes(facts, "ZZZ")


def test_atr_fallbacks_reach_the_facts():
    stale = AtrReading(4.62, "stale_fallback", date(2026, 11, 16))

    facts = build_facts(_snapshot(atr5={"AAPL": stale}), [], params=PARAMS)
    none = build_facts(_snapshot(atr5={}), [], params=PARAMS)

    assert facts.market.underlyings["AAPL"].atr_source == "stale_fallback"
    assert none.market.underlyings["AAPL"].atr_source == "price_fallback"
    assert none.market.underlyings["AAPL"].atr5 == pytest.approx(230.0 * 0.02)
    assert "no-atr" in _codes(none, "AAPL")


def test_unknown_market_indicators_are_defaulted_visibly():
    facts = build_facts(_snapshot(spx_drawdown=None, breadth_above_50dma=NAN), [], params=PARAMS)

    assert {"spx_drawdown", "breadth_above_50dma"} <= {
        q.subject for q in facts.quality if q.code == "indicator-defaulted"
    }


def test_inconsistent_account_state_is_facts_invalid():
    expired = SHORT_PUT.model_copy(update={"expiry": date(2026, 11, 13)})

    with pytest.raises(FactsInvalid) as exc:
        build_facts(_snapshot(), [_gen(expired)], params=PARAMS)

    assert [p.code for p in exc.value.problems] == ["expired"]


def test_early_close_flag_comes_from_the_calendar():
    friday = ny(date(2026, 11, 27), 10, 0)
    snap = _snapshot(
        as_of=friday, quotes={"AAPL": Quote("AAPL", 230.0, friday)}, vix=Quote("VIX", 18.0, friday)
    )

    assert build_facts(snap, [], params=PARAMS).market.early_close is True


def test_the_entry_candidates_liquidity_is_reported_for_the_entering_sleeve():
    chain = synthetic_chain("SPY", 600.0, 18.0, AT)
    snap = _snapshot(
        quotes={"SPY": Quote("SPY", 600.0, AT)}, chains={"SPY": chain}, atr5={}, last_close={}
    )
    candidates = candidates_for_day(AT.date(), with_tickers({"gen": ["SPY"], "rev": ["NVDA"]}))

    u = build_facts(snap, [], candidates=candidates, params=PARAMS).market.underlyings["SPY"]

    assert set(candidates) == {"SPY"} and candidates["SPY"] == PARAMS.candidates["gen"]
    dte = (chain.expiry - np.datetime64(AT.date())).astype(int)
    band = (
        ~chain.is_call & (np.abs(chain.delta) >= 0.40) & (np.abs(chain.delta) <= 0.45) & (dte <= 1)
    )
    best = np.flatnonzero(band)[np.argmin(np.abs(np.abs(chain.delta[band]) - 0.425))]
    assert u.option_open_interest == chain.open_interest[best]
    assert u.option_volume == chain.volume[best]
    assert u.option_spread_pct == pytest.approx(
        (chain.ask[best] - chain.bid[best]) / chain.mid[best]
    )


def test_a_chain_kept_over_ticks_and_days_gives_each_the_candidate_a_new_chain_would():
    """The candidate is made once per chain, spec and day (a chain serves every tick of its
    phase): each answer is the one a copy of the chain, never asked before, gives."""
    chain = synthetic_chain("SPY", 600.0, 18.0, AT)
    gen, rev = PARAMS.candidates["gen"], PARAMS.candidates["rev"]
    asked = [
        (AT + timedelta(days=days, minutes=minutes), spec)
        for days in (0, 1, 4, 6)  # the second day: the 0-1 DTE range moves a session on
        for minutes in (0, 30)
        for spec in (gen, rev)
    ]
    answers = []
    for at, spec in asked:
        snap = _snapshot(
            as_of=at,
            quotes={"SPY": Quote("SPY", 600.0, at)},
            chains={"SPY": chain},
            atr5={},
            last_close={},
        )
        fresh = replace(snap, chains={"SPY": chain.select(np.ones(len(chain), dtype=bool))})
        facts = [
            build_facts(s, [], candidates={"SPY": spec}, params=PARAMS).market.underlyings["SPY"]
            for s in (snap, fresh)
        ]
        assert facts[0] == facts[1], (at, spec)
        answers.append(facts[0].option_open_interest)
    assert len(set(answers)) > 2  # the days and specs do give different candidates


def test_no_candidate_fields_on_a_day_without_an_entry():
    candidates = candidates_for_day(
        date(2026, 11, 17), with_tickers({"gen": ["SPY"], "rev": ["NVDA"], "com": ["AAPL"]})
    )

    assert candidates == {}


# --- through the bar adapter: bad history becomes findings in the facts ----------------------


def _bars(symbol, days, close, spread=1.0):
    c = np.asarray(close, float)
    return history(symbol, days, c, c + spread, c - spread, open_=c, volume=np.full(len(c), 1e6))


def _sessions(last: date, n: int) -> list[date]:
    return calendar.sessions_between(last - timedelta(days=3 * n), last)[-n:].astype(date).tolist()


def _market(aapl) -> BarMarketData:
    days = _sessions(date(2026, 11, 19), 30)
    return BarMarketData(
        {"AAPL": aapl, "VIX": _bars("VIX", days, np.full(30, 18.0), 0.5)}, index_symbol="AAPL"
    )


def test_gaps_in_history_appear_in_the_facts():
    days = _sessions(date(2026, 11, 19), 30)
    keep = [d for i, d in enumerate(days) if i not in (10, 11)]

    facts = build_facts(
        _market(_bars("AAPL", keep, np.full(28, 230.0))).snapshot(AT, ["AAPL"], PARAMS),
        [],
        params=PARAMS,
    )

    gap = [q for q in facts.quality if q.code == "history-gap" and q.subject == "AAPL"]
    assert gap and "2 sessions missing" in gap[0].detail
    assert facts.market.underlyings["AAPL"].atr_source == "wilder"


@pytest.mark.parametrize(
    ("col", "value", "code"),
    [
        ("close", NAN, "non-finite-price"),
        ("close", INF, "non-finite-price"),
        ("close", 0.0, "non-positive-price"),
        ("close", -1.0, "non-positive-price"),
        ("high", 100.0, "high-below-low"),
    ],
)
def test_bad_bars_appear_in_the_facts(col, value, code):
    days = _sessions(date(2026, 11, 19), 30)
    h = _bars("AAPL", days, np.full(30, 230.0))
    arr = getattr(h, col).copy()
    arr[-5] = value
    bad = replace(h, **{col: arr})

    facts = build_facts(_market(bad).snapshot(AT, ["AAPL"], PARAMS), [], params=PARAMS)

    assert code in _codes(facts, "AAPL") and "history-gap" in _codes(facts, "AAPL")
    assert facts.market.underlyings["AAPL"].atr5 == pytest.approx(2.0)


def test_close_only_history_is_flagged_and_uses_close_to_close():
    days = _sessions(date(2026, 11, 19), 30)
    closes = 230.0 + np.where(np.arange(30) % 2, 1.5, -1.5)

    facts = build_facts(
        _market(history("AAPL", days, closes)).snapshot(AT, ["AAPL"], PARAMS), [], params=PARAMS
    )

    u = facts.market.underlyings["AAPL"]
    assert u.atr_source == "close_to_close" and u.atr5 == pytest.approx(3.0)
    assert "close-only" in _codes(facts, "AAPL")


def test_history_ending_days_ago_gives_a_stale_atr_and_the_last_close():
    days = _sessions(date(2026, 11, 16), 30)  # nothing after Monday

    facts = build_facts(
        _market(_bars("AAPL", days, np.full(30, 230.0))).snapshot(AT, ["AAPL"], PARAMS),
        [],
        params=PARAMS,
    )

    u = facts.market.underlyings["AAPL"]
    assert u.atr_source == "stale_fallback" and u.atr5 == pytest.approx(2.2)
    assert not u.quote_ok and {"stale-atr", "missing-quote", "price-from-last-close"} <= _codes(
        facts, "AAPL"
    )
    assert facts.market.data_age_seconds == pytest.approx(
        (AT - calendar.session_close(date(2026, 11, 16))).total_seconds()
    )
