"""Exactly-once orders and the resume sequence, on the real components: the paper venue, and
the ledger and audit log in SQLite and PostgreSQL (``backend_url``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from adapters.brokers.paper import PaperBroker, PaperCosts
from adapters.storage.audit_store import AuditStore, SqlDecisionLog
from adapters.storage.ledger_store import SqlLedgerStore
from engine.clock import FixedClock
from engine.execution import planner, risk
from engine.execution.broker import OrderRequest, OrderSide, OrderState
from engine.execution.executor import Executor
from engine.execution.ledger import Deposit, OpenAccount, OrderRecord, RecordIntent
from engine.execution.ledger_view import ledger_facts
from engine.execution.resume import resume
from engine.market.instruments import ContractSpec, SecType
from engine.market.quotes import MarketView
from engine.records.audit import RunMode
from tests.bundled_params import ORDER_TERMS, PARAMS
from tests.execution import helpers

THU = helpers.at(helpers.WEEK.replace(day=11), 10, 0)


@pytest.fixture
def stores(backend_url):
    """(ledger store, decision log) in one database, GEN opened with $400K."""
    store = SqlLedgerStore.open(backend_url)
    store.apply(
        [OpenAccount("o", "GEN", "gen", helpers.WEEK), Deposit("d", "GEN", 400_000_00)], THU
    )
    audit = AuditStore.open(backend_url, FixedClock(datetime(2024, 1, 11, tzinfo=UTC)))
    yield store, SqlDecisionLog(audit, RunMode.PAPER)
    audit.close()
    store.close()


def _setup(market, bundled, stores):
    store, log = stores
    broker = PaperBroker(market, costs=PaperCosts(participation=1.0))
    broker.connect()
    snap = market.snapshot(THU, bundled.model.sleeves.gen.tickers, PARAMS)
    broker.sync(THU, snap)
    return store, broker, log, snap


def _decide(bundled, store, snap):
    from engine.market.facts_builder import build_facts
    from engine.rules.evaluate import evaluate

    view = MarketView(snap)
    lf = ledger_facts(store.state, view)
    facts = build_facts(snap, lf.accounts, params=PARAMS)
    decision, limits = risk.review(
        bundled.model, evaluate(bundled, facts), risk.GuardState(accounts=1)
    )
    return decision, planner.plan(bundled.model, decision, store.state, view, limits, lf.by_key)


def test_submitting_the_same_decision_twice_never_creates_a_second_order(market, bundled, stores):
    store, broker, log, snap = _setup(market, bundled, stores)
    decision, plan = _decide(bundled, store, snap)
    assert plan.orders, "the Thursday window plans Gen puts"
    executor = Executor(broker, log, store, **ORDER_TERMS)
    receipt = executor.record(decision, bundled.text)
    first = executor.execute(decision, receipt, plan, THU)
    orders, intents = len(broker.requests()), len(store.state.orders)
    second = executor.execute(decision, executor.record(decision, bundled.text), plan, THU)
    assert first.submitted == len(plan.orders) and second.submitted == 0
    assert len(broker.requests()) == orders and len(store.state.orders) == intents
    assert not executor.record(decision, bundled.text).created
    reloaded = SqlLedgerStore(store.engine).state  # what a restarted process would see
    assert reloaded.orders == store.state.orders and len(reloaded.orders) == intents


def test_a_restarted_process_resubmits_nothing_and_links_each_fill_once(market, bundled, stores):
    store, broker, log, snap = _setup(market, bundled, stores)
    decision, plan = _decide(bundled, store, snap)
    executor = Executor(broker, log, store, **ORDER_TERMS)
    executor.execute(decision, executor.record(decision, bundled.text), plan, THU)
    orders = len(broker.requests())
    restarted_store = SqlLedgerStore(store.engine)  # new process: ledger and log from the database
    restarted = Executor(
        broker, SqlDecisionLog(log.store, RunMode.PAPER), restarted_store, **ORDER_TERMS
    )
    again = restarted.execute(decision, restarted.record(decision, bundled.text), plan, THU)
    assert again.submitted == 0 and len(broker.requests()) == orders
    fills = [
        r.link.data["execution_id"]
        for r in log.store.for_decision(decision.decision_id)
        if r.link and r.link.kind == "fill"
    ]
    assert fills and sorted(fills) == sorted({f.execution_id for f in broker.fills()})


def test_replanning_after_fills_tops_up_nothing_already_deployed(market, bundled, stores):
    store, broker, log, snap = _setup(market, bundled, stores)
    decision, plan = _decide(bundled, store, snap)
    executor = Executor(broker, log, store, **ORDER_TERMS)
    executor.execute(decision, executor.record(decision, bundled.text), plan, THU)
    _, again = _decide(
        bundled, store, snap
    )  # the ledger now holds the puts: new facts, new decision
    assert not again.orders
    assert {r.reason for r in again.rejections} <= {
        "per-symbol-cap",
        "insufficient-cash",
        "none-in-band",
        "none-liquid",
    }


def test_venue_returns_the_existing_order_for_a_known_client_order_id(market, bundled):
    broker = PaperBroker(market, costs=PaperCosts(participation=1.0))
    broker.sync(THU, market.snapshot(THU, bundled.model.sleeves.gen.tickers, PARAMS))
    put = ContractSpec(
        sec_type=SecType.OPTION, symbol="SPY", expiry=THU.date(), strike=1.0, right="P"
    )
    req = OrderRequest(
        client_order_id="d-x:0:o0",
        decision_id="d-x",
        account="GEN",
        contract=put,
        side=OrderSide.SELL,
        quantity=1,
        limit_price=5.0,
    )
    a, b = broker.submit(req), broker.submit(req.model_copy(update={"quantity": 9}))
    assert a.broker_order_id == b.broker_order_id and len(broker.requests()) == 1


def test_resume_abandons_an_unsent_intent_and_cancels_an_orphan(market, bundled, stores):
    store, broker, log, snap = _setup(market, bundled, stores)
    put = ContractSpec(
        sec_type=SecType.OPTION, symbol="SPY", expiry=THU.date(), strike=1.0, right="P"
    )
    unsent = OrderRequest(
        client_order_id="d-a:0:o0",
        decision_id="d-a",
        account="GEN",
        contract=put,
        side=OrderSide.SELL,
        quantity=1,
        limit_price=50.0,
    )
    store.apply(
        [RecordIntent("intent:d-a", OrderRecord(unsent, 0, "open_short_put", "income", "cash"))],
        THU,
    )
    orphan = unsent.model_copy(update={"client_order_id": "d-b:0:o0", "decision_id": "d-b"})
    broker.submit(orphan)  # unknown to the ledger (its intent was lost): must be cancelled
    report = resume(store, Executor(broker, log, store, **ORDER_TERMS), THU)
    kinds = {d.kind: d.ref for d in report.differences}
    assert kinds == {"abandoned": "d-a:0:o0", "orphan-cancelled": "d-b:0:o0"}
    assert store.state.orders["d-a:0:o0"].state is OrderState.INACTIVE
    assert not broker.open_orders() and report.mode_after == "active"
    reloaded = SqlLedgerStore(store.engine).state
    assert reloaded.orders["d-a:0:o0"].state is OrderState.INACTIVE
    notes = sorted(op for op in reloaded.applied if op.startswith(f"reconcile:{THU.isoformat()}:"))
    assert len(notes) == 2 and [n.rsplit(":", 1)[1] for n in notes] == ["0", "1"]


class _NewestFirst(PaperBroker):
    """A venue that lists its fills newest first: not the append-only list the executor's
    incremental sync reads from where it stopped."""

    def fills(self, since=None):
        return list(reversed(super().fills(since)))


@pytest.mark.parametrize("venue", [PaperBroker, _NewestFirst], ids=["append-only", "newest-first"])
def test_fill_sync_books_every_fill_once_whatever_order_the_broker_lists_them(
    market, bundled, stores, venue
):
    store, log = stores
    broker = venue(market, costs=PaperCosts(participation=1.0))
    broker.connect()
    snap = market.snapshot(THU, bundled.model.sleeves.gen.tickers, PARAMS)
    broker.sync(THU, snap)
    decision, plan = _decide(bundled, store, snap)
    executor = Executor(broker, log, store, **ORDER_TERMS)
    starts: list[int] = []
    read_from = executor._already_synced
    executor._already_synced = lambda fills: starts.append(read_from(fills)) or starts[-1]
    receipt = executor.record(decision, bundled.text)
    executor.execute(decision, receipt, replace(plan, orders=plan.orders[:1]), THU)
    executor.execute(decision, receipt, replace(plan, orders=plan.orders[1:]), THU)
    fills = broker.fills()
    assert len(fills) >= 2 and len(starts) >= 2  # two batches of fills, each synced
    assert {f.execution_id for f in fills} <= store.state.applied
    booked = [e for e in store.state.applied if e in {f.execution_id for f in fills}]
    assert len(booked) == len(fills)
    if venue is _NewestFirst:
        assert set(starts) == {0}  # the list moved under the last sync: every fill looked at
    else:
        assert max(starts) > 0  # only the fills appended since the last sync
    assert executor.sync_fills(THU) == 0
