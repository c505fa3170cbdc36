"""What the planner's protection side buys (engine/execution/protect.py): §5/§6 hedges and the
§17 LEAP ladder - quantities within their budgets, the accounts and funds that pay, and what
is refused (no price, a budget below one contract, an empty LEAP fund, the halts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from engine.execution import protect
from engine.execution.broker import OrderSide
from engine.execution.ledger import CASH, LEAP, Holding, Transfer
from engine.execution.plan import PlannedOrder, option
from engine.execution.risk import GuardState
from tests.execution.plan_world import (
    DAY,
    action,
    context,
    cycle_plan,
    family,
    ledger,
    view,
    worst_cost,
)


def _most_the_budget_buys(o: PlannedOrder, budget: float) -> bool:
    """Sized at the ladder's worst price: within the budget, and one more contract is not."""
    one = o.ladder[-1] * o.request.contract.multiplier
    return worst_cost(o) <= budget < worst_cost(o) + one


def _by_symbol(orders) -> dict:
    return {o.request.contract.symbol: o for o in orders}


# --------------------------------------------------------------------------- hedges


def test_a_tactical_hedge_buys_spx_puts_and_vix_calls_for_the_sleeves_budget(bundled):
    """§6 L2: SPX puts 1 % and VIX calls 0.5 % of the sleeve's $1M equity, paid in cash."""
    hedge = action("deploy_hedge", "GEN", kind="tactical")
    accounts = {"GEN": {"equity": 1_000_000.0}}
    ctx = context(bundled, family({"GEN": 1_000_000}), hedge, accounts=accounts)
    part = protect.deploy_hedge(ctx, 0, hedge)
    orders = _by_symbol(part.orders)
    assert set(orders) == {"SPX", "VIX"} and not part.rejections
    assert _most_the_budget_buys(orders["SPX"], 10_000.0)
    assert _most_the_budget_buys(orders["VIX"], 5_000.0)
    assert {(o.request.account, o.request.side, o.purpose, o.funding) for o in part.orders} == {
        ("GEN", OrderSide.BUY, "hedge", CASH)
    }


@pytest.mark.parametrize(
    ("gains", "total"),
    [(120_000.0, 6_000.0), (110_000.0, 5_500.0)],  # 5 % of gains at 1.5 % of equity / under it
)
def test_the_tactical_budget_is_capped_at_5_percent_of_the_quarters_gains(bundled, gains, total):
    hedge = action("deploy_hedge", "GEN", kind="tactical")
    accounts = {"GEN": {"equity": 400_000.0, "quarter_gains": gains}}
    ctx = context(bundled, family({"GEN": 400_000}), hedge, accounts=accounts)
    spx, vix = protect._budget(ctx, hedge)
    assert spx + vix == pytest.approx(total)


def test_a_hedge_budget_below_one_contract_is_refused_not_rounded_up(bundled):
    hedge = action("deploy_hedge", "GEN", kind="tactical")
    ctx = context(bundled, family({"GEN": 20_000}), hedge, accounts={"GEN": {"equity": 20_000.0}})
    part = protect.deploy_hedge(ctx, 0, hedge)  # $200 of SPX puts: not one ~$4,200 contract
    assert "SPX" not in _by_symbol(part.orders)
    assert "budget-below-one-contract" in [r.reason for r in part.rejections]


def test_a_hedge_without_a_price_is_refused_not_bought_blind(bundled):
    """Without VIX there is neither a VIX call nor a modelled SPX put price: each leg is a
    recorded rejection naming the leg (D152)."""
    hedge = action("deploy_hedge", "GEN", kind="tactical")
    accounts = {"GEN": {"equity": 400_000.0}}
    market = view(vix=None)
    ctx = context(bundled, family({"GEN": 400_000}), hedge, accounts=accounts, market=market)
    part = protect.deploy_hedge(ctx, 0, hedge)
    assert part.orders == []
    assert sorted((r.leg, r.reason) for r in part.rejections) == [
        ("spx", "no-quote"),
        ("vix", "no-spot"),
    ]


@pytest.mark.parametrize(
    ("mode", "guard"),
    [
        ("kill", GuardState()),
        ("safe", GuardState()),
        ("active", GuardState(mode="safe", latched=True)),
        ("active", GuardState(holds={"GEN": "paused"})),
        ("active", GuardState(state="MAINTENANCE")),
    ],
)
def test_a_hedge_is_never_refused_by_a_halt(bundled, mode, guard):
    """A risk-reducing action is never refused by a halt (D61): the kill switch, SAFE, a
    latched SAFE, a paused account, an operator's MAINTENANCE."""
    hedge = action("deploy_hedge", "GEN", kind="tactical")
    accounts = {"GEN": {"equity": 1_000_000.0}}
    reviewed, p = cycle_plan(
        bundled, family({"GEN": 1_000_000}), hedge, mode=mode, guard=guard, accounts=accounts
    )
    assert reviewed.verdicts[0].approved and reviewed.verdicts[0].reasons == ()
    assert set(_by_symbol(p.orders)) == {"SPX", "VIX"}


# --------------------------------------------------------------------------- LEAPs (§17)


def _com_with_fund(dollars: float):
    return ledger(
        Transfer("t", "COM", "COM", round(dollars * 100), dst_bucket=LEAP),
        base=family({"COM": 300_000}),
    )


def test_a_leap_buy_splits_the_fund_75_growth_calls_25_spy_hedge_puts(bundled):
    buy = action("buy_leap", "COM")
    part = protect.buy_leap(context(bundled, _com_with_fund(40_000), buy), 0, buy)
    orders = _by_symbol(part.orders)
    assert set(orders) == {"AAPL", "SPY"} and not part.rejections
    growth, hedge = orders["AAPL"], orders["SPY"]
    assert (growth.request.contract.right, hedge.request.contract.right) == ("C", "P")
    assert _most_the_budget_buys(growth, 30_000.0) and _most_the_budget_buys(hedge, 10_000.0)
    assert {(o.request.account, o.request.side, o.purpose, o.funding) for o in part.orders} == {
        ("COM", OrderSide.BUY, "leap", LEAP)
    }
    months = (growth.request.contract.expiry - DAY).days / 30.44
    assert 11.5 <= months <= 12.5  # the first rung: months.min out


def test_the_next_growth_rung_is_staggered_further_out_on_the_next_ticker(bundled):
    first = option("AAPL", date(2025, 6, 20), 240.0, "C")
    held = Holding("COM", first, 2, 20.0, "leap", date(2024, 6, 3))
    state = replace(_com_with_fund(40_000), holdings={("COM", first.key): held})
    buy = action("buy_leap", "COM")
    growth = next(
        o.request.contract
        for o in protect.buy_leap(context(bundled, state, buy), 0, buy).orders
        if o.request.contract.right == "C"
    )
    assert growth.symbol == "AMZN" and growth.expiry > first.expiry


def test_an_empty_leap_fund_buys_nothing(bundled):
    buy = action("buy_leap", "COM")
    part = protect.buy_leap(context(bundled, family({"COM": 300_000}), buy), 0, buy)
    assert part.orders == [] and [r.reason for r in part.rejections] == ["no-leap-funds"]


@pytest.mark.parametrize("mode", ["kill", "safe"])
def test_a_leap_purchase_adds_risk_and_waits_out_a_halt(bundled, mode):
    buy = action("buy_leap", "COM")
    reviewed, p = cycle_plan(bundled, _com_with_fund(40_000), buy, mode=mode)
    assert not reviewed.verdicts[0].approved and p.orders == ()


RUNG = option("AAPL", date(2024, 9, 20), 190.0, "C")  # three months left, in the money
RUNG_KEY = "COM/AAPL/call/190/2024-09-20/long"


@pytest.mark.parametrize(("mode", "rolled"), [("kill", False), ("safe", True)])
def test_the_kill_switch_refuses_a_leap_roll_and_safe_mode_lets_it_through(bundled, mode, rolled):
    """A roll opens a new rung: the kill switch halts it; SAFE holds back new risk only."""
    held = Holding("COM", RUNG, 3, 8.0, "leap", date(2023, 9, 1))
    state = replace(family({"COM": 300_000}), holdings={("COM", RUNG.key): held})
    roll = action("roll_leap", "COM", position=RUNG_KEY, why="time")
    reviewed, p = cycle_plan(bundled, state, roll, mode=mode, by_key={RUNG_KEY: held})
    assert reviewed.verdicts[0].approved is rolled
    if not rolled:
        assert p.orders == ()
        return
    sell, buy = p.orders  # the rung sold, the next one bought with what the sale brings
    assert (sell.request.side, sell.request.quantity, sell.request.contract) == (
        OrderSide.SELL,
        3,
        RUNG,
    )
    assert buy.request.side is OrderSide.BUY and buy.request.contract.expiry > RUNG.expiry
    assert sell.funding == buy.funding == LEAP and not p.rejections


def test_a_roll_of_what_is_not_a_held_leap_is_refused(bundled):
    income = Holding("COM", RUNG, -3, 8.0, "income", date(2024, 6, 3))  # a short call
    roll = action("roll_leap", "COM", position=RUNG_KEY, why="time")
    ctx = context(bundled, family({"COM": 300_000}), roll, by_key={RUNG_KEY: income})
    part = protect.roll_leap(ctx, 0, roll)
    assert part.orders == [] and [r.reason for r in part.rejections] == ["no-position"]


def test_a_rung_without_a_price_is_not_sold(bundled):
    held = Holding("COM", RUNG, 3, 8.0, "leap", date(2023, 9, 1))
    roll = action("roll_leap", "COM", position=RUNG_KEY, why="time")
    ctx = context(bundled, family({"COM": 300_000}), roll, by_key={RUNG_KEY: held}, market=view({}))
    part = protect.roll_leap(ctx, 0, roll)
    assert part.orders == [] and [r.reason for r in part.rejections] == ["no-quote"]


def test_without_a_growth_strike_in_the_band_the_hedge_rung_is_still_bought(bundled):
    buy = action("buy_leap", "COM")
    market = view({"SPY": 545.0})  # no price for the growth tickers
    part = protect.buy_leap(context(bundled, _com_with_fund(40_000), buy, market=market), 0, buy)
    assert set(_by_symbol(part.orders)) == {"SPY"}
    assert [r.reason for r in part.rejections] == ["none-in-band"]
