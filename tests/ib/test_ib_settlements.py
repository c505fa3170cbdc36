"""IB's assignments and expiries: executions no order stands behind (no orderRef, permId 0),
sent unasked. The adapter reports them as fills of origin ``assignment`` / ``expiry`` (the
shape the paper venue gives them), live and after a restart, and the executor links them to
the decision that opened the position and reports the Assignment week event."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.execution.broker import OrderSide
from engine.execution.events import WeekEvent
from engine.execution.executor import Executor, MemoryLedgerStore
from engine.execution.ledger import Deposit, OpenAccount
from engine.execution.plan import Plan, PlannedOrder
from engine.market.instruments import SecType
from engine.records.audit import AuditRecord, RunMode
from engine.records.log import InMemoryDecisionLog
from tests.bundled_params import ORDER_TERMS
from tests.scheduler.fake_cycle import decision_for

from .conftest import ACCOUNTS, order, put, settled


def _sell_put(broker, rec, stub, coid="d-1:0:o0", qty=2):
    status = broker.submit(order(coid, "GEN", put("AAPL", "20250110", 195.0), "SELL", qty, 1.50))
    assert settled(rec, status.client_order_id)
    return status


def _settlements(broker):
    return [f for f in broker.fills() if f.broker_initiated]


def _poll(predicate, timeout: float = 5.0) -> bool:
    """Poll the adapter (not inside Recorder.wait_for: its lock would block the adapter's loop)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_an_assignment_at_ib_is_reported_as_assignment_fills_live_and_after_a_restart(
    make_broker, stub
):
    broker, rec = make_broker()
    _sell_put(broker, rec, stub)
    stub.assign(ACCOUNTS["GEN"], "AAPL", "20250110", 195.0, "P", 2)
    assert _poll(lambda: len(_settlements(broker)) == 2)
    option, shares = sorted(
        _settlements(broker), key=lambda f: f.contract.sec_type is SecType.STOCK
    )
    assert (option.origin, option.client_order_id, option.account) == (
        "assignment",
        "assignment",
        "GEN",
    )
    assert (option.contract.key, option.side, option.quantity, option.price) == (
        "AAPL 2025-01-10 195P",
        OrderSide.BUY,
        2,
        0.0,
    )
    assert (shares.origin, shares.contract.key, shares.contract.multiplier) == (
        "assignment",
        "AAPL",
        1,
    )
    assert (shares.side, shares.quantity, shares.price, shares.account) == (
        OrderSide.BUY,
        200,
        195.0,
        "GEN",
    )
    assert [
        e.fill.execution_id for e in rec.events if e.kind == "fill" and e.fill.broker_initiated
    ] == [option.execution_id, shares.execution_id]  # announced once each
    # our own order's fill keeps its client order id and origin
    assert [f.origin for f in broker.fills() if f.client_order_id == "d-1:0:o0"] == ["order"]

    # a restarted adapter finds the same settlements among IB's executions
    again, _ = make_broker(client_id=12)
    assert sorted((f.execution_id, f.origin) for f in _settlements(again)) == sorted(
        (f.execution_id, f.origin) for f in (option, shares)
    )


def test_an_expiry_at_ib_is_an_expiry_fill(make_broker, stub):
    broker, rec = make_broker()
    _sell_put(broker, rec, stub)
    stub.expire(ACCOUNTS["GEN"], "AAPL", "20250110", 195.0, "P", 2)
    assert _poll(lambda: len(_settlements(broker)) == 1)
    [f] = _settlements(broker)
    assert (f.origin, f.client_order_id, f.contract.key, f.side, f.quantity, f.price) == (
        "expiry",
        "expiry",
        "AAPL 2025-01-10 195P",
        OrderSide.BUY,
        2,
        0.0,
    )


def test_the_adapter_routes_only_mapped_sub_accounts(make_broker):
    broker, _ = make_broker(connect=False)
    assert broker.routes("GEN") and broker.routes("MINI-1")
    assert not broker.routes("MINI-2")


def test_the_executor_links_an_ib_assignment_to_the_opening_decision_and_reports_the_assignment(
    make_broker, stub, clock
):
    constitution = load_constitution(bundled_path())
    at = datetime(2025, 1, 10, 21, 30, tzinfo=UTC)
    decision = decision_for(constitution, at)
    did = decision.decision_id
    log = InMemoryDecisionLog(RunMode.LIVE, FixedClock(at))
    store = MemoryLedgerStore()
    broker, rec = make_broker()
    executor = Executor(broker, log, store, **ORDER_TERMS)
    receipt = executor.record(decision, constitution.text)
    request = order(f"{did}:0:o0", "GEN", put("AAPL", "20250110", 195.0), "SELL", 2, 1.50)
    store.apply(
        [
            OpenAccount("open:GEN", "GEN", "gen", date(2025, 1, 6)),
            Deposit("deposit:GEN", "GEN", 100_000_00),
        ],
        at,
    )
    plan = Plan(orders=(PlannedOrder(request, 0, "open_short_put", "income", "cash", (1.50,)),))
    assert executor.execute(decision, receipt, plan, at).submitted == 1
    assert store.state.orders[request.client_order_id].filled == 2
    assert _poll(lambda: len(broker.fills()) == 1)
    stub.assign(ACCOUNTS["GEN"], "AAPL", "20250110", 195.0, "P", 2)
    assert _poll(lambda: len(_settlements(broker)) == 2)

    events: list[WeekEvent] = []
    executor.sync_fills(at, events)
    assert len(store.state.applied & {f.execution_id for f in broker.fills()}) == 3
    assert events == [WeekEvent.ASSIGNMENT]  # the shares delivered: the week's Assignment label
    state = store.state
    assert state.holdings[("GEN", "AAPL")].quantity == 200
    assert ("GEN", "AAPL 2025-01-10 195P") not in state.holdings
    links = [AuditRecord.from_row(r).link for r in log.rows if r.record_type == "link"]
    fills = [x for x in links if x.kind == "fill"]
    assert {x.decision_id for x in fills} == {
        did
    }  # all three traced to the decision that sold the put
    assert sorted(x.data["origin"] for x in fills) == ["assignment", "assignment", "order"]
    assert executor.sync_fills(at, events) == 0 and len(events) == 1  # booked once
