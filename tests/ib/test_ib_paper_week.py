"""A scripted paper week (Mon-Fri) placed through IBBroker against the stub gateway:
short puts and covered calls opened, some closed, an SPX put and a VIX call hedge bought."""

from __future__ import annotations

from datetime import date

from engine.execution.broker import OrderState
from engine.market.instruments import SecType

from .conftest import call, order, put, settled, today
from .tws_stub import OrderScript


def test_paper_week_orders_fills_and_positions_reconcile(make_broker, stub, clock):
    broker, rec = make_broker()
    days = {}

    def day(d: date, *orders):
        clock.advance_to(today(d))
        stub.today = d
        days[d] = [broker.submit(o) for o in orders]

    day(
        date(2025, 1, 6),  # Monday: Com covered calls on its MSFT, Gen cash-secured puts
        order("mon-com:cc", "COM", call("MSFT", "20250110", 440.0), "SELL", 2, 1.20),
        order("mon-gen:csp", "GEN", put("AAPL", "20250110", 195.0), "SELL", 3, 1.50),
    )
    day(
        date(2025, 1, 7),  # Tuesday: Rev puts on NVDA
        order("tue-rev:csp", "REV", put("NVDA", "20250110", 130.0), "SELL", 4, 0.95),
    )
    day(
        date(2025, 1, 8),  # Wednesday: Gen closes one AAPL put early
        order("wed-gen:btc", "GEN", put("AAPL", "20250110", 195.0), "BUY", 1, 0.40),
    )
    day(
        date(2025, 1, 9),  # Thursday: Mini puts on SPY; Gen hedges with SPX put and VIX call
        order("thu-mini:csp", "MINI-1", put("SPY", "20250117", 575.0), "SELL", 1, 2.10),
        order(
            "thu-gen:spx",
            "GEN",
            put("SPX", "20250620", 5100.0, SecType.INDEX_OPTION),
            "BUY",
            1,
            60.0,
        ),
        order(
            "thu-gen:vix", "GEN", call("VIX", "20250716", 25.0, SecType.VIX_OPTION), "BUY", 2, 1.10
        ),
    )
    day(
        date(2025, 1, 10),  # Friday: Com buys back its calls
        order("fri-com:btc", "COM", call("MSFT", "20250110", 440.0), "BUY", 2, 0.05),
    )

    statuses = [s for ss in days.values() for s in ss]
    assert all(s.state in (OrderState.SUBMITTED, OrderState.FILLED) for s in statuses)
    assert settled(rec, *(s.client_order_id for s in statuses))
    assert rec.wait_for(lambda ev: len([e for e in ev if e.kind == "fill"]) == len(statuses))
    by_coid = {f.client_order_id: f for f in broker.fills()}
    assert by_coid["thu-gen:spx"].contract.sec_type is SecType.INDEX_OPTION
    assert by_coid["thu-gen:vix"].account == "GEN"
    assert by_coid["fri-com:btc"].commission > 0

    held = {(p.account, p.contract.key): p.quantity for p in broker.positions()}
    assert held == {
        ("COM", "MSFT"): 200,  # calls opened and closed: stock untouched
        ("GEN", "AAPL 2025-01-10 195P"): -2,
        ("GEN", "SPX 2025-06-20 5100P"): 1,
        ("GEN", "VIX 2025-07-16 25C"): 2,
        ("REV", "NVDA 2025-01-10 130P"): -4,
        ("MINI-1", "SPY 2025-01-17 575P"): -1,
    }
    assert broker.open_orders() == []


def test_spx_third_friday_routes_to_spx_class_and_weekly_to_spxw(make_broker, stub):
    broker, rec = make_broker()
    monthly = broker.submit(
        order("h:1", "GEN", put("SPX", "20250620", 5000.0, SecType.INDEX_OPTION), "BUY", 1, 50.0)
    )
    weekly = broker.submit(
        order("h:2", "GEN", put("SPX", "20250627", 5000.0, SecType.INDEX_OPTION), "BUY", 1, 50.0)
    )
    assert settled(rec, monthly.client_order_id, weekly.client_order_id)
    assert stub.order("h:1").contract.trading_class == "SPX"
    assert stub.order("h:2").contract.trading_class == "SPXW"


def test_resubmitting_the_same_client_order_id_never_places_twice(make_broker, stub):
    broker, _ = make_broker()
    stub.script("d9:leg", OrderScript(action="rest"))
    req = order("d9:leg", "GEN", put("AAPL", "20250117", 190.0), "SELL", 1, 1.0)
    first = broker.submit(req)
    again = broker.submit(req)
    assert first.state is again.state is OrderState.SUBMITTED
    assert stub.placements("d9:leg") == 1


def test_restart_adopts_orders_from_a_previous_process(make_broker, stub):
    """A new adapter (e.g. after a crash) finds the working order by orderRef instead of
    placing it again."""
    first, _ = make_broker()
    stub.script("d10:leg", OrderScript(action="rest"))
    req = order("d10:leg", "REV", put("NVDA", "20250117", 125.0), "SELL", 2, 0.8)
    first.submit(req)
    first.close()
    second, _ = make_broker()
    status = second.submit(req)
    assert status.state is OrderState.SUBMITTED
    assert stub.placements("d10:leg") == 1
    assert [o.client_order_id for o in second.open_orders()] == ["d10:leg"]


def test_cancel_and_cancel_replace(make_broker, stub):
    broker, rec = make_broker()
    stub.script("c:1", OrderScript(action="rest"))
    stub.script("c:2", OrderScript(action="rest"))
    broker.submit(order("c:1", "GEN", put("AAPL", "20250117", 185.0), "SELL", 1, 0.9))
    broker.submit(order("c:2", "GEN", put("AAPL", "20250117", 180.0), "SELL", 1, 0.7))

    cancelled = broker.cancel("c:1")
    moved = broker.replace("c:2", 0.65)
    stub.fill("c:2", 1, 0.65)

    assert cancelled.state is OrderState.CANCELLED
    assert moved.state is OrderState.SUBMITTED
    assert stub.order("c:2").limit == 0.65
    assert stub.placements("c:2") == 1  # modified in place, not a second order
    assert rec.wait_for(
        lambda ev: (
            "filled"
            in [
                e.status.state.value
                for e in ev
                if e.kind == "status" and e.status.client_order_id == "c:2"
            ]
        )
    )
    assert broker.status("c:2").avg_fill_price == 0.65
