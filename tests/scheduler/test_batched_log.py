"""A backtest writes each cycle's audit records in one transaction (D93), and the chain is the
one record-by-record writing gives: same rows, same hashes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.storage.audit_store import AuditStore, SqlDecisionLog
from adapters.storage.errors import StorageError
from engine.clock import FixedClock, WallClock
from scheduler import compose
from scheduler.backtest import run_backtest
from scheduler.batched_log import CycleBatchedLog

FIRST, LAST = date(2024, 1, 2), date(2024, 1, 10)


@pytest.fixture
def facts_with():
    from constitution.yamlsafe import load_file
    from engine.facts.load import facts_from_data
    from scheduler.scenarios import _overlay
    from tests.engine.conftest import BASE

    base = load_file(BASE).data
    return lambda overlay=None: facts_from_data(_overlay(base, overlay or {}))


def _unbatched(ctx):
    build = compose.paper_cycle_factory(ctx)

    def make(constitution):
        opening = build(constitution)
        cycle = opening.cycle
        assert isinstance(cycle.log, CycleBatchedLog)  # what a backtest gets by default
        cycle.log = cycle.executor.log = SqlDecisionLog(cycle.log.store, ctx.mode)
        return opening

    return make


def _rows(url):
    store = AuditStore.open(url, WallClock())
    try:
        return list(store.rows())
    finally:
        store.close()


@pytest.mark.slow
def test_one_transaction_per_cycle_writes_the_same_chain(bundled, tmp_path, monkeypatch):
    commits = {"batched": 0}
    real = AuditStore.append_drafts

    def counted(self, drafts, mode, constitutions, *alongside):
        commits["batched"] += 1
        return real(self, drafts, mode, constitutions, *alongside)

    monkeypatch.setattr(AuditStore, "append_drafts", counted)
    a, b = f"sqlite:///{tmp_path / 'batched.db'}", f"sqlite:///{tmp_path / 'single.db'}"
    batched = run_backtest(bundled, FIRST, LAST, a, compose.paper_cycle_factory, synthetic_seed=7)
    single = run_backtest(bundled, FIRST, LAST, b, _unbatched, synthetic_seed=7)
    rows_a, rows_b = _rows(a), _rows(b)
    assert rows_a == rows_b and len(rows_a) > 40
    assert batched.decided == single.decided
    assert 0 < commits["batched"] <= batched.run  # at most one commit per cycle run
    assert commits["batched"] < sum(r.record_type == "decision" for r in rows_a) + sum(
        r.record_type == "link" for r in rows_a
    )


def test_a_cycle_written_after_another_writer_still_chains(tmp_path, bundled, facts_with):
    from engine.records.audit import ExecutionLink, RunMode
    from engine.rules.evaluate import evaluate

    clock = FixedClock(datetime(2026, 11, 17, 17, tzinfo=UTC))
    store = AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", clock)
    log = CycleBatchedLog(store, RunMode.BACKTEST)
    decision = evaluate(bundled, facts_with())
    receipt = log.record(decision, bundled.text)
    assert receipt.seq == 1 and store.count() == 0  # kept, not yet written
    again = log.record(decision, bundled.text)  # idempotent within the cycle
    assert (again.seq, again.hash, again.created) == (receipt.seq, receipt.hash, False)
    other = SqlDecisionLog(store, RunMode.BACKTEST)  # e.g. the weekly note's writer
    other.record(evaluate(bundled, facts_with({"market": {"vix": 52}})), bundled.text)
    log.link(ExecutionLink(decision_id=decision.decision_id, kind="note", ref="x"))
    log.end_cycle()
    assert store.count() == 3 and store.verify().ok
    assert [r.decision_id for r in store.rows()][1] == decision.decision_id


def test_a_decision_already_in_the_log_refuses_the_cycle(tmp_path, bundled, facts_with):
    from engine.records.audit import RunMode
    from engine.rules.evaluate import evaluate

    store = AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", WallClock())
    decision = evaluate(bundled, facts_with())
    SqlDecisionLog(store, RunMode.BACKTEST).record(decision, bundled.text)
    log = CycleBatchedLog(store, RunMode.BACKTEST)  # a log that has not seen it
    log.record(decision, bundled.text)
    with pytest.raises(StorageError, match="already in the log"):
        log.end_cycle()
    assert store.count() == 1


def test_a_link_to_an_unknown_decision_is_refused(tmp_path):
    from engine.records.audit import ExecutionLink, RunMode, UnknownDecision

    store = AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", WallClock())
    log = CycleBatchedLog(store, RunMode.BACKTEST)
    with pytest.raises(UnknownDecision):
        log.link(ExecutionLink(decision_id="d-none", kind="note", ref="x"))
