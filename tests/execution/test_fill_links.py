"""Broker-initiated fills (expiry, assignment) are linked in the audit log when they are
booked, to the decision that opened the settled position: a crash before the next decision
loses no link, and a crash between the link and the booking leaves no duplicate."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from adapters.storage.audit_store import AuditQuery
from adapters.storage.ledger_store import SqlLedgerStore
from engine.execution.broker import Fill, OrderRequest, OrderSide
from engine.execution.executor import origin_decisions
from engine.execution.ledger import (
    ApplyFill,
    Deposit,
    LedgerState,
    MergeAccount,
    OpenAccount,
    OrderRecord,
    apply_all,
)
from engine.market.instruments import ContractSpec, SecType
from scheduler.compose import open_paper_cycle
from tests.execution import helpers

FRIDAY = helpers.WEEK.replace(day=12)
AFTER_CLOSE = helpers.at(FRIDAY, 16, 45)


def _until_friday_morning(db_url):
    cycle, broker, store = helpers.open_cycle(db_url)
    for t in helpers.week_times():
        if t >= AFTER_CLOSE:
            break
        cycle.run(t)
    return cycle, broker, store


def _settle(cycle, broker) -> list[Fill]:
    """The venue reaches Friday's close: expiries settle (the broker acts, not us)."""
    before = {f.execution_id for f in broker.fills()}
    broker.sync(AFTER_CLOSE, cycle.market.snapshot(AFTER_CLOSE, cycle.symbols, cycle.params))
    settled = [f for f in broker.fills() if f.execution_id not in before]
    assert any(f.client_order_id == "assignment" for f in settled), (
        "the scripted week assigns a put on Friday"
    )
    return settled


def _fill_links(audit) -> Counter:
    """(decision id, execution id) -> how many fill links the audit log holds."""
    records = audit.iter_records(AuditQuery(record_type="link", limit=None))
    return Counter(
        (r.decision_id, r.link.data["execution_id"]) for r in records if r.link.kind == "fill"
    )


def _opener(store: SqlLedgerStore, f: Fill) -> str:
    """The decision of the order that sold the contract a settlement fill closes."""
    c = f.contract
    if c.sec_type is SecType.STOCK:
        sold = [
            o
            for o in store.state.orders.values()
            if o.filled
            and o.request.side is OrderSide.SELL
            and o.request.account == f.account
            and o.request.contract.symbol == c.symbol
            and o.request.contract.strike == f.price
            and o.request.contract.expiry == FRIDAY
        ]
    else:
        sold = [
            o
            for o in store.state.orders.values()
            if o.filled
            and o.request.account == f.account
            and o.request.contract.key == c.key
            and o.request.side is not f.side
        ]
    assert len({o.request.decision_id for o in sold}) == 1, (
        f"one opening decision for {f.execution_id}"
    )
    return sold[0].request.decision_id


def test_a_settlement_booked_just_before_a_crash_keeps_its_audit_link(db_url):
    cycle, broker, store = _until_friday_morning(db_url)
    settled = _settle(cycle, broker)
    booked = cycle.executor.sync_fills(AFTER_CLOSE)
    assert booked == len(settled)
    store.close()  # the process dies here: before any further decision

    cycle, broker, store = open_paper_cycle(db_url, helpers.market())
    audit = cycle.log.store
    links = _fill_links(audit)
    for f in settled:
        assert f.execution_id in store.state.applied
        assert links[(_opener(store, f), f.execution_id)] == 1
    assert audit.verify().ok

    report = cycle.run(AFTER_CLOSE)  # the restarted process: resume, then the next decision
    after = _fill_links(cycle.log.store)
    for f in settled:
        assert sum(n for (_, eid), n in after.items() if eid == f.execution_id) == 1, f.execution_id
    assert not [
        k for k in after if k[0] == report.decision_id and k[1] in {f.execution_id for f in settled}
    ]
    store.close()


class _CrashOnSettlement(SqlLedgerStore):
    """Dies (raises) when asked to book a settlement fill: after its link, before its booking."""

    def apply(self, ops, at):
        if any(
            isinstance(op, ApplyFill) and op.fill.client_order_id in ("expiry", "assignment")
            for op in ops
        ):
            raise SystemExit("killed between the audit link and the ledger booking")
        return super().apply(ops, at)


def test_a_crash_between_link_and_booking_links_each_fill_once(db_url):
    cycle, broker, store = _until_friday_morning(db_url)
    settled = _settle(cycle, broker)
    crashing = _CrashOnSettlement(store.engine)
    cycle.store = cycle.executor.store = crashing
    try:
        cycle.executor.sync_fills(AFTER_CLOSE)
    except SystemExit:
        pass
    linked_before = _fill_links(cycle.log.store)
    first = settled[0]
    assert first.execution_id not in SqlLedgerStore(store.engine).state.applied
    assert linked_before[(_opener(store, first), first.execution_id)] == 1  # linked, not booked
    store.close()

    cycle, broker, store = open_paper_cycle(db_url, helpers.market())
    cycle.run(AFTER_CLOSE)
    links = _fill_links(cycle.log.store)
    for f in settled:
        assert f.execution_id in store.state.applied
        assert links[(_opener(store, f), f.execution_id)] == 1
        assert sum(n for (_, eid), n in links.items() if eid == f.execution_id) == 1
    assert cycle.log.store.verify().ok
    store.close()


# --------------------------------------------------------------------------- origin_decisions

D = date(2024, 1, 8)
AT = datetime(2024, 1, 12, 21, 0, tzinfo=UTC)
PUT = ContractSpec(
    sec_type=SecType.OPTION, symbol="AAPL", expiry=date(2024, 1, 12), strike=180.0, right="P"
)


def _state_with_put(account: str = "GEN") -> LedgerState:
    req = OrderRequest(
        client_order_id="d-1:0:o0",
        decision_id="d-1",
        account=account,
        contract=PUT,
        side=OrderSide.SELL,
        quantity=2,
        limit_price=1.5,
    )
    other = req.model_copy(
        update={
            "client_order_id": "d-2:0:o0",
            "decision_id": "d-2",
            "contract": PUT.model_copy(update={"strike": 175.0}),
        }
    )
    state, _ = apply_all(
        LedgerState(), [OpenAccount("o", account, "gen", D), Deposit("d", account, 100_000_00)]
    )
    orders = {
        r.client_order_id: OrderRecord(r, 0, "open_short_put", "income", "cash", filled=2)
        for r in (req, other)
    }
    return LedgerState(
        accounts=state.accounts, balances=state.balances, orders=orders, applied=state.applied
    )


def _settlement(
    contract: ContractSpec, side: OrderSide, qty: int, price: float, account: str = "GEN"
) -> Fill:
    return Fill(
        client_order_id="assignment",
        broker_order_id="",
        execution_id=f"X:{contract.key}",
        account=account,
        contract=contract,
        side=side,
        quantity=qty,
        price=price,
        at=AT,
    )


def test_an_assignment_traces_to_the_decision_that_sold_the_put():
    state = _state_with_put()
    stock = ContractSpec(sec_type=SecType.STOCK, symbol="AAPL", multiplier=1)
    assert origin_decisions(state, _settlement(PUT, OrderSide.BUY, 2, 0.0)) == ("d-1",)
    assert origin_decisions(state, _settlement(stock, OrderSide.BUY, 200, 180.0)) == ("d-1",)
    assert (
        origin_decisions(state, _settlement(stock, OrderSide.BUY, 200, 170.0)) == ()
    )  # no put at that strike
    assert (
        origin_decisions(state, _settlement(stock, OrderSide.SELL, 200, 180.0)) == ()
    )  # calls, not puts
    assert origin_decisions(state, _settlement(PUT, OrderSide.BUY, 2, 0.0, account="REV")) == ()


def test_a_position_merged_into_com_traces_to_the_mini_decision():
    state = _state_with_put("MINI-1")
    state = apply_all(
        state,
        [
            OpenAccount("o2", "COM", "com", D),
            MergeAccount("merge:MINI-1", "MINI-1", "COM", 100_000_00),
        ],
    )[0]
    assert origin_decisions(state, _settlement(PUT, OrderSide.BUY, 2, 0.0, account="COM")) == (
        "d-1",
    )


def test_the_engine_reads_a_settlement_by_its_origin_not_its_client_order_id():
    state = _state_with_put()
    stock = ContractSpec(sec_type=SecType.STOCK, symbol="AAPL", multiplier=1)
    ib_style = _settlement(stock, OrderSide.BUY, 200, 180.0).model_copy(
        update={"client_order_id": "ib:0"}
    )
    assert ib_style.origin == "assignment" and origin_decisions(state, ib_style) == ("d-1",)
    bought = ib_style.model_copy(
        update={"origin": "order"}
    )  # shares bought by an order, not delivered
    assert origin_decisions(state, bought) == ()


def test_stored_paper_settlements_without_an_origin_load_with_it():
    stored = _settlement(PUT, OrderSide.BUY, 2, 0.0).model_dump(mode="json")
    for word in ("assignment", "expiry"):
        old = {k: v for k, v in stored.items() if k != "origin"} | {"client_order_id": word}
        assert Fill.model_validate(old).origin == word
    assert (
        Fill.model_validate(
            {k: v for k, v in stored.items() if k != "origin"} | {"client_order_id": "d-1:0:o0"}
        ).origin
        == "order"
    )
