"""What the live pipeline needs from the IB adapter: each sub-account's cash, shares valued
one unit each, and a cancel-replace step on an order that has just filled."""

from __future__ import annotations

from collections import namedtuple

from adapters.ib import mapping as mp
from engine.execution.broker import OrderState
from engine.market.instruments import SecType

from .conftest import order, put, settled

Row = namedtuple("Row", "account tag value currency modelCode")


def test_cash_balances_are_ibs_total_cash_per_mapped_sub_account(make_broker, stub):
    stub.set_account_value("DU111", "TotalCashValue", "400000.00")
    stub.set_account_value("DU333", "TotalCashValue", "-1250.50")  # margin debit: reported as is
    broker, _ = make_broker()
    # DU222 and DU444 report only NetLiquidation: absent, for the caller to refuse
    assert broker.cash_balances() == {"GEN": 400_000.0, "COM": -1250.5}


def test_cash_value_prefers_usd_then_the_base_currency_and_ignores_other_tags():
    rows = [
        Row("DU1", "NetLiquidation", "9", "USD", ""),
        Row("DU1", "TotalCashValue", "7.5", "BASE", ""),
    ]
    assert mp.cash_value(rows) == 7.5
    assert mp.cash_value(rows + [Row("DU1", "TotalCashValue", "8", "USD", "")]) == 8.0
    assert mp.cash_value([Row("DU1", "TotalCashValue", "n/a", "USD", "")]) is None
    assert (
        mp.cash_value([Row("DU1", "TotalCashValue", "1.7976931348623157E308", "USD", "")]) is None
    )
    assert mp.cash_value(rows[:1]) is None


def test_stock_positions_from_ib_are_one_unit_per_share(make_broker):
    broker, _ = make_broker()
    msft = next(p for p in broker.positions() if p.contract.symbol == "MSFT")
    assert (msft.account, msft.contract.sec_type, msft.contract.multiplier) == (
        "COM",
        SecType.STOCK,
        1,
    )
    assert (msft.quantity, msft.avg_cost) == (200, 410.0)


def test_replacing_an_order_that_has_just_filled_returns_its_final_state(make_broker, stub):
    broker, rec = make_broker()
    first = broker.submit(order("r:1", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 0.9))
    assert settled(rec, first.client_order_id)

    moved = broker.replace("r:1", 0.85)  # the executor's next ladder step, a moment too late

    assert moved.state is OrderState.FILLED and moved.filled == 1
    assert (
        stub.order("r:1").limit == 0.9 and stub.count_requests(3) == 1
    )  # no modification was sent
