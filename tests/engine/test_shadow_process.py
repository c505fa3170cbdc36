"""Paper and live run the durable-rules shadow in a child process (D200): it agrees on real
decisions, and a crash, a hang or an EngineFailure of durable-rules is a SAFE cycle with an
alert and a note - never the daemon's death, never agreement - after which the next cycle
decides again with a new child. Real processes throughout (tests/engine/shadow_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from adapters.children import ORPHANED_EXIT, PARENT_ENV
from adapters.shadow_process import ShadowProcess, describe_exit
from constitution.load import load_constitution_text
from engine.cycle import agreement
from engine.rules.durable import EngineFailure
from engine.rules.evaluate import evaluate
from engine.rules.shadow import Disagreement, ShadowFailure, decide_both
from tests.conftest import ROOT
from tests.engine.test_shadow_cycle import _action
from tests.execution import helpers
from tests.waiting import child_outlives_sigkilled_parent, linux_only

MONDAY_ENTRY = helpers.at(helpers.WEEK, 10, 0)  # Com's covered-call window: entries to trade
LATER = MONDAY_ENTRY + timedelta(minutes=5)  # the same window, the same market


def _faulty(tmp_path, **kwargs) -> tuple[ShadowProcess, object]:
    """A shadow whose child does what ``fault.write_text`` last said (once)."""
    fault = tmp_path / "fault"
    command = [sys.executable, "-m", "tests.engine.shadow_faults", str(fault)]
    return ShadowProcess(command=command, **kwargs), fault


@pytest.fixture
def shadow_of(tmp_path):
    made: list[ShadowProcess] = []

    def make(**kwargs):
        shadow, fault = _faulty(tmp_path, **kwargs)
        made.append(shadow)
        return shadow, fault

    yield make
    for shadow in made:
        shadow.close()


def _cycle(tmp_path, shadow):
    cycle, _broker, _store = helpers.open_cycle(f"sqlite:///{tmp_path / 'shadow.db'}")
    cycle.shadow = shadow
    return cycle


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _refusal(cycle, decision_id):
    """(the recorded decision, its evaluators_disagree note's data)."""
    records = cycle.log.store.for_decision(decision_id)
    decision = records[0].body["decision"]
    notes = [r.body["link"] for r in records if r.record_type.value == "link"]
    note = next(n for n in notes if n.get("ref") == "evaluators_disagree")
    return decision, note["data"]


def _assert_safe_with_alert(cycle, report):
    assert report.market_mode == "safe" and report.orders_submitted == 0
    assert cycle.broker.requests() == []
    decision, data = _refusal(cycle, report.decision_id)
    alert = decision["actions"][-1]
    assert (alert["kind"], alert["rule"], alert["params"]["severity"]) == (
        "alert",
        "engine.evaluators_disagree",
        "critical",
    )
    entries = [i for i, a in enumerate(decision["actions"]) if a["kind"] == "open_covered_call"]
    assert entries and all(not decision["verdicts"][i]["approved"] for i in entries)
    assert data["durable"] is None and data["where"].startswith("(no durable result")
    return data["failure"]


# --------------------------------------------------------------------------- agreement


def test_the_worker_agrees_with_the_compiled_path_on_a_paper_cycle(tmp_path):
    shadow = ShadowProcess()
    try:
        cycle = _cycle(tmp_path, shadow)
        report = cycle.run(MONDAY_ENTRY)
        assert cycle.disagreements == 0
        assert report.market_mode == "active" and report.orders_submitted > 0
        assert shadow.pid is not None and shadow.pid != os.getpid() and shadow.starts == 1
    finally:
        shadow.close()


def test_the_worker_gives_the_in_process_durable_decision_byte_for_byte(bundled, facts_with):
    facts = facts_with({"market": {"vix": 52}})
    shadow = ShadowProcess()
    try:
        assert shadow(bundled, facts).to_json() == evaluate(bundled, facts).to_json()
        assert decide_both(bundled, facts, shadow)[1] is None
    finally:
        shadow.close()


def test_a_new_constitution_is_loaded_by_the_same_worker(bundled, facts_with):
    edited = load_constitution_text(
        bundled.text.replace("  hedged_week: 50\n", "  hedged_week: 55\n", 1),
        "<edited>",
        released_check=False,
    )
    assert edited.digest != bundled.digest
    facts = facts_with({"market": {"vix": 52}})
    shadow = ShadowProcess()
    try:
        first = shadow(bundled, facts)
        pid = shadow.pid
        second = shadow(edited, facts)
        again = shadow(bundled, facts)
        assert second.constitution.digest == edited.digest
        assert [a.kind for a in first.actions] == ["hedged_week"]  # VIX 52 > 50
        assert "hedged_week" not in [a.kind for a in second.actions]  # 52 < 55
        assert second.to_json() == evaluate(edited, facts).to_json()
        assert again.to_json() == first.to_json()
        assert shadow.pid == pid and shadow.starts == 1  # reloaded, not restarted
    finally:
        shadow.close()


def test_output_printed_in_the_child_does_not_reach_the_protocol(shadow_of, bundled, facts_with):
    shadow, fault = shadow_of()
    facts = facts_with({"market": {"vix": 52}})
    fault.write_text("noise")
    assert decide_both(bundled, facts, shadow)[1] is None


# --------------------------------------------------------------------------- crashes


def test_a_segfault_in_the_worker_is_a_safe_cycle_and_the_next_cycle_agrees_again(
    tmp_path, shadow_of
):
    shadow, fault = shadow_of()
    cycle = _cycle(tmp_path, shadow)
    fault.write_text("segv")

    report = cycle.run(MONDAY_ENTRY)  # the child dies mid-evaluation; this process goes on

    failure = _assert_safe_with_alert(cycle, report)
    assert failure["kind"] == "crash"
    assert (failure["exit_code"], failure["signal"]) == (-11, "SIGSEGV")
    assert any("Segmentation fault" in line for line in failure["stderr"])  # faulthandler
    assert not _alive(failure["pid"]) and shadow.pid is None
    assert cycle.disagreements == 1

    later = cycle.run(LATER)  # not a quiet repeat of the SAFE tick: decided again, agreed

    assert later.decision_id != report.decision_id and not later.quiet
    assert later.market_mode == "active" and later.orders_submitted > 0
    assert cycle.disagreements == 1 and shadow.starts == 2
    assert shadow.pid is not None and shadow.pid != failure["pid"]


@pytest.mark.parametrize(("fault", "name"), [("kill", "SIGKILL"), ("abort", "SIGABRT")])
def test_a_worker_killed_mid_evaluation_is_a_disagreement_with_its_signal(
    shadow_of, bundled, facts_with, fault, name
):
    shadow, faults = shadow_of()
    facts = facts_with({"market": {"vix": 52}})
    faults.write_text(fault)
    compiled, disagreement = decide_both(bundled, facts, shadow)
    assert disagreement is not None and disagreement.durable is None
    assert disagreement.failure.kind == "crash"
    assert disagreement.failure.detail["signal"] == name
    assert compiled.to_json() == evaluate(bundled, facts).to_json()
    assert decide_both(bundled, facts, shadow)[1] is None  # a new child, agreeing
    assert shadow.starts == 2


def test_a_worker_that_died_between_decisions_is_replaced_without_a_disagreement(
    bundled, facts_with
):
    facts = facts_with({"market": {"vix": 52}})
    shadow = ShadowProcess()
    try:
        assert decide_both(bundled, facts, shadow)[1] is None
        first = shadow.pid
        os.kill(first, signal.SIGKILL)
        for _ in range(1000):  # until it has exited: ``pid`` is None once its exit is seen
            if shadow.pid is None:
                break
            time.sleep(0.01)
        assert decide_both(bundled, facts, shadow)[1] is None  # nothing was asked of it
        assert shadow.starts == 2 and shadow.pid != first
    finally:
        shadow.close()


# --------------------------------------------------------------------------- timeout, failure


def test_a_worker_that_does_not_answer_in_time_is_killed_and_the_cycle_is_safe(tmp_path, shadow_of):
    shadow, fault = shadow_of(timeout=5.0)
    cycle = _cycle(tmp_path, shadow)
    fault.write_text("hang")

    report = cycle.run(MONDAY_ENTRY)

    failure = _assert_safe_with_alert(cycle, report)
    assert (failure["kind"], failure["seconds"]) == ("timeout", 5.0)
    assert not _alive(failure["pid"])  # killed, and reaped
    later = cycle.run(LATER)
    assert later.market_mode == "active" and later.orders_submitted > 0
    assert shadow.starts == 2


def test_an_engine_failure_in_the_worker_is_a_safe_cycle_with_its_message(tmp_path, shadow_of):
    shadow, fault = shadow_of()
    cycle = _cycle(tmp_path, shadow)
    fault.write_text("engine_failure")

    report = cycle.run(MONDAY_ENTRY)

    failure = _assert_safe_with_alert(cycle, report)
    assert failure["kind"] == "engine_failure" and failure["type"] == "EngineFailure"
    assert "injected by the test" in failure["message"]
    decision, _ = _refusal(cycle, report.decision_id)
    assert "engine_failure" in decision["actions"][-1]["params"]["message"]
    assert cycle.run(LATER).orders_submitted > 0
    assert shadow.starts == 2  # a child whose durable failed is not asked again


def test_an_engine_failure_in_process_is_a_disagreement_not_a_stopped_cycle(tmp_path):
    def failing(constitution, facts, **kwargs):
        raise EngineFailure("durable-rules failed in stratum 1: error 311")

    cycle = _cycle(tmp_path, failing)
    report = cycle.run(MONDAY_ENTRY)
    failure = _assert_safe_with_alert(cycle, report)
    assert failure == {
        "kind": "engine_failure",
        "message": "durable-rules failed in stratum 1: error 311",
    }


# --------------------------------------------------------------------------- risk-reducing, close


def test_without_a_durable_result_the_compiled_risk_reducing_actions_stand():
    from tests.engine.test_shadow_cycle import _decision

    exit_ = _action("close_position", "protocol.l3", "p1", urgency="market", why="l3_stop_loss")
    entry = _action("open_short_put", "entry.csp.gen", delta={"min": 0.4, "max": 0.45})
    compiled = _decision([exit_, entry])
    crashed = Disagreement(compiled, None, ShadowFailure("crash", "died", {"exit_code": -11}))
    refused = agreement.refuse(compiled, crashed)
    assert [v.approved for v in refused.verdicts] == [True, False, True]
    assert refused.review.limits["market_mode"] == "safe"
    assert refused.actions[-1].params["severity"] == "critical"
    note = agreement.note(refused, crashed).data
    assert note["failure"] == {"kind": "crash", "message": "died", "exit_code": -11}


def test_close_ends_the_worker_and_leaves_no_process(bundled, facts_with):
    shadow = ShadowProcess()
    shadow(bundled, facts_with({"market": {"vix": 52}}))
    pid = shadow.pid
    assert pid is not None and _alive(pid)
    shadow.close()
    assert not _alive(pid) and shadow.pid is None
    shadow.close()  # twice is harmless


def test_describe_exit_names_the_signal():
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(1) == "exit code 1"


# --------------------------------------------------------------------------- composition


def test_paper_and_live_decide_with_the_child_process_and_backtests_in_this_one():
    from engine.records.audit import RunMode
    from scheduler import compose

    assert isinstance(compose.shadow_for(RunMode.PAPER), ShadowProcess)
    assert isinstance(compose.shadow_for(RunMode.LIVE), ShadowProcess)
    assert compose.shadow_for(RunMode.BACKTEST) is None
    assert compose.shadow_for(RunMode.BACKTEST, shadow=True) is evaluate


def test_the_paper_daemons_builder_runs_the_child_and_its_close_ends_it(tmp_path, bundled):
    from engine.clock import FixedClock
    from engine.records.audit import RunMode
    from scheduler import compose

    ctx = compose.CycleContext(
        db_url=f"sqlite:///{tmp_path / 'paper.db'}",
        mode=RunMode.PAPER,
        clock=FixedClock(MONDAY_ENTRY),
        synthetic_seed=helpers.SEED,
    )
    build = compose.paper_cycle_factory(ctx)
    assert build.shadow.pid is None  # nothing started before a decision
    opening = build(bundled)
    report = opening.run(MONDAY_ENTRY)
    pid = build.shadow.pid
    assert pid is not None and _alive(pid) and pid != os.getpid()
    assert report.market_mode == "active" and opening.cycle.disagreements == 0
    build.close()  # what the daemon's shutdown calls
    assert not _alive(pid)


# --------------------------------------------------------------------------- parent death


# A daemon in miniature: the production class starts the child (from this main thread), whose
# evaluation hangs (the ``hang`` fault: it reads no more stdin, as one stuck in durable's C
# code); its pid is printed once the child has taken the fault.
PARENT = """
import sys, threading, time
from pathlib import Path
from adapters.shadow_process import ShadowProcess
from constitution.load import bundled_path, load_constitution
from constitution.yamlsafe import load_file
from engine.facts.load import facts_from_data

fault, base = Path(sys.argv[1]), Path(sys.argv[2])
shadow = ShadowProcess(
    timeout=600, command=[sys.executable, "-m", "tests.engine.shadow_faults", str(fault)]
)
constitution, facts = load_constitution(bundled_path()), facts_from_data(load_file(base).data)

def report():
    while shadow.pid is None or fault.exists():
        time.sleep(0.01)
    print(shadow.pid, flush=True)

fault.write_text("hang")
threading.Thread(target=report, daemon=True).start()
shadow(constitution, facts)
"""


@linux_only
def test_a_hung_worker_dies_with_its_sigkilled_parent(tmp_path):
    from tests.engine.conftest import BASE

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    # two interpreters' imports and a constitution before the pid
    args = [str(tmp_path / "fault"), str(BASE)]
    assert not child_outlives_sigkilled_parent(script, args, ROOT, wait=120)


@linux_only
def test_a_worker_whose_named_parent_is_not_its_parent_exits_at_once():
    """The parent died before the child's prctl: the child, re-parented, exits with
    ORPHANED_EXIT and serves nothing (no ready line), its stdin still open."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a parent that has ended, by its pid
    child = subprocess.Popen(
        [sys.executable, "-m", "adapters.shadow_process"],
        cwd=ROOT,
        env={**os.environ, PARENT_ENV: str(gone.pid)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.wait(timeout=60) == ORPHANED_EXIT  # 1: it did not serve
        assert child.stdout.read() == b""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdin.close()
        child.stdout.close()
