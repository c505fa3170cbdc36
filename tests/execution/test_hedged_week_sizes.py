"""§6 Hedged Week "deployment halved, only defensive rolls" (issue 14 item 2, D4): the planner's
sizes - contracts, not just whether an order exists - at the Hedged Week's factor against a
calm week, on the synthetic market's real-price chains (tests/execution/helpers.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from engine.execution import planner
from engine.execution.broker import OrderSide
from engine.execution.ledger import Deposit, Holding, LedgerState, OpenAccount, apply_all, stock
from engine.execution.plan import Context, option
from engine.execution.risk import GuardState, Limits, review
from engine.market.quotes import MarketView
from engine.records.decision import Action, ConstitutionRef, Decision
from tests.bundled_params import PARAMS
from tests.execution import helpers

WED, THU = date(2024, 1, 10), date(2024, 1, 11)


def _action(kind: str, account: str, symbol: str, rule: str, position=None, **params) -> Action:
    return Action(
        kind=kind,
        account=account,
        symbol=symbol,
        position=position,
        rule=rule,
        clause="§6",
        salience=70,
        params=params,
        reason="t",
    )


def _decision(day: date, action: Action, mode: str) -> Decision:
    return Decision(
        decision_id="d-hw",
        as_of=helpers.at(day, 10).isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={"market": {"mode": mode}},
        fired=(),
        actions=(action,),
    )


def _ledger(account: str, kind: str, dollars: int) -> LedgerState:
    state, _ = apply_all(
        LedgerState(),
        [OpenAccount("o", account, kind, date(2024, 1, 2)), Deposit("d", account, dollars * 100)],
    )
    return state


def _plan(bundled, day, action, state, equity, mode, by_key=None):
    """The planned orders for ``action`` under ``mode`` ('active' or 'hedged'), the factor as the
    risk guard gives it."""
    decision = _decision(day, action, mode)
    reviewed, limits = review(bundled.model, decision, GuardState())
    assert reviewed.verdicts[0].approved
    view = MarketView(helpers.market().snapshot(helpers.at(day, 10), (action.symbol,), PARAMS))
    ctx = Context(
        bundled.model,
        reviewed,
        state,
        view,
        limits,
        {action.account: {"equity": equity}},
        by_key or {},
    )
    handler = {
        "open_short_put": planner.open_short_put,
        "open_covered_call": planner.open_covered_call,
        "roll_position": planner.roll_position,
    }[action.kind]
    return handler(ctx, 0, action), limits


def test_the_guard_gives_the_hedged_week_factor(bundled):
    assert bundled.model.vix.hedged_week_deployment == 0.5
    _, limits = review(
        bundled.model, _decision(THU, _action("alert", "GEN", "AAPL", "r"), "hedged"), GuardState()
    )
    assert limits == Limits("hedged", 0.5)


def test_gen_puts_in_a_hedged_week_are_half_the_per_symbol_target(bundled):
    gen = dict(
        style="gen",
        delta={"min": 0.40, "max": 0.45},
        dte={"min": 0, "max": 1},
        deployment=1.0,
        share=1,
    )
    put = _action("open_short_put", "GEN", "AAPL", "entry.csp.gen", **gen)
    state = _ledger("GEN", "gen", 1_200_000)
    calm, _ = _plan(bundled, THU, put, state, 1_200_000.0, "active")
    hedged, _ = _plan(bundled, THU, put, state, 1_200_000.0, "hedged")
    [c], [h] = calm.orders, hedged.orders
    collateral = c.request.contract.strike * 100
    target = 1_200_000 / 7  # the budget over Gen's seven tickers, under the 25 % cap
    assert c.request.quantity == int(target // collateral)
    assert h.request.quantity == int(target * 0.5 // collateral)
    assert h.request.quantity < c.request.quantity and h.request.side is OrderSide.SELL


def test_rev_puts_are_halved_although_its_per_symbol_cap_binds(bundled):
    """Rev's two tickers put its budget share (50 %) above the 25 % cap: halving the budget
    before the cap left the size unchanged; the text halves what is deployed."""
    rev = dict(
        style="rev",
        delta={"min": 0.30, "max": 0.35},
        dte={"min": 1, "max": 5},
        deployment=1.0,
        share=1,
    )
    put = _action("open_short_put", "REV", "NVDA", "entry.csp.rev", **rev)
    state = _ledger("REV", "rev", 3_000_000)
    calm, _ = _plan(bundled, WED, put, state, 3_000_000.0, "active")
    hedged, _ = _plan(bundled, WED, put, state, 3_000_000.0, "hedged")
    [c], [h] = calm.orders, hedged.orders
    collateral = c.request.contract.strike * 100
    assert c.request.quantity == int(0.25 * 3_000_000 // collateral)
    assert h.request.quantity == int(0.25 * 3_000_000 * 0.5 // collateral)


def test_covered_calls_in_a_hedged_week_cover_half_the_lots(bundled):
    shares = Holding("COM", stock("AAPL"), 1000, 150.0, "stock", date(2024, 1, 2))
    call = _action(
        "open_covered_call",
        "COM",
        "AAPL",
        "entry.cc.com",
        position="COM/AAPL/stock",
        delta={"min": 0.20, "max": 0.25},
        dte={"min": 5, "max": 5},
        coverage=1,
        deployment=1,
    )
    state = _ledger("COM", "com", 50_000)
    by_key = {"COM/AAPL/stock": shares}
    calm, _ = _plan(bundled, date(2024, 1, 8), call, state, 250_000.0, "active", by_key)
    hedged, _ = _plan(bundled, date(2024, 1, 8), call, state, 250_000.0, "hedged", by_key)
    assert [o.request.quantity for o in calm.orders] == [10]
    assert [o.request.quantity for o in hedged.orders] == [5]


@pytest.mark.parametrize(("contracts", "reopened"), [(10, 5), (3, 1), (1, 0)])
def test_a_defensive_roll_in_a_hedged_week_closes_all_and_reopens_half(
    bundled, contracts, reopened
):
    view = MarketView(helpers.market().snapshot(helpers.at(WED, 10), ("AAPL",), PARAMS))
    spot = view.spot("AAPL")
    put = option("AAPL", date(2024, 1, 12), round(spot) + 10, "P")
    held = Holding("GEN", put, -contracts, 20.0, "income", date(2024, 1, 5))
    key = f"GEN/AAPL/put/{put.strike:g}/2024-01-12/short"
    state, _ = apply_all(LedgerState(), [OpenAccount("o", "GEN", "gen", date(2024, 1, 2))])
    state = replace(state, holdings={("GEN", put.key): held})
    roll = _action(
        "roll_position",
        "GEN",
        "AAPL",
        "roll.l2",
        position=key,
        dte_extension={"min": 3, "max": 4},
        max_cost_of_credit=0.5,
    )
    calm, _ = _plan(bundled, WED, roll, state, 400_000.0, "active", {key: held})
    hedged, _ = _plan(bundled, WED, roll, state, 400_000.0, "hedged", {key: held})
    legs = lambda p: [(o.request.side, o.request.quantity) for o in p.orders]  # noqa: E731
    assert legs(calm) == [(OrderSide.BUY, contracts), (OrderSide.SELL, contracts)]
    expected = [(OrderSide.BUY, contracts)] + ([(OrderSide.SELL, reopened)] if reopened else [])
    assert legs(hedged) == expected
