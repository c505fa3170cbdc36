"""§3 Rev-Acc's 3-5 DTE puts, entered Wednesday (issue 14 item 7, D19): the expiry is the listed
one inside the band - next Monday's on the 2026 Monday/Wednesday programme - and with no listed
expiry in the band (Friday-only weeklies) the entry is rejected, never moved outside it."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.execution import planner
from engine.execution.ledger import Deposit, LedgerState, OpenAccount, apply_all
from engine.execution.plan import Context
from engine.execution.risk import Limits
from engine.market.listings import short_term_weekdays
from engine.market.options import synthetic_chain
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote
from engine.records.decision import Action
from tests.execution import helpers

NY = ZoneInfo("America/New_York")


def _plan(bundled, account: str, kind: str, style: str, symbol: str, spot: float, at: datetime):
    sleeve = getattr(bundled.model.sleeves, style)
    action = Action(
        kind="open_short_put",
        account=account,
        symbol=symbol,
        rule=f"entry.csp.{style}",
        clause="§3" if style == "rev" else "§2",
        salience=70,
        params={
            "style": style,
            "delta": sleeve.delta.model_dump(),
            "dte": sleeve.dte.model_dump(),
            "deployment": 1.0,
            "share": 1,
        },
        reason="t",
    )
    state, _ = apply_all(
        LedgerState(),
        [OpenAccount("o", account, kind, date(2024, 1, 2)), Deposit("d", account, 300_000_00)],
    )
    snapshot = MarketSnapshot(
        as_of=at,
        quotes={symbol: Quote(symbol, spot, at)},
        vix=Quote("VIX", 18.0, at),
        chains={symbol: synthetic_chain(symbol, spot, 18.0, at)},
    )
    decision = helpers.one_action_decision(action, at.isoformat(), "d-dte")
    ctx = Context(
        bundled.model,
        decision,
        state,
        MarketView(snapshot),
        Limits("active", 1.0),
        {account: {"equity": 300_000.0}},
        {},
    )
    return planner.open_short_put(ctx, 0, action)


@pytest.mark.parametrize("symbol, spot", [("NVDA", 140.0), ("TSLA", 330.0)])
def test_rev_on_wednesday_sells_next_mondays_expiry_five_days_out(bundled, symbol, spot):
    wednesday = datetime(2026, 11, 18, 10, 0, tzinfo=NY)
    part = _plan(bundled, "REV", "rev", "rev", symbol, spot, wednesday)
    assert part.orders and not part.rejections
    expiries = {o.request.contract.expiry for o in part.orders}
    assert expiries == {date(2026, 11, 23)}  # Monday: 5 days; Friday (2 days) is outside 3-5
    assert not [n for n in part.notes if n.get("note") == "dte-fallback"]


def test_rev_with_friday_only_weeklies_finds_no_expiry_in_band_and_says_so(bundled):
    wednesday = datetime(2025, 11, 19, 10, 0, tzinfo=NY)  # before the Monday/Wednesday programme
    part = _plan(bundled, "REV", "rev", "rev", "NVDA", 140.0, wednesday)
    assert part.orders == []
    [rejection] = part.rejections
    assert rejection.reason == "no-expiry"
    assert rejection.detail.startswith("no expiry in band: none listed 3-5 days from 2025-11-19")


def test_gen_on_thursday_still_sells_fridays_expiry(bundled):
    thursday = datetime(2025, 11, 20, 10, 0, tzinfo=NY)
    part = _plan(bundled, "GEN", "gen", "gen", "AAPL", 200.0, thursday)
    assert {o.request.contract.expiry for o in part.orders} == {date(2025, 11, 21)}


def test_the_mega_caps_list_monday_and_wednesday_expiries_from_february_2026():
    assert short_term_weekdays("NVDA", date(2025, 12, 1)) == (4,)
    assert short_term_weekdays("TSLA", date(2026, 2, 2)) == (0, 2, 4)
    assert short_term_weekdays("GOOG", date(2026, 2, 2)) == (4,)  # class C: not on the list
