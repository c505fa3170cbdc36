"""Each injected gateway fault, with the real client over the socket."""

from __future__ import annotations

import pytest

from adapters.ib.broker import IBAccountMismatch, IBReadOnly, IBUnavailable
from constitution.errors import RetryError
from engine.execution.broker import OrderState
from tests.bundled_params import PARAMS

from .conftest import order, put, settled
from .tws_stub import OrderScript, TwsStub


def test_order_placed_before_a_drop_is_adopted_after_reconnect_never_placed_twice(
    make_broker, stub
):
    broker, rec = make_broker()
    stub.script("drop:1", OrderScript(action="drop"))
    req = order("drop:1", "GEN", put("AAPL", "20250117", 195.0), "SELL", 2, 1.4)

    first = broker.submit(req)  # IB has it; the acknowledgement is lost with the connection
    assert first.state is OrderState.PENDING_SUBMIT
    assert rec.wait_for(lambda ev: "reconnected" in [e.kind for e in ev])
    adopted = broker.status("drop:1")
    again = broker.submit(req)
    stub.fill("drop:1", 2, 1.4)

    assert adopted.state is OrderState.SUBMITTED and adopted.broker_order_id
    assert again.state is OrderState.SUBMITTED
    assert stub.placements("drop:1") == 1
    assert rec.wait_for(lambda ev: len([e for e in ev if e.kind == "fill"]) == 1)
    assert broker.status("drop:1").state is OrderState.FILLED
    assert rec.kinds().index("disconnected") < rec.kinds().index("reconnected")


def test_order_lost_in_the_drop_is_reported_inactive_not_assumed_placed(make_broker, stub):
    broker, rec = make_broker()
    stub.script("lose:1", OrderScript(action="lose"))
    broker.submit(order("lose:1", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 1.0))
    assert rec.wait_for(lambda ev: "reconnected" in [e.kind for e in ev])
    status = broker.status("lose:1")
    assert status.state is OrderState.INACTIVE
    assert "never reached IB" in status.reason


def test_fill_during_a_disconnect_is_recovered_once_by_reconciliation(make_broker, stub):
    broker, rec = make_broker(reconnect_initial=0.3)
    stub.script("gap:1", OrderScript(action="rest"))
    broker.submit(order("gap:1", "REV", put("NVDA", "20250117", 130.0), "SELL", 3, 1.1))
    stub.drop_connections()
    stub.fill("gap:1", 3, 1.1)  # executes while nobody is connected
    assert rec.wait_for(lambda ev: "reconnected" in [e.kind for e in ev])
    broker.reconcile()  # a second reconciliation must not duplicate the fill
    assert [f.quantity for f in rec.fills("gap:1")] == [3]
    assert broker.status("gap:1").state is OrderState.FILLED


def test_rejected_order_is_recorded_with_ibs_reason_and_the_run_continues(make_broker, stub):
    broker, rec = make_broker()
    reason = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION"
    stub.script("rej:1", OrderScript(action="reject", reason=reason))

    rejected = broker.submit(order("rej:1", "GEN", put("AAPL", "20250117", 205.0), "SELL", 50, 9.0))
    after = broker.submit(order("rej:2", "GEN", put("AAPL", "20250117", 185.0), "SELL", 1, 0.6))

    assert rejected.state is OrderState.REJECTED
    assert rejected.reason == reason
    assert after.state in (OrderState.SUBMITTED, OrderState.FILLED)
    assert settled(rec, "rej:2")
    assert "cancelled" not in rec.states("rej:1")  # never shown as a user cancel on the way
    assert broker.status("rej:1").state is OrderState.REJECTED


def test_partial_fills_add_up(make_broker, stub):
    broker, rec = make_broker()
    stub.script("part:1", OrderScript(action="fill", fills=(2, 1, 2), price=1.25))
    status = broker.submit(order("part:1", "REV", put("NVDA", "20250110", 135.0), "SELL", 5, 1.25))
    assert rec.wait_for(lambda ev: len([e for e in ev if e.kind == "fill"]) == 3)
    fills = rec.fills("part:1")
    assert sorted(f.quantity for f in fills) == [1, 2, 2]
    assert sum(f.quantity for f in fills) == 5
    assert len({f.execution_id for f in fills}) == 3
    assert settled(rec, "part:1")
    final = broker.status("part:1")
    assert status.state is not OrderState.REJECTED
    assert (final.state, final.filled, final.remaining) == (OrderState.FILLED, 5, 0)
    assert final.avg_fill_price == pytest.approx(1.25)


def test_partially_filled_order_reports_the_part_then_the_rest(make_broker, stub):
    broker, rec = make_broker()
    stub.script("part:2", OrderScript(action="rest"))
    broker.submit(order("part:2", "GEN", put("AAPL", "20250117", 195.0), "SELL", 4, 1.0))
    stub.fill("part:2", 1, 1.0)
    assert rec.wait_for(lambda ev: "partially_filled" in rec.states("part:2"))
    assert (broker.status("part:2").filled, broker.status("part:2").remaining) == (1, 3)
    stub.fill("part:2", 3, 1.2)
    assert rec.wait_for(lambda ev: "filled" in rec.states("part:2"))
    final = broker.status("part:2")
    assert (final.filled, final.remaining) == (4, 0)
    assert final.avg_fill_price == pytest.approx((1.0 + 3 * 1.2) / 4)


def test_pacing_violation_slows_down_instead_of_failing(make_broker, stub):
    broker, rec = make_broker()
    stub.script("pace:1", OrderScript(action="pace", pace_times=2))
    status = broker.submit(order("pace:1", "GEN", put("AAPL", "20250117", 195.0), "SELL", 1, 1.3))
    assert status.state in (OrderState.SUBMITTED, OrderState.FILLED)
    assert settled(rec, "pace:1")
    assert broker.session.pacing_waits == 2
    assert stub.order("pace:1").filled == 1  # exactly one order exists at IB


def test_slow_acknowledgement_leaves_the_order_pending_then_events_settle_it(make_broker, stub):
    broker, rec = make_broker(ack_timeout=0.3)
    stub.script("slow:1", OrderScript(action="fill", delay=1.0))
    status = broker.submit(order("slow:1", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 1.0))
    assert status.state is OrderState.PENDING_SUBMIT  # a timeout is not a fill
    assert rec.wait_for(lambda ev: "filled" in rec.states("slow:1"), timeout=5)
    assert broker.status("slow:1").state is OrderState.FILLED


def test_slow_answer_beyond_the_request_timeout_is_a_retry_error(make_broker, stub):
    broker, _ = make_broker(request_timeout=0.5)
    stub.faults.slow[61] = 2.0  # positions
    with pytest.raises(RetryError):
        broker.positions()


def test_stopped_gateway_is_reported_disconnected_and_orders_are_refused(make_broker, stub):
    broker, rec = make_broker(reconnect_attempts=3)
    assert broker.is_connected()
    stub.stop()
    assert rec.wait_for(lambda ev: "disconnected" in [e.kind for e in ev])
    assert broker.is_connected() is False  # -> facts market.broker_connected = false -> SAFE
    with pytest.raises(IBUnavailable):
        broker.submit(order("down:1", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 1.0))
    assert rec.wait_for(lambda ev: ev[-1].kind == "error")
    assert "gave up after 3 attempt(s)" in rec.events[-1].message
    assert broker.is_connected() is False


def test_gateway_restart_reconnects_with_backoff(make_broker, stub):
    broker, rec = make_broker()
    stub.stop()
    assert rec.wait_for(lambda ev: "disconnected" in [e.kind for e in ev])
    stub.start()  # same port
    assert rec.wait_for(lambda ev: "reconnected" in [e.kind for e in ev], timeout=8)
    assert broker.is_connected()


def test_unreachable_gateway_raises_a_retry_error_with_exit_code_3(make_broker, stub):
    port = stub.port
    stub.stop()
    with pytest.raises(IBUnavailable) as err:
        make_broker(port=port)
    assert err.value.exit_code == 3


def test_paper_mode_refuses_a_live_account():
    gw = TwsStub(accounts=("U1234567",))
    gw.start()
    from adapters.ib.broker import IBBroker, IBConfig

    broker = IBBroker(IBConfig(port=gw.port, client_id=3, connect_timeout=2))
    try:
        with pytest.raises(IBAccountMismatch):
            broker.connect()
        assert broker.is_connected() is False
    finally:
        broker.close()
        gw.close()


def test_read_only_mode_sends_no_order(make_broker, stub):
    broker, _ = make_broker(readonly=True)
    with pytest.raises(IBReadOnly):
        broker.submit(order("ro:1", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 1.0))
    assert stub.count_requests(3) == 0
    assert [p.account for p in broker.positions()] == ["COM"]


def test_stopped_gateway_reaches_the_facts_as_broker_connected_false(make_broker, stub):
    from datetime import UTC, datetime

    from engine.market.facts_builder import build_facts
    from engine.market.snapshot import MarketSnapshot, Quote

    broker, rec = make_broker(reconnect_attempts=1)
    stub.stop()
    assert rec.wait_for(lambda ev: "disconnected" in [e.kind for e in ev])
    at = datetime(2025, 1, 6, 15, tzinfo=UTC)
    snap = MarketSnapshot(as_of=at, vix=Quote("VIX", 16.0, at, 15.9, 16.1))
    facts = build_facts(snap, [], broker_connected=broker.is_connected(), params=PARAMS)
    assert facts.market.broker_connected is False  # the data-failure rule's input for SAFE
