"""Closed trades from fills: expiries, buy-backs, partial closes, assignment of shares that
came in kind, and positions a merge moved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.storage.readers import FillRow, LedgerOpRow
from scheduler.reports.trades import closed_trades


def _at(day: int, hour: int = 15) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def _fill(
    n,
    side,
    qty,
    price,
    day,
    *,
    account="REV",
    key="TSLA 2024-01-12 215P",
    origin="order",
    commission=0.0,
    stock=False,
):
    return FillRow(
        execution_id=f"x{n}",
        client_order_id=f"o{n}",
        account=account,
        contract_key="TSLA" if stock else key,
        symbol="TSLA",
        sec_type="STK" if stock else "OPT",
        right=None if stock else "P",
        strike=None if stock else 215.0,
        expiry=None if stock else "2024-01-12",
        multiplier=1 if stock else 100,
        side=side,
        quantity=qty,
        price=price,
        commission=commission,
        at=_at(day),
        origin=origin,
    )


def test_a_short_put_that_expires_earns_its_credit_less_commission():
    fills = [
        _fill(1, "SELL", 3, 1.35, 3, commission=1.95),
        _fill(2, "BUY", 3, 0.0, 12, origin="expiry"),
    ]
    (t,) = closed_trades(fills, [])
    assert (t.side, t.quantity, t.closed_by, t.instrument) == ("short", 3, "expiry", "put")
    assert t.pnl == pytest.approx(1.35 * 3 * 100 - 1.95)
    assert t.win


def test_a_short_put_bought_back_higher_is_a_loss_and_partial_closes_are_trades_of_their_own():
    fills = [
        _fill(1, "SELL", 4, 1.00, 3),
        _fill(2, "BUY", 1, 3.00, 4),
        _fill(3, "BUY", 3, 0.50, 5),
    ]
    first, second = closed_trades(fills, [])
    assert (first.quantity, first.pnl) == (1, pytest.approx(-200.0))
    assert (second.quantity, second.pnl) == (3, pytest.approx(150.0))
    assert not first.win and second.win


def test_a_close_larger_than_the_holding_opens_the_other_side():
    fills = [_fill(1, "BUY", 2, 1.0, 3), _fill(2, "SELL", 3, 2.0, 4), _fill(3, "BUY", 1, 1.5, 5)]
    a, b = closed_trades(fills, [])
    assert (a.side, a.quantity, a.pnl) == ("long", 2, pytest.approx(200.0))
    assert (b.side, b.quantity, b.pnl) == ("short", 1, pytest.approx(50.0))


def test_shares_brought_in_kind_close_against_their_deposit_price():
    deposit = LedgerOpRow(
        "seed:COM:TSLA",
        "DepositShares",
        _at(2, 9),
        {
            "account": "COM",
            "contract": {"symbol": "TSLA", "sec_type": "STK"},
            "shares": 100,
            "price": 200.0,
        },
    )
    sold = _fill(1, "SELL", 100, 210.0, 12, account="COM", origin="assignment", stock=True)
    (t,) = closed_trades([sold], [deposit])
    assert (t.account, t.instrument, t.entry_price, t.pnl) == (
        "COM",
        "stock",
        200.0,
        pytest.approx(1000.0),
    )


def test_a_merge_moves_open_lots_to_the_target():
    fills = [
        _fill(1, "SELL", 1, 2.0, 3, account="MINI-1"),
        _fill(2, "BUY", 1, 0.0, 12, account="COM", origin="expiry"),
    ]
    merge = LedgerOpRow(
        "merge:MINI-1",
        "MergeAccount",
        _at(5),
        {"source": "MINI-1", "target": "COM", "source_equity": 1},
    )
    (t,) = closed_trades(fills, [merge])
    assert (t.account, t.pnl) == ("COM", pytest.approx(200.0))
