"""Recovery finishes the job (issue 13): a working order a crash left behind continues its
cancel-replace ladder after the restart, every step linked to its decision; the restart's
market snapshot covers what the fills it books hold; reconciliation says what it found and
what it did. Crashes are simulated in-process (the process "dies" right after the venue
accepted an order, before the ledger heard back); tests/execution/test_kill9.py does it with
SIGKILL."""

from __future__ import annotations

import pytest

from adapters.brokers.paper import PaperCosts
from adapters.market_data.facts_market import FactsMarketData
from adapters.storage.audit_store import AuditStore
from adapters.storage.ledger_store import SqlLedgerStore
from engine.clock import WallClock
from engine.cycle.bootstrap import Portfolio, open_portfolio
from engine.execution.broker import OrderState
from scheduler.cli import main
from scheduler.compose import open_paper_cycle
from tests.execution.helpers import EXAMPLE_FACTS, facts_file


class Killed(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


def _dies_after_submit(broker, when) -> None:
    real = broker.submit

    def submit(request):
        status = real(request)  # the venue has the order (and saved its book)...
        if when(request):
            raise Killed(request.client_order_id)  # ... and the process is gone
        return status

    broker.submit = submit


ONE_PER_PASS = PaperCosts(participation=0.0)  # the venue fills one contract per matching pass


def _open(url: str, facts, costs: PaperCosts | None = None) -> tuple:
    market = FactsMarketData.load(facts)
    cycle, broker, store = open_paper_cycle(url, market, costs=costs)
    return market, cycle, broker, store


def _first_run_dies(url: str, facts, when, costs: PaperCosts | None = None) -> str:
    market, cycle, broker, store = _open(url, facts, costs)
    broker.sync(market.as_of, market.snapshot(market.as_of, cycle.symbols, cycle.params))
    open_portfolio(
        cycle, Portfolio(3_000_000, market.as_of.date()), market.as_of, broker.seed_position
    )
    _dies_after_submit(cycle.executor.broker, when)
    with pytest.raises(Killed) as died:
        cycle.run(market.as_of)
    store.close()
    return str(died.value)


def _links(url: str, decision_id: str) -> list:
    audit = AuditStore.open(url, WallClock())
    try:
        return [r.link for r in audit.for_decision(decision_id) if r.link is not None]
    finally:
        audit.close()


def test_a_restart_after_a_crash_mid_hedge_prices_the_hedge_it_books(backend_url, tmp_path):
    """Issue 13: the first restart after a crash mid-hedge exited 3 ("no usable price for
    VIX/SPX"): the snapshot was taken before the restart booked the hedge's fill."""
    drawdown = ("spx_drawdown: 0.03", "spx_drawdown: 0.25")  # a §5 strategic hedge trigger
    first = facts_file(tmp_path, "a.yaml", drawdown)
    later = facts_file(tmp_path, "b.yaml", drawdown, ("T10:15:00", "T10:20:00"))
    _first_run_dies(backend_url, first, lambda r: r.contract.symbol == "SPX")

    market, cycle, broker, store = _open(backend_url, later)
    try:
        assert not any(h.contract.symbol in ("SPX", "VIX") for h in store.state.holdings.values())
        report = cycle.run(market.as_of)  # books the hedge fills the venue made, then decides
        held = {h.contract.symbol for h in store.state.holdings.values()}
        assert {"VIX"} <= held and cycle.resumed.fills_booked >= 1
        assert report.decision_id and report.equity  # facts stated: the hedge was priced
    finally:
        store.close()


def _steps(url: str, decision_id: str, coid: str) -> list[dict]:
    return [
        link.data["ladder"]
        for link in _links(url, decision_id)
        if link.kind == "status" and link.ref == coid and "ladder" in link.data
    ]


def test_a_working_order_a_crash_left_continues_its_ladder_every_step_logged(backend_url, tmp_path):
    later = facts_file(tmp_path, "later.yaml", ("T10:15:00", "T10:16:00"))
    # Thursday in Gen's window: Gen sells puts, each first as a limit at mid; the process dies
    # right after the venue accepted the first one
    coid = _first_run_dies(
        backend_url, EXAMPLE_FACTS, lambda r: r.order_type == "LMT", ONE_PER_PASS
    )
    store = SqlLedgerStore.open(backend_url)
    left = store.state.orders[coid]
    store.close()
    assert left.state is OrderState.PENDING_SUBMIT  # the ledger never heard back
    assert left.request.limit_price == left.ladder[0] and len(left.ladder) == 3
    assert left.request.quantity > 3  # more than the ladder's passes can fill: it is cancelled

    market, cycle, broker, store = _open(backend_url, later, ONE_PER_PASS)
    try:
        cycle.run(market.as_of)
        done = store.state.orders[coid]
        found = {d.kind: d for d in cycle.resumed.differences if d.ref == coid}
        retry = store.state.orders.get(coid + ".r")
    finally:
        store.close()
    assert done.state is OrderState.CANCELLED and done.filled >= 1  # worked, not resting at mid
    assert set(found) == {"adopted", "worked"}  # found working at the venue, then worked on
    assert found["worked"].did.startswith("continued its ladder: cancelled")
    steps = _steps(backend_url, left.request.decision_id, coid)
    assert steps == [
        {"step": "replace", "index": 1, "of": 2, "limit_price": left.ladder[1]},
        {"step": "replace", "index": 2, "of": 2, "limit_price": left.ladder[2]},
        {
            "step": "cancel",
            "of": 2,
            "why": "the worst acceptable price (orders.max_worse_pct) did not fill it all",
        },
    ]
    # the constitution's "cancel and retry smaller": half the rest, once, at the worst price
    assert retry is not None and retry.request.limit_price == left.ladder[2]
    assert retry.request.quantity == (left.request.quantity - done.filled) // 2


def test_an_order_stepped_before_the_crash_continues_from_its_step(backend_url, tmp_path):
    """A crash after the first replace was booked: the restart goes on from step 2, never
    back to mid."""
    later = facts_file(tmp_path, "later.yaml", ("T10:15:00", "T10:16:00"))
    market, cycle, broker, store = _open(backend_url, EXAMPLE_FACTS, ONE_PER_PASS)
    broker.sync(market.as_of, market.snapshot(market.as_of, cycle.symbols, cycle.params))
    open_portfolio(
        cycle, Portfolio(3_000_000, market.as_of.date()), market.as_of, broker.seed_position
    )
    venue = cycle.executor.broker
    real_replace, replaced = venue.replace, []

    def replace(coid, price):
        if replaced:
            raise Killed(replaced[0])  # dies as the second step begins
        replaced.append(coid)
        return real_replace(coid, price)

    venue.replace = replace
    with pytest.raises(Killed) as died:
        cycle.run(market.as_of)
    store.close()
    coid = str(died.value)

    market, cycle, broker, store = _open(backend_url, later, ONE_PER_PASS)
    try:
        left = store.state.orders[coid]
        assert left.request.limit_price == left.ladder[1]  # the ledger knows the step it was at
        cycle.run(market.as_of)
        assert store.state.orders[coid].state is OrderState.CANCELLED
    finally:
        store.close()
    steps = _steps(backend_url, left.request.decision_id, coid)
    assert [(s["step"], s.get("index")) for s in steps] == [
        ("replace", 1),  # before the crash
        ("replace", 2),  # after the restart: on from step 2
        ("cancel", None),
    ]


def test_paper_resume_prints_what_it_found_and_what_it_did(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    coid = _first_run_dies(url, EXAMPLE_FACTS, lambda r: r.order_type == "LMT")
    capsys.readouterr()
    assert main(["paper", "resume", "--db", url]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if coid in x and "worked" in x)
    assert "found:" in line and "did: continued its ladder" in line
    store = SqlLedgerStore.open(url)
    assert store.state.orders[coid].state in (OrderState.FILLED, OrderState.CANCELLED)
    store.close()
