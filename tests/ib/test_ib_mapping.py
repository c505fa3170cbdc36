"""Unit tests of the pure translation between ALL-USE's broker types and the IB library's."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from adapters.ib import mapping as mp
from engine.execution.broker import OrderSide, OrderState
from engine.market.instruments import ContractSpec, SecType

from .conftest import call, order, put

AT = datetime(2025, 1, 6, 15, tzinfo=UTC)


def test_account_map_translates_both_ways_and_leaves_unmapped_codes_visible():
    amap = mp.AccountMap(codes={"GEN": "DU1", "REV": "DU2", "COM": "DU3", "MINI-1": "DU4"})
    assert amap.to_ib("MINI-1") == "DU4"
    assert amap.from_ib("DU2") == "REV"
    assert amap.from_ib("DU9") == "DU9"
    assert amap.unmapped(["DU1", "DU9"]) == ["DU9"]
    assert amap.missing(["DU1"]) == ["COM", "MINI-1", "REV"]


def test_account_map_refuses_unknown_sub_accounts_and_shared_codes():
    with pytest.raises(ValidationError, match="not ALL-USE sub-accounts"):
        mp.AccountMap(codes={"GENERAL": "DU1"})
    with pytest.raises(ValidationError, match="same IB account code"):
        mp.AccountMap(codes={"GEN": "DU1", "REV": "DU1"})
    with pytest.raises(mp.UnknownSubAccount):
        mp.AccountMap(codes={"GEN": "DU1"}).to_ib("COM")


def test_paper_accounts_start_with_d():
    assert mp.is_paper_account("DU1234567") and mp.is_paper_account("DF12345")
    assert not mp.is_paper_account("U1234567")


def test_stock_and_equity_option_route_smart():
    stk = mp.to_ib_contract(ContractSpec(sec_type=SecType.STOCK, symbol="AAPL"))
    opt = mp.to_ib_contract(put("AAPL", "20250117", 195.0))
    assert (stk.secType, stk.exchange) == ("STK", "SMART")
    assert (
        opt.secType,
        opt.exchange,
        opt.lastTradeDateOrContractMonth,
        opt.strike,
        opt.right,
        opt.multiplier,
    ) == ("OPT", "SMART", "20250117", 195.0, "P", "100")


@pytest.mark.parametrize(
    "expiry, cls",
    [("20250620", "SPX"), ("20250627", "SPXW"), ("20250117", "SPX"), ("20250110", "SPXW")],
)
def test_spx_index_options_go_to_cboe_with_the_right_trading_class(expiry, cls):
    c = mp.to_ib_contract(put("SPX", expiry, 5000.0, SecType.INDEX_OPTION))
    assert (c.exchange, c.tradingClass) == ("CBOE", cls)


def test_vix_options_go_to_cboe_vix_class():
    c = mp.to_ib_contract(call("VIX", "20250716", 25.0, SecType.VIX_OPTION))
    assert (c.symbol, c.exchange, c.tradingClass) == ("VIX", "CBOE", "VIX")


@pytest.mark.parametrize(
    "spec",
    [
        ContractSpec(
            sec_type=SecType.STOCK, symbol="MSFT", multiplier=1
        ),  # as engine.execution.ledger.stock makes it
        put("AAPL", "20250117", 195.0),
        call("VIX", "20250716", 25.0, SecType.VIX_OPTION),
        put("SPX", "20250627", 5000.0, SecType.INDEX_OPTION),
    ],
)
def test_contract_round_trip(spec):
    assert mp.from_ib_contract(mp.to_ib_contract(spec)) == spec


def test_spxw_symbol_and_unsupported_instruments():
    c = mp.Contract(
        secType="OPT",
        symbol="SPXW",
        lastTradeDateOrContractMonth="20250627",
        strike=5000.0,
        right="P",
        multiplier="100",
    )
    assert mp.from_ib_contract(c).sec_type is SecType.INDEX_OPTION
    assert mp.from_ib_contract(mp.Contract(secType="FUT", symbol="ES")) is None


def test_order_carries_the_client_order_id_as_order_ref():
    o = mp.to_ib_order(
        order("d1:leg2", "GEN", put("AAPL", "20250117", 195.0), "SELL", 3, 1.25), "DU1"
    )
    assert (o.orderRef, o.account, o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.tif) == (
        "d1:leg2",
        "DU1",
        "SELL",
        3.0,
        "LMT",
        1.25,
        "DAY",
    )


def test_market_order_has_no_limit():
    o = mp.to_ib_order(order("d1:x", "GEN", put("AAPL", "20250117", 195.0), "BUY", 1, None), "DU1")
    assert o.orderType == "MKT" and o.lmtPrice != 1.0


@pytest.mark.parametrize(
    "status, filled, error, expected",
    [
        ("PendingSubmit", 0, None, OrderState.PENDING_SUBMIT),
        ("PreSubmitted", 0, None, OrderState.SUBMITTED),
        ("Submitted", 0, None, OrderState.SUBMITTED),
        ("Submitted", 2, None, OrderState.PARTIALLY_FILLED),
        ("PendingCancel", 0, None, OrderState.SUBMITTED),  # still live until IB confirms
        ("Filled", 5, None, OrderState.FILLED),
        ("Cancelled", 0, None, OrderState.CANCELLED),
        ("Cancelled", 0, 202, OrderState.CANCELLED),
        ("Cancelled", 0, 201, OrderState.REJECTED),
        ("Cancelled", 2, 201, OrderState.CANCELLED),  # something filled: not a rejection
        ("Inactive", 0, 201, OrderState.REJECTED),
        ("Inactive", 0, None, OrderState.INACTIVE),
        ("Cancelled", 0, 161, None),  # a refused cancel says nothing about the order
        ("Cancelled", 0, 100, None),  # pacing: IB dropped the message
    ],
)
def test_order_state_mapping(status, filled, error, expected):
    assert mp.order_state(status, filled, error) is expected


def test_error_classification():
    assert mp.is_pacing(100) and mp.is_pacing(420)
    assert mp.is_pacing(162, "Historical data request pacing violation")
    assert not mp.is_pacing(162, "HMDS query returned no data")
    assert mp.is_warning(2104) and mp.is_warning(399)
    assert mp.is_rejection(201) and mp.is_rejection(203)
    assert not mp.is_rejection(202) and not mp.is_rejection(1100) and not mp.is_rejection(161)


def test_status_reports_remaining_and_no_average_before_a_fill():
    st = mp.to_order_status("c", 0, OrderState.SUBMITTED, 0, 5, 0.0, "", AT)
    assert (st.broker_order_id, st.remaining, st.avg_fill_price) == ("", 5, None)
    st = mp.to_order_status("c", 77, OrderState.PARTIALLY_FILLED, 2, 5, 1.5, "", AT)
    assert (st.broker_order_id, st.filled, st.remaining, st.avg_fill_price) == ("77", 2, 3, 1.5)


def test_fill_from_execution_and_unknown_commission_is_zero():
    ex = mp.iblib.Execution(
        execId="e1",
        time=AT,
        acctNumber="DU1",
        side="SLD",
        shares=2.0,
        price=1.5,
        permId=42,
        orderRef="c",
    )
    f = mp.to_fill("c", "GEN", put("AAPL", "20250117", 195.0), ex, float("nan"))
    assert (f.side, f.quantity, f.price, f.commission, f.broker_order_id, f.at) == (
        OrderSide.SELL,
        2,
        1.5,
        0.0,
        "42",
        AT,
    )


def test_option_position_cost_is_per_share_premium():
    p = mp.to_position("GEN", put("AAPL", "20250117", 195.0), -2, 150.0)
    s = mp.to_position("COM", ContractSpec(sec_type=SecType.STOCK, symbol="MSFT"), 200, 410.0)
    assert (p.quantity, p.avg_cost) == (-2, 1.5)
    assert (s.quantity, s.avg_cost) == (200, 410.0)


def test_third_friday():
    assert mp.third_friday(2025, 1) == date(2025, 1, 17)
    assert mp.third_friday(2025, 6) == date(2025, 6, 20)
