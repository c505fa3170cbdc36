"""Done-when of issue 20, approvals: a fork in a paper run waits for approval, executes after
``alluse approvals approve``, is declined on expiry (and by ``deny``), each answer recorded
in the audit log with who and why.

The paper pipeline (open_paper_cycle: SQLite ledger, paper broker, audit log, approval gate
answered by a person) over the execution tests' synthetic week; the constitution forks Gen-Acc
every $500 over its base so the week's premium makes one (Friday 10:00)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.storage.approvals_store import SqlApprovalStore
from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.outbox import SqlOutbox
from constitution.load import bundled_path, load_constitution_text
from engine.clock import WallClock
from engine.cycle.bootstrap import Portfolio, open_portfolio
from engine.execution.approvals import parse_policy
from scheduler.cli import main
from scheduler.compose import open_paper_cycle
from tests.execution import helpers

FRIDAY = helpers.WEEK + timedelta(days=4)
BEFORE_FORK = [t for t in helpers.week_times() if t < helpers.at(FRIDAY, 10)]


def _constitution(wait_minutes: int = 1440):
    text = bundled_path().read_text("utf-8")
    text = text.replace("fork: {every: 100000, creates: mini}", "fork: {every: 500, creates: mini}")
    text = text.replace("wait_minutes: 1440", f"wait_minutes: {wait_minutes}")
    return load_constitution_text(text, "fork-500.yaml")


def _run(url: str, constitution):
    m = helpers.market()
    cycle, broker, store = open_paper_cycle(
        url, m, constitution=constitution, approvals=parse_policy("person")
    )
    t0 = helpers.at(helpers.WEEK, 9, 40)
    broker.sync(t0, m.snapshot(t0, cycle.symbols, cycle.params))
    open_portfolio(cycle, Portfolio(helpers.CAPITAL, helpers.WEEK), t0, broker.seed_position)
    for at in BEFORE_FORK:
        cycle.run(at)
    return cycle, store


def _approvals(url: str):
    audit = AuditStore.open(url, WallClock())
    store = SqlApprovalStore(audit)
    try:
        return store.listed(limit=100)
    finally:
        audit.close()


def _notes(url: str, approval_id: str):
    audit = AuditStore.open(url, WallClock())
    try:
        return [
            r.link.data
            for r in audit.query(AuditQuery(record_type="link", limit=None))
            if r.link.ref == f"approval:{approval_id}"
        ]
    finally:
        audit.close()


def _alert_keys(url: str) -> list[str]:
    outbox = SqlOutbox.open(url, WallClock())
    try:
        return [x.alert.key for x in outbox.listed(limit=100)]
    finally:
        outbox.close()


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'paper.db'}"


def test_a_fork_waits_for_a_person_and_executes_after_approve(url, capsys):
    cycle, store = _run(url, _constitution())
    report = cycle.run(helpers.at(FRIDAY, 10))
    assert report.action_counts.get("fork_account") == 1
    [request] = _approvals(url)
    assert (request.state, request.action.kind, request.action.account) == (
        "pending", "fork_account", "GEN",
    )  # fmt: skip
    assert "MINI-1" not in store.state.accounts  # it waits ...
    assert f"alluse:{request.id}:pending" in _alert_keys(url)  # ... and a person is told
    cycle.run(helpers.at(FRIDAY, 12))
    assert "MINI-1" not in store.state.accounts and len(_approvals(url)) == 1  # no second request

    code = main(["approvals", "approve", request.id, "--reason", "fork checked", "--by", "ana",
                 "--db", url])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    later = cycle.run(helpers.at(FRIDAY, 16, 45))

    assert store.state.accounts["MINI-1"].kind == "mini"  # carried out at the next cycle
    [done] = _approvals(url)
    assert (done.state, done.by, done.reason, done.executed_by) == (
        "executed", "ana", "fork checked", later.decision_id,
    )  # fmt: skip
    events = [n["event"] for n in _notes(url, request.id)]
    assert events == ["approval_requested", "approval_approved", "approval_executed"]
    assert {f"alluse:{request.id}:{s}" for s in ("approved", "executed")} <= set(_alert_keys(url))
    approved = _notes(url, request.id)[1]
    assert (approved["by"], approved["reason"]) == ("ana", "fork checked")


def test_a_fork_nobody_answers_is_declined_when_its_wait_is_over(url):
    cycle, store = _run(url, _constitution(wait_minutes=120))
    cycle.run(helpers.at(FRIDAY, 10))
    [request] = _approvals(url)
    cycle.run(request.expires_at - timedelta(seconds=1))
    assert _approvals(url)[0].state == "pending"  # just before its time is up
    cycle.run(request.expires_at)

    [expired] = _approvals(url)
    assert (expired.state, expired.by) == ("expired", "expiry")
    assert "MINI-1" not in store.state.accounts
    assert [n["event"] for n in _notes(url, request.id)] == [
        "approval_requested",
        "approval_expired",
    ]
    report = cycle.run(helpers.at(FRIDAY, 16, 45))  # the rule asks again the same day ...
    assert report.action_counts.get("fork_account") == 1
    assert len(_approvals(url)) == 1 and "MINI-1" not in store.state.accounts  # ... held


def test_a_denied_fork_is_not_carried_out_and_the_answer_is_recorded(url, capsys):
    cycle, store = _run(url, _constitution())
    cycle.run(helpers.at(FRIDAY, 10))
    [request] = _approvals(url)
    assert main(["approvals", "deny", request.id, "--reason", "not now", "--by", "bo",
                 "--db", url]) == 0  # fmt: skip
    assert main(["approvals", "approve", request.id, "--reason", "changed my mind",
                 "--db", url]) == 2  # fmt: skip
    cycle.run(helpers.at(FRIDAY, 16, 45))

    assert "MINI-1" not in store.state.accounts
    [declined] = _approvals(url)
    assert (declined.state, declined.by, declined.reason) == ("declined", "bo", "not now")
    assert [n["event"] for n in _notes(url, request.id)] == [
        "approval_requested",
        "approval_declined",
    ]
    assert "is declined, not pending" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("policy", "forked_at"),
    [("auto-approve", (10, 0)), ("approve-after:60", (16, 45)), ("auto-deny", None)],
)
def test_a_backtest_answers_by_its_declared_policy_on_the_replay_clock(tmp_path, policy, forked_at):
    """Backtests stay deterministic: the policy answers at the request (auto-approve: the fork
    is in the same cycle's plan; auto-deny: never) or N minutes later on the replay clock (the
    first cycle at or after it: 16:45)."""
    runs = []
    for n in range(2):
        url = f"sqlite:///{tmp_path / f'bt{n}.db'}"
        m = helpers.market()
        cycle, broker, store = open_paper_cycle(
            url, m, mode="backtest", constitution=_constitution(), approvals=parse_policy(policy)
        )
        t0 = helpers.at(helpers.WEEK, 9, 40)
        broker.sync(t0, m.snapshot(t0, cycle.symbols, cycle.params))
        open_portfolio(cycle, Portfolio(helpers.CAPITAL, helpers.WEEK), t0, broker.seed_position)
        forked, decisions = None, []
        for at in [*BEFORE_FORK, helpers.at(FRIDAY, 10), helpers.at(FRIDAY, 16, 45)]:
            decisions.append(cycle.run(at).decision_id)
            if forked is None and "MINI-1" in store.state.accounts:
                forked = (at.hour, at.minute)
        runs.append((forked, decisions, [(a.state, a.by) for a in _approvals(url)]))
    assert runs[0] == runs[1]  # the same answers, the same decisions, every time
    forked, _, answers = runs[0]
    assert forked == forked_at
    expected = {"auto-approve": "executed", "approve-after:60": "executed", "auto-deny": "declined"}
    # every request answered by the declared policy (the $500 test fork can ask again after
    # it has executed, when the Friday close adds another $500)
    assert answers and set(answers) == {(expected[policy], f"policy:{policy}")}
