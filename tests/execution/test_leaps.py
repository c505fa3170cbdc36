"""§17 the LEAP ladder as a living thing (D65): a rung rolled forward is sold and the next
rung bought with what the sale brings; a purchase never spends more than the LEAP fund."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.execution import protect
from engine.execution.broker import OrderSide
from engine.execution.ledger import (
    LEAP,
    Deposit,
    Holding,
    LedgerState,
    OpenAccount,
    Transfer,
    apply_all,
)
from engine.execution.plan import Context, option
from engine.execution.risk import Limits
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote
from engine.records.decision import Action
from tests.execution import helpers

NY = ZoneInfo("America/New_York")
DAY = date(2024, 5, 14)
AT = datetime(2024, 5, 14, 10, tzinfo=NY)
RUNG = option("AAPL", date(2024, 7, 19), 200.0, "C")  # two months left


def _view() -> MarketView:
    quotes = {s: Quote(s, p, AT) for s, p in (("AAPL", 190.0), ("SPY", 520.0))}
    return MarketView(MarketSnapshot(as_of=AT, quotes=quotes, vix=Quote("VIX", 15.0, AT)))


def _ctx(bundled, state: LedgerState, action: Action, by_key=None) -> Context:
    decision = helpers.one_action_decision(action, AT.isoformat(), "d-7")
    return Context(bundled.model, decision, state, _view(), Limits("active", 1.0), {}, by_key or {})


def _com(fund_cents: int) -> LedgerState:
    ops = [OpenAccount("o", "COM", "com", date(2024, 1, 2)), Deposit("d", "COM", 300_000_00)]
    if fund_cents:
        ops.append(Transfer("t", "COM", "COM", fund_cents, dst_bucket=LEAP))
    state, _ = apply_all(LedgerState(), ops)
    return state


def _action(kind: str, **params) -> Action:
    return Action(
        kind=kind,
        account="COM",
        position="COM/AAPL/call/200/2024-07-19/long" if kind == "roll_leap" else None,
        rule=f"llms.{kind}",
        clause="§17",
        salience=56,
        params=params,
        reason="t",
    )


def _cost(part) -> float:
    return sum(
        o.request.quantity * o.ladder[-1] * 100
        for o in part.orders
        if o.request.side is OrderSide.BUY
    )


def test_a_rolled_rung_is_sold_and_the_next_bought_with_the_proceeds(bundled):
    held = Holding("COM", RUNG, 4, 3.0, "leap", date(2023, 7, 3))
    state = replace(_com(0), holdings={("COM", RUNG.key): held})
    action = _action("roll_leap", why="time")
    part = protect.roll_leap(_ctx(bundled, state, action, {action.position: held}), 0, action)
    sell, buy = part.orders
    assert (sell.request.side, sell.request.quantity, sell.funding) == (OrderSide.SELL, 4, LEAP)
    assert buy.request.side is OrderSide.BUY and buy.request.contract.expiry > RUNG.expiry
    proceeds = _view().quote(RUNG).bid * 4 * 100
    assert buy.request.quantity * buy.ladder[-1] * 100 <= proceeds


def test_a_leap_purchase_never_spends_more_than_the_fund(bundled):
    state = _com(5_000_00)
    action = _action(
        "buy_leap",
        growth=bundled.model.llms.growth_calls.model_dump(),
        hedge=bundled.model.llms.hedge_puts.model_dump(),
        split=bundled.model.llms.split.model_dump(),
    )
    part = protect.buy_leap(_ctx(bundled, state, action), 0, action)
    assert part.orders
    assert _cost(part) <= 5_000.0


def test_com_reinvested_contracts_buy_whole_lots_within_the_per_symbol_cap(bundled):
    from engine.execution import money

    state = _com(0)
    action = _action("buy_shares", fraction=0.525)
    ctx = _ctx(bundled, state, action)
    ctx = replace(ctx, facts_accounts={"COM": {"quarter_gains": 100_000.0, "equity": 300_000.0}})
    part = money.buy_shares(ctx, 0, action)
    [order] = part.orders  # only AAPL is priced in this view: 52,500 / 19,000 = 2 lots, cap 75,000
    assert (order.request.contract.symbol, order.request.quantity) == ("AAPL", 200)
    assert order.request.side is OrderSide.BUY and order.purpose == "stock"


@pytest.mark.parametrize(
    ("kind", "gains", "total"),
    [
        ("tactical", 0.0, 6000.0),  # 1 % + 0.5 % of $400K
        ("tactical", 50_000.0, 4000.0),  # capped at 5 % of gains (2,500), floored at 1 % of equity
        ("strategic", 0.0, 4000.0),  # 1 % of sleeve equity
        ("strategic", 100_000.0, 5000.0),  # 5 % of quarterly gains is greater
    ],
)
def test_the_hedge_budget_follows_section_5_and_6(bundled, kind, gains, total):
    action = Action(
        kind="deploy_hedge",
        account="COM",
        rule="r",
        clause="§5",
        salience=1,
        params={"kind": kind},
        reason="t",
    )
    ctx = replace(
        _ctx(bundled, _com(0), action),
        facts_accounts={"COM": {"equity": 400_000.0, "quarter_gains": gains}},
    )
    spx, vix = protect._budget(ctx, action)
    assert spx + vix == pytest.approx(total) and spx == pytest.approx(2 * vix)


def test_hedge_instruments_are_spx_puts_15_percent_otm_six_months_and_vix_calls_vix_plus_5(bundled):
    action = Action(
        kind="deploy_hedge",
        account="COM",
        rule="r",
        clause="§5",
        salience=1,
        params={"kind": "strategic"},
        reason="t",
    )
    ctx = replace(
        _ctx(bundled, _com(0), action),
        facts_accounts={"COM": {"equity": 4_000_000.0, "quarter_gains": 0.0}},
    )
    part = protect.deploy_hedge(ctx, 0, action)
    spx, vix = sorted({o.request.contract for o in part.orders}, key=lambda c: c.symbol)
    assert (spx.symbol, spx.right, spx.strike) == ("SPX", "P", 4420.0)  # 5,200 x 0.85
    assert 170 <= (spx.expiry - DAY).days <= 200  # the monthly expiry six months out
    assert (vix.symbol, vix.right, vix.strike) == ("VIX", "C", 20.0)  # VIX 15 + 5
