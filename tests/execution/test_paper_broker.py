"""PaperBroker: partial fills, the cancel-replace ladder, DAY orders on an early-close day,
expiry (worthless, assignment, called away)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from adapters.brokers.paper import PaperBroker, PaperCosts, _settlement_fills
from engine.execution.broker import OrderRequest, OrderSide, OrderState
from engine.execution.plan import ladder
from engine.market.instruments import ContractSpec, SecType
from tests.bundled_params import PARAMS
from tests.execution import helpers


def _listed_put(broker_market, at):
    snap = broker_market.snapshot(at, ["SPY"], PARAMS)
    chain = snap.chains["SPY"]
    i = int((abs(abs(chain.delta) - 0.3) + chain.is_call).argmin())  # the 30-delta put
    c = chain.contract(i)
    return (
        snap,
        ContractSpec(
            sec_type=SecType.OPTION, symbol="SPY", expiry=c.expiry, strike=c.strike, right="P"
        ),
        c,
    )


def _req(contract, qty, price, coid="d-t:0:o0"):
    return OrderRequest(
        client_order_id=coid,
        decision_id="d-t",
        account="GEN",
        contract=contract,
        side=OrderSide.SELL,
        quantity=qty,
        limit_price=price,
    )


def test_a_limit_at_mid_waits_and_the_ladder_fills_it_no_worse_than_the_limit(market):
    at = helpers.at(helpers.WEEK, 10)
    snap, contract, c = _listed_put(market, at)
    broker = PaperBroker(market)
    broker.sync(at, snap)
    steps = ladder(c.mid, OrderSide.SELL, 0.05)
    first = broker.submit(_req(contract, 1, steps[0]))
    assert first.state is OrderState.SUBMITTED and first.filled == 0
    for price in steps[1:]:
        status = broker.replace("d-t:0:o0", price)
    fill = broker.fills()[0]
    assert status.state is OrderState.FILLED and steps[-1] <= fill.price <= c.mid
    assert fill.commission == 1.00  # $0.65/contract, at least $1.00


def test_a_large_order_fills_partially_and_keeps_working(market):
    at = helpers.at(helpers.WEEK, 10)
    snap, contract, c = _listed_put(market, at)
    broker = PaperBroker(
        market, costs=PaperCosts(participation=1 / max(c.volume, 1))
    )  # one contract per pass
    broker.sync(at, snap)
    status = broker.submit(_req(contract, 3, round(c.bid, 2)))
    assert status.state is OrderState.PARTIALLY_FILLED and status.filled == 1
    broker.sync(at + timedelta(minutes=1), snap)
    assert broker.open_orders()[0].filled == 2


def test_day_orders_expire_at_an_early_close(market):
    day = date(2024, 11, 29)  # the day after Thanksgiving: NYSE closes at 13:00
    m = helpers.market(last=date(2024, 12, 31))
    at = helpers.at(day, 11)
    snap, contract, _ = _listed_put(m, at)
    broker = PaperBroker(m)
    broker.sync(at, snap)
    broker.submit(_req(contract, 1, 999.0))  # never fills
    broker.sync(helpers.at(day, 13, 1))
    assert not broker.open_orders() and broker.orders()[0].state is OrderState.CANCELLED


def test_expiry_worthless_assigned_and_called_away():
    close = datetime(2024, 1, 12, 21, 0)
    put = ContractSpec(
        sec_type=SecType.OPTION, symbol="MSFT", expiry=date(2024, 1, 12), strike=400.0, right="P"
    )
    call = put.model_copy(update={"right": "C"})
    otm = _settlement_fills("GEN", put, -2, 410.0, close)
    assert [(f.side, f.quantity, f.price) for f in otm] == [(OrderSide.BUY, 2, 0.0)]
    assigned = _settlement_fills("GEN", put, -2, 390.0, close)
    assert (
        assigned[1].contract.sec_type,
        assigned[1].side,
        assigned[1].quantity,
        assigned[1].price,
    ) == (SecType.STOCK, OrderSide.BUY, 200, 400.0)
    called = _settlement_fills("COM", call, -1, 420.0, close)
    assert (called[1].side, called[1].quantity, called[1].price) == (OrderSide.SELL, 100, 400.0)
    long_itm = _settlement_fills("COM", put, 3, 380.0, close)
    assert [(f.side, f.quantity, f.price) for f in long_itm] == [(OrderSide.SELL, 3, 20.0)]
