"""§0 per-symbol cap and §7 "CSPs eligible again once the shares are called away" (issue 14
item 6, D140): assigned shares count against the 25 % cap at the mark, beside put collateral,
and a sleeve holding a symbol's shares sells no new puts on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.execution import money, planner
from engine.execution.ledger import Deposit, Holding, LedgerState, OpenAccount, apply_all, stock
from engine.execution.plan import Context, option, symbol_exposure
from engine.execution.risk import Limits
from engine.market.options import synthetic_chain
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote
from engine.records.decision import Action
from tests.execution import helpers

NY = ZoneInfo("America/New_York")
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=NY)  # Gen's window; 0-1 DTE is Friday 11-20
SPOT = 200.0


def _view() -> MarketView:
    quotes = {"AAPL": Quote("AAPL", SPOT, THURSDAY)}
    chains = {"AAPL": synthetic_chain("AAPL", SPOT, 18.0, THURSDAY)}
    return MarketView(
        MarketSnapshot(
            as_of=THURSDAY, quotes=quotes, vix=Quote("VIX", 18.0, THURSDAY), chains=chains
        )
    )


def _state(account: str, kind: str, cash: int, *holdings: Holding) -> LedgerState:
    ops = [OpenAccount("o", account, kind, date(2026, 1, 2)), Deposit("d", account, cash * 100)]
    state, _ = apply_all(LedgerState(), ops)
    return replace(state, holdings={(h.account, h.contract.key): h for h in holdings})


def _ctx(bundled, state: LedgerState, action: Action, equity: float) -> Context:
    decision = helpers.one_action_decision(action, THURSDAY.isoformat(), "d-cap")
    return Context(
        bundled.model,
        decision,
        state,
        _view(),
        Limits("active", 1.0),
        {action.account: {"equity": equity}},
        {},
    )


def _put_entry(account: str = "GEN") -> Action:
    return Action(
        kind="open_short_put",
        account=account,
        symbol="AAPL",
        rule="entry.csp.gen",
        clause="§2",
        salience=70,
        params={
            "style": "gen",
            "delta": {"min": 0.40, "max": 0.45},
            "dte": {"min": 0, "max": 1},
            "deployment": 1.0,
            "share": 1,
        },
        reason="t",
    )


def _shares(account: str, n: int, cost: float) -> Holding:
    return Holding(account, stock("AAPL"), n, cost, "stock", date(2026, 11, 13))


def test_no_new_puts_on_a_symbol_whose_assigned_shares_are_still_held(bundled):
    # GEN was assigned 500 AAPL at 190 last Friday; §7: puts on AAPL wait until they are called away
    state = _state("GEN", "gen", 305_000, _shares("GEN", 500, 190.0))
    action = _put_entry()
    part = planner.open_short_put(_ctx(bundled, state, action, 400_000.0), 0, action)
    assert part.orders == []
    [rejection] = part.rejections
    assert rejection.reason == "shares-held" and "500 AAPL shares" in rejection.detail


def test_with_no_shares_held_the_put_is_sold_within_the_per_symbol_cap(bundled):
    state = _state("GEN", "gen", 400_000)
    action = _put_entry()
    part = planner.open_short_put(_ctx(bundled, state, action, 400_000.0), 0, action)
    assert part.orders and not part.rejections
    collateral = sum(o.request.contract.strike * 100 * o.request.quantity for o in part.orders)
    assert 0 < collateral <= bundled.model.capital.per_symbol_max * 400_000


def test_the_cap_counts_shares_at_the_mark_plus_put_collateral(bundled):
    put = Holding(
        "MINI-1", option("AAPL", date(2026, 11, 20), 190.0, "P"), -2, 1.5, "income", THURSDAY.date()
    )
    state = _state("MINI-1", "mini", 100_000, _shares("MINI-1", 300, 100.0), put)
    ctx = _ctx(bundled, state, _put_entry("MINI-1"), 100_000.0)
    # 300 shares at the 200 mark (not their 100 cost) + 2 x 190 x 100 securing the put
    assert symbol_exposure(ctx, "MINI-1", "AAPL") == 300 * SPOT + 2 * 190.0 * 100


def test_share_purchases_stop_at_the_cap_counted_at_the_mark(bundled):
    # COM holds 300 AAPL bought at 100, worth 60,000 at the 200 mark; the cap is 25 % of 300,000
    # = 75,000: another 100-share lot (20,000) would take AAPL to 80,000 (at cost: 50,000)
    state = _state("COM", "com", 100_000, _shares("COM", 300, 100.0))
    action = Action(
        kind="buy_shares",
        account="COM",
        rule="reinvest.com_contracts",
        clause="§4",
        salience=96,
        params={"fraction": 0.525},
        reason="t",
    )
    ctx = replace(
        _ctx(bundled, state, action, 300_000.0),
        facts_accounts={"COM": {"quarter_gains": 100_000.0, "equity": 300_000.0}},
    )
    part = money.buy_shares(ctx, 0, action)
    assert part.orders == []  # only AAPL is priced in this view
    assert [r.reason for r in part.rejections] == ["below-one-lot"]
