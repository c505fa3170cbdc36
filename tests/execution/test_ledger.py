"""Ledger operations are balanced: the money sum is checked after every operation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.broker import ContractSpec, Fill, OrderSide, SecType
from engine.ledger import (
    LEAP,
    TAX,
    ApplyFill,
    Deposit,
    Fork,
    LedgerRefused,
    LedgerState,
    Merge,
    OpenAccount,
    Transfer,
    apply,
    apply_all,
    total,
)

D = date(2024, 1, 2)
AT = datetime(2024, 1, 2, 15, tzinfo=UTC)
PUT = ContractSpec(sec_type=SecType.OPTION, symbol="AAPL", expiry=date(2024, 1, 5), strike=180.0, right="P")


def _base() -> LedgerState:
    ops = [OpenAccount("o1", "GEN", "gen", D), OpenAccount("o2", "COM", "com", D), Deposit("d1", "GEN", 400_000_00),
           Deposit("d2", "COM", 300_000_00)]
    return apply_all(LedgerState(), ops)[0]


def _fill(n: int, side: OrderSide, qty: int, price: float) -> ApplyFill:
    return ApplyFill(f"x{n}", Fill(client_order_id="c", broker_order_id="b", execution_id=f"x{n}", account="GEN",
                                   contract=PUT, side=side, quantity=qty, price=price, commission=0.65 * qty, at=AT))


ops_strategy = st.lists(st.one_of(
    st.builds(lambda n, q, p: _fill(n, OrderSide.SELL, q, p), st.integers(0, 50), st.integers(1, 60), st.floats(0.01, 30)),
    st.builds(lambda n, q, p: _fill(n + 100, OrderSide.BUY, q, p), st.integers(0, 50), st.integers(1, 60), st.floats(0.0, 30)),
    st.builds(lambda n, a: Transfer(f"t{n}", "GEN", "GEN", a, dst_bucket=TAX), st.integers(0, 20), st.integers(1, 10**7)),
    st.builds(lambda n, a: Transfer(f"l{n}", "COM", "COM", a, dst_bucket=LEAP), st.integers(0, 20), st.integers(1, 10**7)),
    st.builds(lambda n, a: Fork(f"f{n}", "GEN", ((f"MINI-{n}", "mini", a),), D), st.integers(0, 5), st.integers(1, 10**7)),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops_strategy)
def test_money_sum_is_zero_after_every_operation(ops):
    state = _base()
    for op in ops:
        state = apply(state, op).state
        assert total(state) == 0


def test_a_repeated_operation_id_changes_nothing():
    state = apply(_base(), _fill(1, OrderSide.SELL, 2, 1.50)).state
    again = apply(state, _fill(1, OrderSide.SELL, 2, 1.50))
    assert not again.changed and again.state is state
    assert state.holdings[("GEN", PUT.key)].quantity == -2
    assert state.balance("GEN") == 400_000_00 + 300_00 - 130


def test_gen_fork_moves_100k_to_a_new_mini_and_lowers_the_parent_high_water_mark():
    state = _base()
    forked = apply(state, Fork("fork:GEN:1", "GEN", (("MINI-1", "mini", 100_000_00),), D)).state
    assert forked.balance("GEN") == 300_000_00 and forked.balance("MINI-1") == 100_000_00
    assert forked.accounts["GEN"].high_water_mark == state.accounts["GEN"].high_water_mark - 100_000_00
    assert forked.accounts["GEN"].forks == 1 and forked.accounts["MINI-1"].base_equity == 100_000_00
    assert total(forked) == 0


def test_merge_moves_every_bucket_and_position_into_com():
    state = apply(_base(), Fork("fork:GEN:1", "GEN", (("MINI-1", "mini", 100_000_00),), D)).state
    fill = ApplyFill("m1", Fill(client_order_id="c", broker_order_id="b", execution_id="m1", account="MINI-1", contract=PUT,
                                side=OrderSide.SELL, quantity=1, price=2.0, at=AT))
    state = apply(state, fill).state
    merged = apply(state, Merge("merge:MINI-1", "MINI-1", "COM", 100_200_00)).state
    assert merged.accounts["MINI-1"].status == "merged" and merged.balance("MINI-1") == 0
    assert merged.balance("COM") == 300_000_00 + 100_200_00
    assert merged.holdings[("COM", PUT.key)].quantity == -1 and not merged.holdings_of("MINI-1")
    assert total(merged) == 0


def test_rev_full_fork_opens_three_sleeves_40_30_30():
    state = apply_all(LedgerState(), [OpenAccount("o", "REV", "rev", D), Deposit("d", "REV", 900_000_00)])[0]
    children = (("GEN-1", "gen", 200_000_00), ("REV-1", "rev", 150_000_00), ("COM-1", "com", 150_000_00))
    forked = apply(state, Fork("fork:REV:1", "REV", children, D, "F1")).state
    assert [forked.balance(a) for a in ("GEN-1", "REV-1", "COM-1")] == [200_000_00, 150_000_00, 150_000_00]
    assert {forked.accounts[a].family for a in ("GEN-1", "REV-1", "COM-1")} == {"F1"}
    assert forked.balance("REV") == 400_000_00 and total(forked) == 0


def test_an_operation_on_an_unknown_account_is_refused():
    with pytest.raises(LedgerRefused):
        apply(_base(), Transfer("t", "GEN", "NOPE", 1))
