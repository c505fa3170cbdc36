"""Ledger operations are balanced: the money sum is checked after every operation, in the pure
ledger and through the SQL store on SQLite and PostgreSQL (``backend_url``: a fresh database or
schema per test; PostgreSQL found by ``tests.postgres``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text

from adapters.storage.ledger_store import SqlLedgerStore
from engine.execution.broker import Fill, OrderSide
from engine.execution.ledger import (
    LEAP,
    TAX,
    ApplyFill,
    Deposit,
    FillCrossesZero,
    ForkAccount,
    LedgerRefused,
    LedgerState,
    MarkEquity,
    MergeAccount,
    OpenAccount,
    SetMode,
    Transfer,
    apply,
    apply_all,
    total,
)
from engine.market.instruments import ContractSpec, SecType

D = date(2024, 1, 2)
AT = datetime(2024, 1, 2, 15, tzinfo=UTC)
PUT = ContractSpec(
    sec_type=SecType.OPTION, symbol="AAPL", expiry=date(2024, 1, 5), strike=180.0, right="P"
)


BASE_OPS = (
    OpenAccount("o1", "GEN", "gen", D),
    OpenAccount("o2", "COM", "com", D),
    Deposit("d1", "GEN", 400_000_00),
    Deposit("d2", "COM", 300_000_00),
)
TABLES = (
    "ledger_op",
    "ledger_entry",
    "ledger_account",
    "ledger_position",
    "ledger_order",
    "ledger_fill",
    "ledger_equity",
    "ledger_mode",
    "ledger_lot",
    "ledger_realised",
    "ledger_account_mode",
    "ledger_flag",
)


def _base() -> LedgerState:
    return apply_all(LedgerState(), BASE_OPS)[0]


def _fill(n: int, side: OrderSide, qty: int, price: float) -> ApplyFill:
    return ApplyFill(
        f"x{n}",
        Fill(
            client_order_id="c",
            broker_order_id="b",
            execution_id=f"x{n}",
            account="GEN",
            contract=PUT,
            side=side,
            quantity=qty,
            price=price,
            commission=0.65 * qty,
            at=AT,
        ),
    )


ops_strategy = st.lists(
    st.one_of(
        st.builds(
            lambda n, q, p: _fill(n, OrderSide.SELL, q, p),
            st.integers(0, 50),
            st.integers(1, 60),
            st.floats(0.01, 30),
        ),
        st.builds(
            lambda n, q, p: _fill(n + 100, OrderSide.BUY, q, p),
            st.integers(0, 50),
            st.integers(1, 60),
            st.floats(0.0, 30),
        ),
        st.builds(
            lambda n, a: Transfer(f"t{n}", "GEN", "GEN", a, dst_bucket=TAX),
            st.integers(0, 20),
            st.integers(1, 10**7),
        ),
        st.builds(
            lambda n, a: Transfer(f"l{n}", "COM", "COM", a, dst_bucket=LEAP),
            st.integers(0, 20),
            st.integers(1, 10**7),
        ),
        st.builds(
            lambda n, a: ForkAccount(f"f{n}", "GEN", ((f"MINI-{n}", "mini", a),), D),
            st.integers(0, 5),
            st.integers(1, 10**7),
        ),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops_strategy)
def test_money_sum_is_zero_after_every_operation(ops):
    state = _base()
    for op in ops:
        try:
            state = apply(state, op).state
        except FillCrossesZero:  # a fill of ours through zero is refused (issue 13), not booked
            assert _crosses(state, op)
            continue
        assert total(state) == 0


def _crosses(state: LedgerState, op) -> bool:
    held = state.holdings.get((op.fill.account, op.fill.contract.key))
    before = held.quantity if held else 0
    after = before + (op.fill.quantity if op.fill.side is OrderSide.BUY else -op.fill.quantity)
    return before * after < 0


# --------------------------------------------------------------------------- the SQL store


@pytest.fixture
def store(backend_url):
    s = SqlLedgerStore.open(backend_url)
    s.apply(BASE_OPS, AT)
    yield s
    s.close()


def _reloaded(store: SqlLedgerStore) -> LedgerState:
    """The state as a new process would load it from the database."""
    return SqlLedgerStore(store.engine).state


def _count(store: SqlLedgerStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _clear(store: SqlLedgerStore) -> None:
    """An empty ledger again (the ledger's hash chain too, around its append-only trigger)."""
    with store.engine.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DELETE FROM {t}"))
        if store.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS ledger_link_no_delete"))
        else:
            conn.execute(text("ALTER TABLE ledger_link DISABLE TRIGGER USER"))
        conn.execute(text("DELETE FROM ledger_link"))
    store.reload()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops_strategy)
def test_the_stored_ledger_sums_to_zero_after_every_operation_and_reloads_identically(store, ops):
    _clear(store)
    store.apply(BASE_OPS, AT)
    for op in ops:
        before = store.state
        try:
            state = store.apply([op], AT)
        except FillCrossesZero:  # refused whole: nothing written, the state unchanged
            assert store.state is before and _reloaded(store) == before
            continue
        assert total(state) == 0 and store.entries_total() == 0
    assert _reloaded(store) == store.state


def test_a_repeated_operation_id_changes_nothing(store):
    store.apply([_fill(1, OrderSide.SELL, 2, 1.50)], AT)
    ops_before = _count(store, "ledger_op")
    again = SqlLedgerStore(store.engine)  # a restarted process books the same execution again
    assert again.apply([_fill(1, OrderSide.SELL, 2, 1.50)], AT) is again.state
    assert _count(store, "ledger_op") == ops_before and _count(store, "ledger_fill") == 1
    state = _reloaded(store)
    assert state.holdings[("GEN", PUT.key)].quantity == -2
    assert state.balance("GEN") == 400_000_00 + 300_00 - 130


def test_gen_fork_moves_100k_to_a_new_mini_and_lowers_the_parent_high_water_mark(store):
    before = store.state
    store.apply([ForkAccount("fork:GEN:1", "GEN", (("MINI-1", "mini", 100_000_00),), D)], AT)
    forked = _reloaded(store)
    assert forked == store.state
    assert forked.balance("GEN") == 300_000_00 and forked.balance("MINI-1") == 100_000_00
    assert (
        forked.accounts["GEN"].high_water_mark
        == before.accounts["GEN"].high_water_mark - 100_000_00
    )
    assert forked.accounts["GEN"].forks == 1 and forked.accounts["MINI-1"].base_equity == 100_000_00
    assert total(forked) == 0 and store.entries_total() == 0


def test_merge_moves_every_bucket_and_position_into_com(store):
    store.apply([ForkAccount("fork:GEN:1", "GEN", (("MINI-1", "mini", 100_000_00),), D)], AT)
    fill = ApplyFill(
        "m1",
        Fill(
            client_order_id="c",
            broker_order_id="b",
            execution_id="m1",
            account="MINI-1",
            contract=PUT,
            side=OrderSide.SELL,
            quantity=1,
            price=2.0,
            at=AT,
        ),
    )
    store.apply([fill], AT)
    store.apply([MergeAccount("merge:MINI-1", "MINI-1", "COM", 100_200_00)], AT)
    merged = _reloaded(store)
    assert merged == store.state
    assert merged.accounts["MINI-1"].status == "merged" and merged.balance("MINI-1") == 0
    assert merged.balance("COM") == 300_000_00 + 100_200_00
    assert merged.holdings[("COM", PUT.key)].quantity == -1 and not merged.holdings_of("MINI-1")
    assert total(merged) == 0 and store.entries_total() == 0


def test_rev_full_fork_opens_three_sleeves_40_30_30(store):
    store.apply([OpenAccount("o3", "REV", "rev", D), Deposit("d3", "REV", 900_000_00)], AT)
    children = (
        ("GEN-1", "gen", 200_000_00),
        ("REV-1", "rev", 150_000_00),
        ("COM-1", "com", 150_000_00),
    )
    store.apply([ForkAccount("fork:REV:1", "REV", children, D, "F1")], AT)
    forked = _reloaded(store)
    assert forked == store.state
    assert [forked.balance(a) for a in ("GEN-1", "REV-1", "COM-1")] == [
        200_000_00,
        150_000_00,
        150_000_00,
    ]
    assert {forked.accounts[a].family for a in ("GEN-1", "REV-1", "COM-1")} == {"F1"}
    assert forked.balance("REV") == 400_000_00 and total(forked) == 0


def test_a_refused_operation_writes_nothing_of_its_batch(store):
    before, ops_before = store.state, _count(store, "ledger_op")
    with pytest.raises(LedgerRefused):
        store.apply([Transfer("t1", "GEN", "COM", 5_00), Transfer("t2", "GEN", "NOPE", 1)], AT)
    assert store.state is before and _count(store, "ledger_op") == ops_before
    assert _reloaded(store) == before


def test_mode_latch_and_equity_history_survive_a_restart(store):
    store.apply(
        [
            MarkEquity("mark:GEN:1", "GEN", 401_000_00),
            SetMode("mode:d-1:0", "kill", "vix_kill", True),
        ],
        AT,
    )
    state = _reloaded(store)
    assert (state.mode, state.mode_reason, state.latched) == ("kill", "vix_kill", True)
    assert state.accounts["GEN"].high_water_mark == 401_000_00
    assert store.equity_history("GEN") == [(AT.isoformat(), 401_000_00, 401_000_00)]


def test_loading_reads_one_committed_state_while_another_process_writes(store, backend_url):
    """A loader must never see half of a concurrent commit (on PostgreSQL the default READ
    COMMITTED gives every SELECT its own snapshot; the store reads at REPEATABLE READ)."""
    before = store.state
    writer = SqlLedgerStore.open(backend_url)
    written = []

    def commit_in_between(conn, cursor, statement, *_):
        if not written and "FROM ledger_account" in statement:
            written.append(writer.apply([Deposit("d-late", "GEN", 5_00)], AT))

    event.listen(store.engine, "after_cursor_execute", commit_in_between)
    try:
        loaded = store.reload()
    finally:
        event.remove(store.engine, "after_cursor_execute", commit_in_between)
        writer.close()
    assert written, "the concurrent commit happened during the load"
    assert loaded == before  # all of the load from the snapshot before the commit
    assert _reloaded(store) == written[0]  # and the next load sees all of it
