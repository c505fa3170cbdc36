"""What needs a person, the policies that answer in paper runs and backtests, and the gate's
bookkeeping (engine.execution.approvals, engine.cycle.approval_gate). Thresholds are tested
as boundary pairs: at the limit, and just past it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from constitution.errors import ConstitutionInvalid
from constitution.load import load_constitution_text
from engine.clock import FixedClock
from engine.cycle.approval_gate import ApprovalGate, MemoryApprovalStore
from engine.execution import risk
from engine.execution.approvals import (
    NEEDS_KIND,
    NEEDS_LEAP,
    answer,
    needs_person,
    over_notional,
    parse_policy,
    policy_answer,
    request,
)
from engine.execution.broker import OrderRequest, OrderSide
from engine.execution.plan import Plan, PlannedOrder
from engine.market.instruments import ContractSpec, SecType
from engine.records.audit import RunMode
from engine.records.decision import Action, ConstitutionRef, Decision, Verdict
from engine.records.log import InMemoryDecisionLog

T0 = datetime(2024, 3, 28, 20, 30, tzinfo=UTC)  # a Thursday, 16:30 New York


def _a(kind: str, account: str = "COM", **params) -> Action:
    return Action(kind=kind, account=account, rule="r", clause="§17", salience=95,
                  params=params, reason="test")  # fmt: skip


def _decision(did: str, *actions: Action, as_of: datetime = T0) -> Decision:
    return Decision(
        decision_id=did,
        as_of=as_of.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={"accounts": [{"id": "COM", "equity": 300000.0}]},
        derived={"market": {"mode": "active"}, "accounts": {}},
        fired=(),
        actions=actions,
        verdicts=tuple(Verdict(action=i, approved=True) for i in range(len(actions))),
    )


def _with(bundled_text: str, old: str, new: str):
    assert old in bundled_text
    return load_constitution_text(bundled_text.replace(old, new), "test.yaml").model


def test_forks_merges_and_leap_purchases_need_a_person_exits_never(bundled, bundled_text):
    c = bundled.model
    assert needs_person(c, _a("fork_account")) == NEEDS_KIND
    assert needs_person(c, _a("merge_account")) == NEEDS_KIND
    assert needs_person(c, _a("buy_leap")) == NEEDS_LEAP
    for kind in ("close_position", "roll_position", "deploy_hedge", "open_short_put"):
        assert needs_person(c, _a(kind)) is None
    no_human = _with(bundled_text, "human_approval: true", "human_approval: false")
    assert needs_person(no_human, _a("buy_leap")) is None  # llms.human_approval decides


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("[fork_account, close_position]", "close_position cannot wait for a person"),
        ("[buy_leap]", "buy_leap follows llms.human_approval"),
        ("[fork_account, fork_account]", "listed twice"),
    ],
)
def test_a_constitution_cannot_make_exits_wait_or_restate_the_leap_switch(
    bundled_text, listed, message
):
    with pytest.raises(ConstitutionInvalid) as exc:
        _with(bundled_text, "actions: [fork_account, merge_account]", f"actions: {listed}")
    [problem] = exc.value.problems
    assert problem.path == "governance.approvals.actions" and message in problem.message
    assert problem.line > 1  # located in the file


def _put(notional_strike: float, qty: int, i: int = 0) -> PlannedOrder:
    contract = ContractSpec(sec_type=SecType.OPTION, symbol="AAPL", expiry=date(2024, 4, 5),
                            strike=notional_strike, right="P")  # fmt: skip
    req = OrderRequest(client_order_id=f"d:{i}:o0", decision_id="d", account="GEN",
                       contract=contract, side=OrderSide.SELL, quantity=qty, limit_price=1.5)  # fmt: skip
    return PlannedOrder(req, i, "open_short_put", "income", ladder=(1.5,))


def test_the_live_notional_limit_holds_orders_just_above_it_not_at_it():
    at_limit = Plan(orders=(_put(100.0, 10),))  # 100 x 10 x 100 = $100,000
    above = Plan(orders=(_put(100.01, 10),))
    assert over_notional(at_limit, 100_000.0) == {}
    assert over_notional(above, 100_000.0) == {0: 100_010.0}
    assert over_notional(above, None) == {}  # no limit set (v1.3.1: null)


def test_policies_answer_on_the_run_s_clock(bundled):
    a = request(bundled.model.governance.approvals, "d-1", (1, "h"), 0, _a("fork_account"),
                "backtest", NEEDS_KIND, T0)  # fmt: skip
    later = parse_policy("approve-after:30")
    assert policy_answer(later, a, T0 + timedelta(minutes=30) - timedelta(microseconds=1)) is None
    approved = policy_answer(later, a, T0 + timedelta(minutes=30))
    assert approved.state == "approved" and approved.by == "policy:approve-after:30"
    assert policy_answer(parse_policy("auto-deny"), a, T0).state == "declined"
    assert policy_answer(parse_policy("auto-approve"), a, T0).state == "approved"
    assert policy_answer(parse_policy("person"), a, T0 + timedelta(days=9)) is None
    for bad in ("approve-after", "approve-after:-1", "yes", "approve-after:x"):
        with pytest.raises(ValueError, match="use person, auto-approve"):
            parse_policy(bad)


def test_a_live_run_cannot_declare_a_policy(bundled):
    store = MemoryApprovalStore(InMemoryDecisionLog(RunMode.LIVE, FixedClock(T0)))
    with pytest.raises(ValueError, match="a live run asks a person"):
        ApprovalGate(bundled.model, store, "live", parse_policy("auto-approve"))


def _gate(bundled, decision: Decision, policy: str = "person"):
    log = InMemoryDecisionLog(RunMode.PAPER, FixedClock(T0))
    receipt = log.record(decision, "text")
    store = MemoryApprovalStore(log)
    return ApprovalGate(bundled.model, store, "paper", parse_policy(policy)), store, receipt, log


def test_a_leap_purchase_approved_later_is_carried_out_from_its_own_decision(bundled):
    first = _decision("d-q1", _a("reinvest"), _a("buy_leap"))
    gate, store, receipt, _ = _gate(bundled, first)
    gate.tick(T0)
    planned, held = gate.gate(first, receipt, T0)
    assert [v.approved for v in planned.verdicts] == [True, False]  # reinvest goes, LEAPs wait
    assert [r.reason for r in held.rejections] == ["awaiting-approval"]
    [pending] = store.open_approvals()
    approved = answer(pending, True, "ana", "ok", T0 + timedelta(hours=2))
    store.save(approved, "pending", *_records(approved))

    later = _decision("d-mon", _a("skip_entry"), as_of=T0 + timedelta(days=4))
    assert gate.tick(T0 + timedelta(hours=20)) is True  # an approval to act on: decide now
    [(shell, shell_receipt, carried)] = gate.carried(later, risk.GuardState())
    assert shell.decision_id == "d-q1" and shell_receipt.seq == receipt.seq
    assert [v.approved for v in shell.verdicts] == [False, True]  # only the LEAP purchase
    assert shell.actions[1].kind == "buy_leap" and shell.facts == later.facts
    gate.finish(carried, Plan(), "d-mon")
    [done] = [a for a in store.rows.values()]
    assert (done.state, done.executed_by) == ("executed", "d-mon")


def test_a_carried_purchase_waits_while_the_guard_forbids_new_risk(bundled):
    first = _decision("d-q1", _a("buy_leap"))
    gate, store, receipt, _ = _gate(bundled, first, "auto-approve")
    gate.tick(T0)
    gate.gate(first, receipt, T0)  # approved by policy, but its plan was rejected (no funds)
    gate.settle(Plan(rejections=(_rejection(0),)), "d-q1")
    assert store.open_approvals()[0].state == "approved"
    safe = _decision("d-safe", _a("enter_safe_mode", why="vix_safe"))
    safe = safe.model_copy(update={"derived": {"market": {"mode": "safe"}, "accounts": {}}})
    assert gate.carried(safe, risk.GuardState()) == []  # SAFE: no LEAP purchase now
    assert len(gate.carried(_decision("d-calm", _a("skip_entry")), risk.GuardState())) == 1


def test_the_same_request_is_not_made_twice_while_one_is_open(bundled):
    first = _decision("d-1", _a("fork_account", amount=100000, creates="mini"))
    gate, store, receipt, log = _gate(bundled, first)
    gate.tick(T0)
    gate.gate(first, receipt, T0)
    second = _decision("d-2", _a("fork_account", amount=100000, creates="mini"),
                       as_of=T0 + timedelta(minutes=5))  # fmt: skip
    r2 = log.record(second, "text")
    gate.tick(T0 + timedelta(minutes=5))
    planned, held = gate.gate(second, r2, T0 + timedelta(minutes=5))
    assert len(store.rows) == 1 and not planned.verdicts[0].approved
    assert "waiting for approval" in held.rejections[0].detail
    other = _decision("d-3", _a("fork_account", amount=500000, creates="full"))
    r3 = log.record(other, "text")
    gate.gate(other, r3, T0 + timedelta(minutes=10))
    assert len(store.rows) == 2  # another subject: another request


def _rejection(i: int):
    from engine.execution.plan import Rejection

    return Rejection(i, "buy_leap", "COM", None, "no-leap-funds", "")


def _records(a):
    from engine.execution.approvals import alert_of, link_of

    return link_of(a), (alert_of(a),)
