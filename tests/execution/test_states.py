"""§9 states with guarded transitions, the §0 per-account user kill switch, and §2's
stress-test mode: each visible in `paper status` and recorded on entry and exit."""

from __future__ import annotations

import pytest

from adapters.brokers.paper import PaperBroker
from adapters.storage.audit_store import AuditStore
from engine.clock import FixedClock, WallClock
from engine.execution import states
from engine.execution.broker import OrderRequest, OrderSide, OrderState
from engine.execution.executor import Executor, MemoryLedgerStore
from engine.execution.ledger import LedgerState, OrderRecord, RecordIntent, SetMode, apply_all
from engine.market.instruments import ContractSpec, SecType
from engine.records.audit import RunMode
from engine.records.decision import ConstitutionRef, Decision
from engine.records.log import InMemoryDecisionLog
from scheduler.cli import main
from tests.bundled_params import ORDER_TERMS, PARAMS
from tests.execution import helpers
from tests.execution.test_paper_cli import EXAMPLE, _decisions, _facts, _ledger, _step


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'paper.db'}"


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _operator_notes(url: str) -> list[dict]:
    audit = AuditStore.open(url, WallClock())
    try:
        return [
            r.link.data
            for seq in range(1, audit.count() + 1)
            if (r := audit.get(seq)) and r.link and r.link.ref == "operator-reset"
        ]
    finally:
        audit.close()


@pytest.mark.parametrize(
    ("mode", "to", "allowed"),
    [
        ("active", states.SystemState.MAINTENANCE, True),
        ("kill", states.SystemState.MAINTENANCE, True),
        ("active", states.SystemState.AUDIT, True),
        ("kill", states.SystemState.AUDIT, False),  # no reconciliation check in an emergency
        ("active", states.SystemState.ACTIVE, False),
    ],
)
def test_transitions_are_guarded(mode, to, allowed):
    state, _ = apply_all(LedgerState(), [SetMode("m", mode, "t")])
    if allowed:
        states.check(state, to, "why")
    else:
        with pytest.raises(states.TransitionRefused):
            states.check(state, to, "why")


def test_an_operator_state_needs_a_reason_and_audit_waits_for_working_orders():
    with pytest.raises(states.TransitionRefused, match="needs a reason"):
        states.check(LedgerState(), states.SystemState.MAINTENANCE, " ")
    order = OrderRecord(
        OrderRequest(
            client_order_id="d:0:o0",
            decision_id="d",
            account="GEN",
            contract=ContractSpec(sec_type=SecType.STOCK, symbol="AAPL", multiplier=1),
            side=OrderSide.BUY,
            quantity=1,
            limit_price=1.0,
        ),
        0,
        "open_short_put",
        "income",
        "cash",
        state=OrderState.SUBMITTED,
    )
    state, _ = apply_all(LedgerState(), [RecordIntent("i", order)])
    with pytest.raises(states.TransitionRefused, match="working"):
        states.check(state, states.SystemState.AUDIT, "weekly")


def test_a_pause_cancels_the_accounts_working_orders_only(market):
    at = helpers.at(helpers.WEEK, 10)
    snap = market.snapshot(at, ["SPY"], PARAMS)
    chain = snap.chains["SPY"]
    c = chain.contract(int((abs(abs(chain.delta) - 0.3) + chain.is_call).argmin()))  # a put
    put = ContractSpec(
        sec_type=SecType.OPTION, symbol="SPY", expiry=c.expiry, strike=c.strike, right="P"
    )
    broker = PaperBroker(market)
    broker.sync(at, snap)
    store = MemoryLedgerStore()
    log = InMemoryDecisionLog(RunMode.PAPER, FixedClock(at))
    log.record(
        Decision(
            decision_id="d-t",
            as_of=at.isoformat(),
            constitution=ConstitutionRef(version="1.3.1", digest="x"),
            facts_digest="f",
            facts={},
            derived={},
            fired=(),
            actions=(),
        ),
        "constitution text",
    )
    executor = Executor(broker, log, store, **ORDER_TERMS)
    for account in ("GEN", "REV"):
        req = OrderRequest(
            client_order_id=f"d-t:0:{account}",
            decision_id="d-t",
            account=account,
            contract=put,
            side=OrderSide.SELL,
            quantity=1,
            limit_price=round(c.mid * 3, 2),  # far from the market: stays working
        )
        store.apply(
            [RecordIntent(f"i{account}", OrderRecord(req, 0, "open_short_put", "income", "cash"))],
            at,
        )
        executor._report("d-t", broker.submit(req), at)
    assert executor.cancel_account("d-t", at, "GEN") == 1
    assert [o.request.account for o in store.state.open_orders()] == ["REV"]


def test_pause_and_resume_an_account_recorded_on_entry_and_exit(url, tmp_path, capsys):
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    code, out, err = _cli(capsys, "account", "pause", "GEN", "--reason", "on holiday", "--db", url)
    assert code == 0, err
    hold = _ledger(url).account_modes["GEN"]
    assert (hold.mode, hold.release) == ("paused", "operator") and "on holiday" in hold.reason
    _, status, _ = _cli(capsys, "paper", "status", "--db", url)
    assert "GEN held PAUSED" in status

    calm = _facts(tmp_path, "next.yaml", ("T10:15", "T10:30"))
    assert _step(capsys, url, "--facts", str(calm))[0] == 0
    decision = _decisions(url)[-1].decision
    gen = [
        v
        for v, a in zip(decision.verdicts, decision.actions, strict=True)
        if a.kind == "open_short_put" and a.account == "GEN"
    ]
    assert not gen or all(not v.approved and v.reasons[0].startswith("paused") for v in gen)

    code, _, err = _cli(capsys, "account", "resume", "GEN", "--reason", "back", "--db", url)
    assert code == 0, err
    assert "GEN" not in _ledger(url).account_modes
    phases = [(n["event"], n["phase"]) for n in _operator_notes(url)]
    assert phases == [
        ("account_pause", "requested"),
        ("account_pause", "done"),
        ("account_resume", "requested"),
        ("account_resume", "done"),
    ]


def test_pausing_an_unknown_account_is_a_located_error_and_writes_nothing(url, capsys):
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    code, _, err = _cli(capsys, "account", "pause", "NOPE", "--reason", "x", "--db", url)
    assert code == 2 and "unknown-account" in err and "Traceback" not in err
    assert _ledger(url).account_modes == {} and _operator_notes(url) == []


def _gen_dtes(url: str) -> list[int]:
    from datetime import date

    decision = _decisions(url)[-1].decision
    day = date.fromisoformat(decision.as_of[:10])
    return sorted(
        (o.request.contract.expiry - day).days
        for o in _ledger(url).orders.values()
        if o.request.decision_id == decision.decision_id and o.request.account == "GEN"
    )


def test_stress_test_mode_makes_gen_sell_one_to_three_dte_and_shows_in_status(
    url, tmp_path, capsys
):
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    assert _step(capsys, plain, "--facts", str(EXAMPLE))[0] == 0
    assert 0 in _gen_dtes(plain)  # normally Gen sells 0-1 DTE: QQQ expiring today

    early = _facts(tmp_path, "early.yaml", ("T10:15", "T09:35"))  # before the entry window
    assert _step(capsys, url, "--facts", str(early))[0] == 0
    assert _cli(capsys, "system", "stress", "on", "--reason", "drill", "--db", url)[0] == 0
    _, status, _ = _cli(capsys, "paper", "status", "--db", url)
    assert "stress-test mode on since" in status and "drill" in status
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    dtes = _gen_dtes(url)
    assert dtes and min(dtes) >= 1  # §2 stress-test: 1-3 DTE, never 0
    assert _cli(capsys, "system", "stress", "off", "--reason", "done", "--db", url)[0] == 0
    assert "stress_test" not in _ledger(url).flags


def test_maintenance_halts_new_risk_and_is_left_by_an_operator(url, tmp_path, capsys):
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    assert _cli(capsys, "system", "maintenance", "on", "--reason", "upgrade", "--db", url)[0] == 0
    assert states.state_of(_ledger(url)) is states.SystemState.MAINTENANCE
    later = _facts(tmp_path, "later.yaml", ("T10:15", "T10:45"))
    assert _step(capsys, url, "--facts", str(later))[0] == 0
    decision = _decisions(url)[-1].decision
    entries = [
        v
        for v, a in zip(decision.verdicts, decision.actions, strict=True)
        if a.kind == "open_short_put"
    ]
    assert entries and all(
        not v.approved and v.reasons[0].startswith("maintenance") for v in entries
    )
    code, _, err = _cli(capsys, "system", "audit", "--reason", "x", "--db", url)
    assert code == 2 and "not a transition" in err
    assert _cli(capsys, "system", "maintenance", "off", "--reason", "done", "--db", url)[0] == 0
    assert states.state_of(_ledger(url)) is states.SystemState.ACTIVE
    assert _cli(capsys, "system", "audit", "--reason", "weekly check", "--db", url)[0] == 0
    assert states.state_of(_ledger(url)) is states.SystemState.ACTIVE
