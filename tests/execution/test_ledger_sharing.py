"""Ledger states share what an operation leaves unchanged (issue 18): an operation that does
not touch the orders hands the same orders mapping on, and the open orders each state reports
are a fresh scan's, whatever mix of operations came before."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.broker import OrderRequest, OrderSide, OrderState, OrderStatus
from engine.execution.ledger import (
    Deposit,
    LedgerState,
    OpenAccount,
    OrderRecord,
    RecordIntent,
    UpdateOrder,
    apply,
    apply_all,
)
from engine.market.instruments import ContractSpec, SecType

D = date(2024, 1, 2)
AT = datetime(2024, 1, 3, 15, tzinfo=UTC)
PUT = ContractSpec(sec_type=SecType.OPTION, symbol="SPY", expiry=D, strike=400.0, right="P")
STATES = [
    OrderState.SUBMITTED,
    OrderState.PARTIALLY_FILLED,
    OrderState.FILLED,
    OrderState.CANCELLED,
]


def _base() -> LedgerState:
    return apply_all(
        LedgerState(), [OpenAccount("o", "GEN", "gen", D), Deposit("d", "GEN", 10**8)]
    )[0]


def _intent(n: int) -> RecordIntent:
    request = OrderRequest(
        client_order_id=f"c{n}",
        decision_id="d-x",
        account="GEN",
        contract=PUT,
        side=OrderSide.SELL,
        quantity=5,
        limit_price=1.0,
    )
    return RecordIntent(f"i{n}", OrderRecord(request, n, "open_short_put", "income", "cash"))


def _update(n: int, k: int, state: OrderState) -> UpdateOrder:
    filled = {OrderState.PARTIALLY_FILLED: 2, OrderState.FILLED: 5}.get(state, 0)
    status = OrderStatus(
        client_order_id=f"c{n}",
        broker_order_id=f"b{n}",
        state=state,
        filled=filled,
        remaining=5 - filled,
        at=AT,
    )
    return UpdateOrder(f"u{n}.{k}", status)


def test_an_operation_that_leaves_the_orders_alone_hands_the_same_mapping_on():
    state = apply(_base(), _intent(0)).state
    after = apply(state, Deposit("d2", "GEN", 100)).state
    assert after.orders is state.orders and after.holdings is state.holdings
    assert after.balances is not state.balances  # what it changed is new
    assert after.open_orders() == state.open_orders()


steps = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(STATES + [None]), st.integers(0, 3)), max_size=40
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_the_open_orders_of_every_state_are_a_fresh_scans(plan):
    state = _base()
    for k, (n, status, deposit) in enumerate(plan):
        if f"c{n}" not in state.orders:
            op = _intent(n)
        elif status is None:
            op = Deposit(f"d{k}", "GEN", deposit + 1)
        else:
            op = _update(n, k, status)
        state = apply(state, op).state
        fresh = tuple(o for _, o in sorted(dict(state.orders).items()) if not o.state.is_final)
        assert state.open_orders() == fresh
        assert state.open_orders("GEN") == fresh


def _definition(old, new) -> list:
    return sorted(k for k in set(old) | set(new) if old.get(k) is not new.get(k))


batches = st.lists(
    st.tuples(
        st.lists(
            st.tuples(
                st.integers(0, 5),
                st.sampled_from([*STATES, "replace", None]),
                st.integers(0, 3),
            ),
            min_size=1,
            max_size=4,
        ),
        st.booleans(),  # whether the state's open orders are asked for after the batch
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(batches)
def test_what_changed_between_two_states_orders_is_the_definitions(plan):
    """Batches of operations (one store write each), the open orders asked for after some:
    the ledger store's ``_changed`` (the rows a write touches) is the definition's, and every
    state's open orders a fresh scan's, however its orders were made."""
    from adapters.storage.ledger_store import _changed
    from engine.execution.ledger import ReplaceOrder

    state, k = _base(), 0
    for batch, ask in plan:
        before = state
        for n, what, deposit in batch:
            k += 1
            if f"c{n}" not in state.orders:
                op = _intent(n)
            elif what is None:
                op = Deposit(f"d{k}", "GEN", deposit + 1)
            elif what == "replace":
                op = ReplaceOrder(f"r{k}", f"c{n}", 1.0 + deposit / 100)
            else:
                op = _update(n, k, what)
            state = apply(state, op).state
        assert _changed(before.orders, state.orders) == _definition(before.orders, state.orders)
        if ask:
            fresh = tuple(o for _, o in sorted(dict(state.orders).items()) if not o.state.is_final)
            assert state.open_orders() == fresh
