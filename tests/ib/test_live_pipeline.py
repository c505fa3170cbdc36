"""The live pipeline in process: the daemon (APScheduler, runner, journal) drives the paper
pipeline's TradingCycle with IBBroker and IBMarketData over a loopback socket to the stub
gateway. The ledger is opened from the broker's account (D25), orders reach the gateway, a
lost connection is retried, never fatal."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.storage.audit_store import AuditStore, open_decision_log
from adapters.storage.ledger_store import SqlLedgerStore
from adapters.storage.scheduler_store import SchedulerStore
from constitution.errors import OperationalError
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.execution.broker import BrokerPosition
from engine.execution.ledger import ForkAccount
from engine.market.instruments import ContractSpec, SecType
from engine.records.audit import RunMode
from scheduler import compose
from scheduler.cli import main
from scheduler.daemon import Daemon, DaemonConfig
from scheduler.live import BrokerAccount, LiveRefused, opening_ops
from tests.scheduler.fake_cycle import decision_for
from tests.waiting import wait_until

from .live_world import ACCOUNTS, CASH, FAST, MARKET, OPEN_AT, ShiftedClock, make_live_stub

NVDA_PUT = ContractSpec(
    sec_type=SecType.OPTION, symbol="NVDA", expiry=date(2025, 1, 24), strike=130.0, right="P"
)
MSFT = ContractSpec(sec_type=SecType.STOCK, symbol="MSFT", multiplier=1)


@pytest.fixture
def gateway():
    gw = make_live_stub()
    gw.start()
    yield gw
    gw.close()


def _builder(url: str, gw, clock, client_id: int = 7):
    ctx = compose.CycleContext(db_url=url, mode=RunMode.LIVE, clock=clock)
    return compose.live_cycle_factory(
        ctx,
        f"127.0.0.1:{gw.port}",
        ACCOUNTS,
        client_id=client_id,
        ib_settings=FAST,
        market_settings=MARKET,
    )


def _audit(url: str) -> AuditStore:
    return AuditStore.open(url, FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))


def _cycles(url: str):
    store = SchedulerStore.open(url)
    try:
        return store.cycles_between(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
    finally:
        store.close()


def _events(url: str, kind: str | None = None):
    store = SchedulerStore.open(url)
    try:
        return store.events(kind)
    finally:
        store.close()


def test_live_daemon_opens_from_the_broker_decides_and_places_orders_at_the_gateway(
    gateway, tmp_path
):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    clock = ShiftedClock()
    daemon = Daemon(
        DaemonConfig(constitution=bundled_path(), db_url=url, mode=RunMode.LIVE, every=0.5),
        _builder(url, gateway, clock),
        clock,
    )
    summary = daemon.start()
    try:
        wait_until(
            lambda: (
                len(_cycles(url)) >= 3
                and any(o.status == "Filled" for o in gateway.placed_orders())
            ),
            60,
            "three live cycles and a filled order",
        )
    finally:
        daemon.request_stop()
        code = daemon.shutdown()

    assert code == 0 and summary.mode == "live"
    assert any(
        step.startswith("broker state and reconcile: {'differences': {}")
        for step in summary.resume.steps
    )

    # the gateway got real orders, each placed once, under a client order id from a decision
    orders = gateway.placed_orders()
    assert orders and all(o.account == ACCOUNTS["GEN"] and o.action == "SELL" for o in orders)
    assert {(o.contract.symbol, o.contract.expiry, o.contract.right) for o in orders} == {
        ("AAPL", "20250117", "P")
    }
    assert all(gateway.placements(o.order_ref) == 1 for o in orders)

    # ... and the audit log holds the live decisions, the order intents linked to them, a chain that verifies
    audit = _audit(url)
    try:
        records = [audit.get(seq) for seq in range(1, audit.count() + 1)]
        assert {r.mode for r in records} == {RunMode.LIVE}
        decisions = {r.decision_id: r.decision for r in records if r.decision is not None}
        linked = {
            r.link.ref: r.decision_id
            for r in records
            if r.link is not None and r.link.kind == "order"
        }
        assert audit.verify().ok
    finally:
        audit.close()
    for o in orders:
        did = linked[o.order_ref]
        assert o.order_ref.startswith(did + ":")
        assert any(
            a.kind == "open_short_put" and a.symbol == "AAPL" for a in decisions[did].actions
        )

    # the ledger: opened from IB's cash and positions, then the gateway's fills booked
    store = SqlLedgerStore.open(url)
    try:
        state = store.state
        assert sorted(state.accounts) == ["COM", "GEN", "REV"]
        assert (
            state.holdings[("COM", "MSFT")].quantity == 200
            and state.holdings[("COM", "MSFT")].avg_price == 410.0
        )
        nvda = state.holdings[("REV", "NVDA 2025-01-24 130P")]
        assert (nvda.quantity, nvda.avg_price, nvda.purpose) == (-2, 0.95, "income")
        assert state.balance("REV") == round(
            CASH["REV"] * 100
        )  # the opening put's premium is in IB's cash already
        assert state.balance("COM") == round(CASH["COM"] * 100)
        sold = sum(o.quantity for o in orders)
        assert state.holdings[("GEN", "AAPL 2025-01-17 199.5P")].quantity == -sold
        premium = sum(
            round(o.avg_price * o.filled * 100 * 100) for o in orders
        )  # cents of 100-share contracts
        commission = sum(round(gateway.commission * o.filled * 100) for o in orders)
        assert state.balance("GEN") == round(CASH["GEN"] * 100) + premium - commission
    finally:
        store.close()

    rows = _cycles(url)
    assert [r.reason for r in rows][:2] == ["resume", "schedule"]
    assert all(datetime.fromisoformat(r.at) >= OPEN_AT for r in rows)  # on the daemon's clock
    assert 7 not in gateway.connected_clients()  # shutdown closed the connection

    # every live decision replays identical (rules and risk review), and the shutdown left a
    # signed checkpoint the log matches; the IB account codes are in no record
    assert main(["audit", "replay", "--all", "--db", url]) == 0
    assert main(["audit", "verify", "--db", url, "--require-checkpoint"]) == 0
    audit = _audit(url)
    try:
        bodies = [audit.get(seq) for seq in range(1, audit.count() + 1)]
        assert not any(code in r.model_dump_json() for r in bodies for code in ACCOUNTS.values())
    finally:
        audit.close()


def test_a_lost_gateway_is_retried_at_the_next_run_and_trading_resumes_after_it_returns(
    gateway, tmp_path
):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    clock = ShiftedClock()
    daemon = Daemon(
        DaemonConfig(constitution=bundled_path(), db_url=url, mode=RunMode.LIVE, every=0.5),
        _builder(url, gateway, clock, client_id=8),
        clock,
    )
    daemon.start()
    try:
        gateway.stop()  # the gateway goes away (IB's nightly restart)
        retry = wait_until(
            lambda: _events(url, "cycle_retry"), 30, "a cycle retried while the gateway is down"
        )
        assert not daemon.outcome.stop.is_set()  # a RetryError never stops the daemon
        gateway.start()  # back on the same port: the adapter reconnects and reconciles
        after = len(_cycles(url))
        wait_until(lambda: len(_cycles(url)) >= after + 2, 60, "cycles after the gateway returned")
    finally:
        daemon.request_stop()
        code = daemon.shutdown()
    assert code == 0
    assert "not connected to TWS/IB Gateway" in retry[0].detail["error"]
    assert [e.kind for e in _events(url)][-1] == "stop"


def test_live_refuses_a_database_with_paper_records_before_connecting(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    bundled = load_constitution(bundled_path())
    paper = open_decision_log(url, RunMode.PAPER, FixedClock(OPEN_AT))
    paper.record(decision_for(bundled, OPEN_AT), bundled.text)
    paper.close()
    ctx = compose.CycleContext(db_url=url, mode=RunMode.LIVE, clock=FixedClock(OPEN_AT))
    build = compose.live_cycle_factory(
        ctx, "127.0.0.1:1", ACCOUNTS, ib_settings=FAST
    )  # nothing listens there

    with pytest.raises(
        LiveRefused, match="holds paper records; live trading needs a database of its own"
    ) as info:
        build(bundled)
    assert info.value.exit_code == 3


def test_live_refuses_to_open_when_ib_reports_no_cash_for_a_mapped_account(tmp_path):
    gw = make_live_stub()
    gw.account_values.pop(ACCOUNTS["REV"])  # IB then reports only NetLiquidation for it
    gw.start()
    url = f"sqlite:///{tmp_path / 'live.db'}"
    build = _builder(url, gw, FixedClock(OPEN_AT), client_id=9)
    try:
        cycle = build(load_constitution(bundled_path()))
        with pytest.raises(LiveRefused, match="IB reported no cash .* for REV"):
            cycle.resume(OPEN_AT)
        store = SqlLedgerStore.open(url)
        assert store.state.accounts == {}  # nothing was opened, nothing invented
        store.close()
    finally:
        build.close()
        gw.close()


def test_a_mapping_to_accounts_the_gateway_does_not_manage_is_refused_with_exit_3(
    gateway, tmp_path
):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    ctx = compose.CycleContext(db_url=url, mode=RunMode.LIVE, clock=FixedClock(OPEN_AT))
    build = compose.live_cycle_factory(
        ctx,
        f"127.0.0.1:{gateway.port}",
        {**ACCOUNTS, "MINI-1": "DU999"},
        client_id=10,
        ib_settings=FAST,
    )
    with pytest.raises(
        OperationalError, match="MINI-1 are not among the gateway's accounts"
    ) as info:
        build(load_constitution(bundled_path()))
    assert info.value.exit_code == 3
    assert 10 not in gateway.connected_clients()


GEN_CASH, MINI_CASH = 1_000_000.0, 300_000.0  # a Mini large enough to sell an AAPL put


def _ledger_forked_to_an_unmapped_mini(url: str) -> None:
    """The ledger as the broker opens it (D25), then a fork from Gen into MINI-1: the Mini has
    no --account mapping yet (its money is still in Gen's IB account)."""
    store = SqlLedgerStore.open(url)
    try:
        accounts = [
            BrokerAccount("GEN", GEN_CASH),
            BrokerAccount(
                "REV",
                CASH["REV"],
                (BrokerPosition(account="REV", contract=NVDA_PUT, quantity=-2, avg_cost=0.95),),
            ),
            BrokerAccount(
                "COM",
                CASH["COM"],
                (BrokerPosition(account="COM", contract=MSFT, quantity=200, avg_cost=410.0),),
            ),
        ]
        store.apply(opening_ops(accounts, OPEN_AT), OPEN_AT)
        store.apply(
            [
                ForkAccount(
                    "fork:GEN:1",
                    "GEN",
                    (("MINI-1", "mini", round(MINI_CASH * 100)),),
                    OPEN_AT.date(),
                )
            ],
            OPEN_AT,
        )
    finally:
        store.close()


def test_an_account_without_an_ib_sub_account_gets_its_orders_refused_and_the_daemon_keeps_trading(
    gateway, tmp_path
):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    gateway.set_account_value(ACCOUNTS["GEN"], "TotalCashValue", f"{GEN_CASH:.2f}")
    _ledger_forked_to_an_unmapped_mini(url)
    clock = ShiftedClock()
    daemon = Daemon(
        DaemonConfig(constitution=bundled_path(), db_url=url, mode=RunMode.LIVE, every=0.5),
        _builder(url, gateway, clock, client_id=11),
        clock,
    )
    daemon.start()  # the unmapped MINI-1 does not refuse the start
    try:
        wait_until(
            lambda: len(_cycles(url)) >= 4 and gateway.placed_orders(),
            60,
            "four live cycles and an order",
        )
        assert not daemon.outcome.stop.is_set()
    finally:
        daemon.request_stop()
        code = daemon.shutdown()
    assert code == 0
    assert not _events(url, "cycle_error") and not _events(url, "cycle_retry")

    audit = _audit(url)
    try:
        records = [audit.get(seq) for seq in range(1, audit.count() + 1)]
    finally:
        audit.close()
    notes = [
        r
        for r in records
        if r.link is not None and r.link.kind == "note" and "rejection" in r.link.data
    ]
    refused = [r for r in notes if r.link.data["rejection"]["reason"] == "no-broker-account"]
    assert refused, "the Mini's entry is refused, on the record"
    assert {
        (x["account"], x["kind"], x["detail"]) for x in (r.link.data["rejection"] for r in refused)
    } == {
        (
            "MINI-1",
            "open_short_put",
            "MINI-1 has no broker sub-account; map it with --account MINI-1=CODE and restart",
        )
    }
    assert (
        len({r.decision_id for r in refused}) >= 2
    )  # refused again in later cycles: the daemon went on deciding
    # nothing for MINI-1 reached the gateway or the ledger's orders; Gen still traded
    assert {o.account for o in gateway.placed_orders()} == {ACCOUNTS["GEN"]}
    intents = [r.link.data for r in records if r.link is not None and r.link.kind == "order"]
    assert intents and all(x["account"] == "GEN" for x in intents)
    store = SqlLedgerStore.open(url)
    try:
        assert not [o for o in store.state.orders.values() if o.request.account == "MINI-1"]
        assert store.state.balance("MINI-1") == round(
            MINI_CASH * 100
        )  # the fork stands: bookkeeping between sleeves
    finally:
        store.close()
