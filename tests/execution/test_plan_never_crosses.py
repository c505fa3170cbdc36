"""The planner nets planned quantities per position (issue 13): over random rule firings on
random books (positions both ways, orders already working both ways), no plan takes a
position through zero and no close orders more than is open - with arbitration and without
it (the planner's own netting must hold alone). And the ledger refuses a fill that would
cross zero."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.market_data.facts_market import FactsMarketData
from engine.execution import planner
from engine.execution.arbitration import arbitrate
from engine.execution.broker import Fill, OrderRequest, OrderSide, OrderState, OrderStatus
from engine.execution.ledger import (
    ApplyFill,
    Deposit,
    FillCrossesZero,
    LedgerState,
    OpenAccount,
    OrderRecord,
    RecordIntent,
    UpdateOrder,
    apply,
    apply_all,
    stock,
)
from engine.execution.ledger_view import ledger_facts
from engine.execution.plan import option
from engine.execution.risk import Limits
from engine.facts.load import load_facts_text
from engine.market.quotes import MarketView
from engine.records.decision import Action, ConstitutionRef, Decision
from tests.bundled_params import PARAMS

AT = datetime.fromisoformat("2026-11-19T10:15:00-05:00")  # Thursday, in Gen's entry window
FACTS = """
as_of: 2026-11-19T10:15:00-05:00
market:
  vix: 18.4
  underlyings:
    AAPL: {price: 228.5, atr5: 3.1}
    MSFT: {price: 415.2, atr5: 6.0}
accounts: []
"""
ACCOUNTS = ("GEN", "REV")
KINDS = ("close_position", "roll_position", "release_hedge", "open_short_put", "open_covered_call")
RULES = (  # listed in v1.3's precedence, and one no class lists
    ("protocol.l3", 10),
    ("friday.pin_risk", 41),
    ("roll.l2", 21),
    ("hedge.release_profit", 50),
    ("cc.profit_take", 45),
    ("entry.csp.gen", 70),
    ("custom.rule", 5),
)


@cache
def _view() -> MarketView:
    market = FactsMarketData(load_facts_text(FACTS))
    return MarketView(market.snapshot(AT, ["AAPL", "MSFT"], PARAMS))


@cache
def _contracts() -> tuple:
    """Listed puts and calls near the money (the planner's own picks land among them), plus
    the stock."""
    view, out = _view(), []
    for symbol in ("AAPL", "MSFT"):
        chain = view.chain(symbol)
        expiry = min(chain.expiries)
        spot = view.spot(symbol)
        strikes = sorted({float(k) for k in chain.strike}, key=lambda k: abs(k - spot))[:3]
        out += [option(symbol, expiry, k, r) for k in strikes for r in ("P", "C")]
        out.append(stock(symbol))
    return tuple(out)


def _book(holdings, working) -> LedgerState:
    ops = []
    for a in ACCOUNTS:
        ops += [
            OpenAccount(f"open:{a}", a, a.lower(), AT.date()),
            Deposit(f"dep:{a}", a, 50_000_000_00),
        ]
    state, _ = apply_all(LedgerState(), ops)
    for n, (account, c, qty) in enumerate(holdings):
        if c.sec_type.value == "STK" and qty < 0:
            qty = -qty  # ALL-USE never holds short stock
        side = OrderSide.BUY if qty > 0 else OrderSide.SELL
        fill = Fill(
            client_order_id=f"seed:{n}",
            broker_order_id="b",
            execution_id=f"seed-x{n}",
            account=account,
            contract=c,
            side=side,
            quantity=abs(qty),
            price=1.0,
            at=AT,
            origin="assignment",  # a settlement: books whatever it says
        )
        state = apply(state, ApplyFill(fill.execution_id, fill)).state
    for n, (account, c, side, qty, filled) in enumerate(working):
        request = OrderRequest(
            client_order_id=f"w:{n}",
            decision_id="d-before",
            account=account,
            contract=c,
            side=side,
            quantity=qty,
            limit_price=1.0,
        )
        record = OrderRecord(request, 0, "close_position", "income", "cash")
        status = OrderStatus(
            client_order_id=request.client_order_id,
            broker_order_id="b",
            state=OrderState.PARTIALLY_FILLED if filled else OrderState.SUBMITTED,
            filled=min(filled, qty - 1),
            remaining=qty - min(filled, qty - 1),
            at=AT,
        )
        state, _ = apply_all(state, [RecordIntent(f"i:{n}", record), UpdateOrder(f"u:{n}", status)])
    return state


contracts = st.sampled_from(range(len(_contracts())))
holdings_st = st.lists(
    st.tuples(st.sampled_from(ACCOUNTS), contracts, st.integers(-30, 30).filter(bool)),
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
)
working_st = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        contracts,
        st.sampled_from(list(OrderSide)),
        st.integers(1, 40),
        st.integers(0, 5),
    ),
    max_size=6,
)
firing_st = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.sampled_from(RULES)),
    min_size=1,
    max_size=12,
)


def _firings(book: LedgerState, draws, view: MarketView) -> tuple[Decision, dict]:
    lf = ledger_facts(book, view)
    keys = sorted(lf.by_key)
    actions = []
    for kind, pick, (rule, salience) in draws:
        account = ACCOUNTS[pick % len(ACCOUNTS)]
        if kind == "open_short_put":
            symbol, position = ("AAPL", "MSFT")[pick % 2], None
        elif not keys:
            continue
        else:
            position = keys[pick % len(keys)]
            account, symbol = lf.by_key[position].account, lf.by_key[position].contract.symbol
        actions.append(
            Action(
                kind=kind,
                account=account,
                symbol=symbol,
                position=position,
                rule=rule,
                clause="§6",
                salience=salience,
                params={
                    "delta": {"min": 0.40, "max": 0.45},
                    "dte": {"min": 0, "max": 1},
                    "urgency": "market" if pick % 3 == 0 else "limit",
                    "coverage": 1,
                },
                reason="random firing",
            )
        )
    decision = Decision(
        decision_id="d-random",
        as_of=AT.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={"accounts": [a.model_dump(mode="json") for a in lf.accounts]},
        derived={},
        fired=(),
        actions=tuple(actions),
    )
    return decision, lf.by_key


def _pending(book: LedgerState) -> dict:
    out: dict = {}
    for o in book.open_orders():
        key = (o.request.account, o.request.contract.key, o.request.side)
        out[key] = out.get(key, 0) + o.request.quantity - o.filled
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(holdings=holdings_st, working=working_st, draws=firing_st, arbitrated=st.booleans())
def test_no_plan_crosses_zero_or_closes_more_than_is_open(
    bundled, holdings, working, draws, arbitrated
):
    cs, view = _contracts(), _view()
    book = _book(
        [(a, cs[i], q) for a, i, q in holdings],
        [(a, cs[i], s, q, f) for a, i, s, q, f in working],
    )
    decision, by_key = _firings(book, draws, view)
    if arbitrated:
        decision = arbitrate(bundled.model, decision)
    plan = planner.plan(bundled.model, decision, book, view, Limits("active", 1.0), by_key)

    pending = _pending(book)
    planned: dict = {}
    for o in plan.orders:
        r = o.request
        key = (r.account, r.contract.key, r.side)
        planned[key] = planned.get(key, 0) + r.quantity
    held = {(h.account, h.key): h.quantity for h in book.holdings.values()}
    for account, key, _ in planned:
        h = held.get((account, key), 0)
        buys = pending.get((account, key, OrderSide.BUY), 0)
        sells = pending.get((account, key, OrderSide.SELL), 0)
        new_buys = planned.get((account, key, OrderSide.BUY), 0)
        new_sells = planned.get((account, key, OrderSide.SELL), 0)
        if h < 0:  # every working and planned buy filling leaves it at most flat
            assert new_buys == 0 or buys + new_buys <= -h, (account, key, h, buys, new_buys)
        elif h > 0:
            assert new_sells == 0 or sells + new_sells <= h, (account, key, h, sells, new_sells)
        else:  # nothing held: the plan never orders against what is working
            direction = buys - sells
            assert not (direction > 0 and new_sells) and not (direction < 0 and new_buys)
            assert not (new_buys and new_sells)
    for o in plan.orders:  # closes never exceed what is open
        if o.request.client_order_id.split(":")[2].startswith("c"):
            h = held.get((o.request.account, o.request.contract.key), 0)
            assert h != 0 and (o.request.side is OrderSide.BUY) == (h < 0)


def _closing_actions(position: str, account: str, symbol: str) -> tuple[Action, ...]:
    return tuple(
        Action(
            kind="close_position",
            account=account,
            symbol=symbol,
            position=position,
            rule=rule,
            clause="§6",
            salience=salience,
            params={"urgency": urgency, "why": rule},
            reason="test",
        )
        for rule, salience, urgency in (
            ("protocol.l3", 10, "market"),
            ("friday.pin_risk", 41, "limit"),
        )
    )


def test_two_closes_of_one_put_reaching_the_planner_order_it_closed_once(bundled):
    """Without arbitration (a decision recorded before it, or a future rule pair the
    precedence does not cover) the planner itself never closes more than is open."""
    cs, view = _contracts(), _view()
    put = cs[0]
    book = _book([("GEN", put, -2)], [])
    lf = ledger_facts(book, view)
    [key] = lf.by_key
    decision = Decision(
        decision_id="d-twice",
        as_of=AT.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={"accounts": [a.model_dump(mode="json") for a in lf.accounts]},
        derived={},
        fired=(),
        actions=_closing_actions(key, "GEN", put.symbol),
    )
    plan = planner.plan(bundled.model, decision, book, view, Limits("active", 1.0), lf.by_key)
    [order] = plan.orders
    assert order.request.side is OrderSide.BUY and order.request.quantity == 2
    assert [(r.action_index, r.reason) for r in plan.rejections] == [(1, "already-working")]


def test_a_close_counts_the_closing_order_already_working(bundled):
    cs, view = _contracts(), _view()
    put = cs[0]
    book = _book([("GEN", put, -5)], [("GEN", put, OrderSide.BUY, 3, 0)])
    lf = ledger_facts(book, view)
    [key] = lf.by_key
    decision = Decision(
        decision_id="d-rest",
        as_of=AT.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={"accounts": [a.model_dump(mode="json") for a in lf.accounts]},
        derived={},
        fired=(),
        actions=_closing_actions(key, "GEN", put.symbol)[:1],
    )
    plan = planner.plan(bundled.model, decision, book, view, Limits("active", 1.0), lf.by_key)
    assert [o.request.quantity for o in plan.orders] == [2]  # 5 short, 3 already being bought


def test_the_last_check_drops_a_whole_action_whose_order_would_cross_zero():
    """``never_crossing`` refuses what a handler got wrong: here a two-leg action whose
    second leg sells more than the long position holds."""
    from engine.execution.plan import PlannedOrder, never_crossing

    cs = _contracts()
    put, call = cs[0], cs[1]
    book = _book([("GEN", put, 2), ("GEN", call, -1)], [])

    def order(leg: str, c, side: OrderSide, qty: int, action: int) -> PlannedOrder:
        request = OrderRequest(
            client_order_id=f"d:{action}:{leg}",
            decision_id="d",
            account="GEN",
            contract=c,
            side=side,
            quantity=qty,
            limit_price=1.0,
        )
        return PlannedOrder(request, action, "roll_position", "income")

    fine = order("c0", put, OrderSide.SELL, 1, 0)
    bad = [order("c0", call, OrderSide.BUY, 1, 1), order("n0", put, OrderSide.SELL, 3, 1)]
    kept, refused = never_crossing(book, [fine, *bad])
    assert kept == (fine,)  # the bad action's first leg, fine on its own, goes with it
    [r] = refused
    assert (r.action_index, r.reason) == (1, "would-cross-zero")
    assert "at most 1 can still reduce" in r.detail
    # at the boundary: selling exactly what is held is allowed
    kept, refused = never_crossing(book, [order("c0", put, OrderSide.SELL, 2, 0)])
    assert len(kept) == 1 and refused == ()


@pytest.mark.parametrize("held, side, qty", [(-2, OrderSide.BUY, 3), (4, OrderSide.SELL, 5)])
def test_the_ledger_refuses_a_fill_of_ours_that_would_cross_zero(held, side, qty):
    put = _contracts()[0]
    book = _book([("GEN", put, held)], [])
    fill = Fill(
        client_order_id="d:0:c0",
        broker_order_id="b",
        execution_id="x-cross",
        account="GEN",
        contract=put,
        side=side,
        quantity=qty,
        price=1.0,
        at=AT,
    )
    with pytest.raises(FillCrossesZero, match="would take GEN's position from"):
        apply(book, ApplyFill(fill.execution_id, fill))
    # at the boundary the same fill of exactly what is held books and leaves it flat
    exact = fill.model_copy(update={"quantity": abs(held), "execution_id": "x-flat"})
    after = apply(book, ApplyFill(exact.execution_id, exact)).state
    assert ("GEN", put.key) not in after.holdings
