"""Replay re-runs the whole pipeline (rules, then the risk review with the inputs it recorded)
and compares everything: every decision of a real backtest replays identical, and a record
whose review does not follow from its inputs is named at the first differing field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.storage.audit_store import AuditQuery, AuditStore
from constitution.load import bundled_path, load_constitution_text
from engine.clock import FixedClock
from engine.cycle import pipeline
from engine.execution.risk import GuardState
from engine.facts.load import load_facts
from engine.records.audit import AuditRecord, RunMode
from engine.records.log import InMemoryDecisionLog
from engine.records.replay import replay
from scheduler.cli import main
from tests.audit.test_audit_cli import EXAMPLES


@pytest.fixture(scope="module")
def backtest_db(tmp_path_factory) -> str:
    """Two weeks of the paper pipeline on synthetic data: trades, fills, denials."""
    db = str(tmp_path_factory.mktemp("bt") / "bt.db")
    argv = ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-12"]
    assert main([*argv, "--db", db, "--no-progress"]) == 0
    return db


def _decisions(db: str) -> list[AuditRecord]:
    store = AuditStore.open(db, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), create=False)
    try:
        return list(store.iter_records(AuditQuery(record_type="decision", limit=None)))
    finally:
        store.close()


def test_every_decision_of_a_backtest_replays_identical(backtest_db, capsys):
    records = _decisions(backtest_db)
    traded = [r for r in records if any(v.approved for v in r.decision.verdicts)]
    reviewed = [r for r in records if r.decision.review is not None]
    capsys.readouterr()

    code = main(["audit", "replay", "--all", "--db", backtest_db, "--json"])

    result = json.loads(capsys.readouterr().out)
    assert code == 0, result["different"][:3]
    assert result["replayed"] == len(records) == result["identical"]
    assert traded and len(reviewed) == len(records)  # every cycle decision had a risk review


def test_one_traded_backtest_decision_replays_identical_by_id(backtest_db, capsys):
    record = next(r for r in _decisions(backtest_db) if r.decision.verdicts)
    capsys.readouterr()
    assert main(["audit", "replay", record.decision_id, "--db", backtest_db]) == 0
    assert capsys.readouterr().out.startswith(f"identical: #{record.seq}")


def test_replay_needs_an_id_or_all(backtest_db, capsys):
    assert main(["audit", "replay", "--db", backtest_db]) == 2
    assert "needs a decision ID or --all" in capsys.readouterr().err


def _recorded(decision) -> AuditRecord:
    log = InMemoryDecisionLog(RunMode.PAPER, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    log.record(decision, "text")
    return AuditRecord.from_row(log.rows[0])


@pytest.fixture(scope="module")
def constitution():
    return load_constitution_text(bundled_path().read_text("utf-8"), "bundled")


@pytest.fixture(scope="module")
def calm(constitution):
    facts = load_facts(EXAMPLES / "facts-calm-thursday.yaml")
    decision = pipeline.decide(constitution, facts, GuardState(accounts=3))
    assert any(a.kind == "open_short_put" for a in decision.actions)
    return decision


def _replayed(constitution, decision):
    return replay(_recorded(decision), "text", lambda t, s: constitution, pipeline.redecide)


def test_a_reviewed_decision_replays_with_the_guard_it_recorded(constitution, calm):
    latched = pipeline.decide(
        constitution, load_facts(EXAMPLES / "facts-calm-thursday.yaml"), GuardState("safe", True, 3)
    )
    entries = [i for i, a in enumerate(latched.actions) if a.kind == "open_short_put"]
    assert entries and not any(latched.verdicts[i].approved for i in entries)  # SAFE: no new risk

    assert _replayed(constitution, latched).identical
    assert _replayed(constitution, calm).identical


def test_verdicts_that_do_not_follow_from_the_recorded_guard_are_named(constitution, calm):
    # The record says the guard saw a latched SAFE, yet entries were approved.
    forged_review = calm.review.model_copy(
        update={"guard": {**calm.review.guard, "mode": "safe", "latched": True}}
    )
    forged = calm.model_copy(update={"review": forged_review})

    result = _replayed(constitution, forged)

    first = next(i for i, a in enumerate(calm.actions) if a.kind == "open_short_put")
    assert not result.identical
    assert result.first_difference == f"verdicts[{first}].approved"


def test_limits_are_compared_too(constitution, calm):
    forged_review = calm.review.model_copy(
        update={"limits": {**calm.review.limits, "deployment_factor": 0.5}}
    )
    result = _replayed(constitution, calm.model_copy(update={"review": forged_review}))
    assert result.first_difference == "review.limits.deployment_factor"


def test_a_dry_run_decision_has_no_review_and_replays_without_one(constitution):
    facts = load_facts(EXAMPLES / "facts-calm-thursday.yaml")
    dry = pipeline.decide(constitution, facts, None)
    assert dry.review is None and dry.verdicts == ()
    assert _replayed(constitution, dry).identical


def test_paper_decisions_replay_identical(tmp_path, capsys):
    db = str(tmp_path / "paper.db")
    for day, at in (("2024-01-02", "10:00"), ("2024-01-03", "10:00"), ("2024-01-05", "15:00")):
        argv = ["paper", "step", "--synthetic", "7", "--date", day, "--time", at, "--db", db]
        assert main(argv) == 0
    records = _decisions(db)
    assert {r.mode.value for r in records} == {"paper"} and any(
        r.decision.verdicts for r in records
    )
    capsys.readouterr()
    assert main(["audit", "replay", "--all", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["identical"] == len(records)
    assert main(["audit", "verify", "--db", db, "--require-checkpoint"]) == 0
