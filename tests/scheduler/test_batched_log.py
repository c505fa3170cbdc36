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
    url = f"sqlite:///{tmp_path / 'a.db'}"
    log = CycleBatchedLog(AuditStore.open(url, clock), RunMode.BACKTEST)
    elsewhere = AuditStore.open(url, clock)  # another store on the database (not this log's)
    decision = evaluate(bundled, facts_with())
    receipt = log.record(decision, bundled.text)
    assert receipt.seq == 1 and elsewhere.count() == 0  # kept, not yet written
    again = log.record(decision, bundled.text)  # idempotent within the cycle
    assert (again.seq, again.hash, again.created) == (receipt.seq, receipt.hash, False)
    other = SqlDecisionLog(elsewhere, RunMode.BACKTEST)  # a writer the log does not know of
    other.record(evaluate(bundled, facts_with({"market": {"vix": 52}})), bundled.text)
    log.link(ExecutionLink(decision_id=decision.decision_id, kind="note", ref="x"))
    log.flush()
    assert elsewhere.count() == 3 and elsewhere.verify().ok
    assert [r.decision_id for r in elsewhere.rows()][1] == decision.decision_id


def test_cycles_are_kept_until_a_write_is_due_and_a_writer_on_the_store_goes_after(
    tmp_path, bundled, facts_with, monkeypatch
):
    """D211: ended cycles wait (one commit for many); a note on the same store, a read, or
    CYCLES_PER_COMMIT ended cycles write them first, in the order they happened."""
    from engine.records.audit import ExecutionLink, RunMode
    from engine.rules.evaluate import evaluate
    from scheduler import batched_log

    monkeypatch.setattr(batched_log, "CYCLES_PER_COMMIT", 3)
    clock = FixedClock(datetime(2026, 11, 17, 17, tzinfo=UTC))
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = AuditStore.open(url, clock)
    log = CycleBatchedLog(store, RunMode.BACKTEST)
    elsewhere = AuditStore.open(url, clock)
    decisions = [evaluate(bundled, facts_with({"market": {"vix": v}})) for v in (14, 15, 16, 17)]
    for d in decisions[:2]:
        log.record(d, bundled.text)
        log.end_cycle()
    assert elsewhere.count() == 0  # two ended cycles kept
    note = ExecutionLink(decision_id=decisions[0].decision_id, kind="note", ref="weekly")
    SqlDecisionLog(store, RunMode.BACKTEST).link(note)  # the weekly note's writer
    assert [(r.decision_id, r.record_type) for r in elsewhere.rows()] == [
        (decisions[0].decision_id, "decision"),
        (decisions[1].decision_id, "decision"),
        (decisions[0].decision_id, "link"),
    ]
    log.record(decisions[2], bundled.text)
    log.end_cycle()
    log.record(decisions[3], bundled.text)
    log.end_cycle()
    assert elsewhere.count() == 3  # two more kept: the limit is three
    assert store.count() == 5  # a read on the log's own store sees everything
    log.record(decisions[0], bundled.text)  # written before: found, not recorded again
    for _ in range(3):
        log.end_cycle()  # quiet ticks that change nothing count for no write
    assert elsewhere.count() == 5 and elsewhere.verify().ok


def test_the_third_kept_cycle_writes_all_three(tmp_path, bundled, facts_with, monkeypatch):
    from engine.records.audit import RunMode
    from engine.rules.evaluate import evaluate
    from scheduler import batched_log

    monkeypatch.setattr(batched_log, "CYCLES_PER_COMMIT", 3)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    clock = FixedClock(datetime(2026, 11, 17, 17, tzinfo=UTC))
    log = CycleBatchedLog(AuditStore.open(url, clock), RunMode.BACKTEST)
    elsewhere = AuditStore.open(url, clock)
    for vix, written in ((14, 0), (15, 0), (16, 3)):  # at the limit, and not before it
        log.record(evaluate(bundled, facts_with({"market": {"vix": vix}})), bundled.text)
        log.end_cycle()
        assert elsewhere.count() == written


def test_a_decision_already_in_the_log_refuses_the_cycle(tmp_path, bundled, facts_with):
    from engine.records.audit import RunMode
    from engine.rules.evaluate import evaluate

    store = AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", WallClock())
    decision = evaluate(bundled, facts_with())
    SqlDecisionLog(store, RunMode.BACKTEST).record(decision, bundled.text)
    log = CycleBatchedLog(store, RunMode.BACKTEST)  # a log that has not seen it
    log.record(decision, bundled.text)
    with pytest.raises(StorageError, match="already in the log"):
        log.flush()
    assert store.count() == 1


def test_a_link_to_an_unknown_decision_is_refused(tmp_path):
    from engine.records.audit import ExecutionLink, RunMode, UnknownDecision

    store = AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", WallClock())
    log = CycleBatchedLog(store, RunMode.BACKTEST)
    with pytest.raises(UnknownDecision):
        log.link(ExecutionLink(decision_id="d-none", kind="note", ref="x"))


@pytest.mark.slow
def test_a_backtest_that_fails_keeps_the_cycles_that_ended(bundled, tmp_path):
    """D211: the kept cycles are written when a cycle raises; the log is the uninterrupted
    run's up to the failing cycle's decision, and it verifies with its ledger."""
    from scheduler.cli import main

    full, cut = tmp_path / "full.db", tmp_path / "cut.db"
    run_backtest(
        bundled, FIRST, LAST, f"sqlite:///{full}", compose.paper_cycle_factory, synthetic_seed=7
    )
    failed: list[str] = []

    def failing(ctx):
        build = compose.paper_cycle_factory(ctx)

        def make(constitution):
            opening = build(constitution)
            executor = opening.cycle.executor
            real, calls = executor.execute, []

            def execute(decision, *args):
                calls.append(decision.decision_id)
                if len(calls) == 20:
                    failed.append(decision.decision_id)
                    raise RuntimeError("the broker fell over")
                return real(decision, *args)

            executor.execute = execute
            return opening

        make.close = build.close  # type: ignore[attr-defined]
        return make

    with pytest.raises(RuntimeError, match="fell over"):
        run_backtest(bundled, FIRST, LAST, f"sqlite:///{cut}", failing, synthetic_seed=7)
    rows_full, rows_cut = _rows(f"sqlite:///{full}"), _rows(f"sqlite:///{cut}")
    assert rows_cut == rows_full[: len(rows_cut)]
    decisions = [r.decision_id for r in rows_cut if r.record_type == "decision"]
    assert len(decisions) >= 20 and decisions[-1] == failed[0]
    assert main(["audit", "verify", "--db", str(cut)]) == 0  # chain and ledger tables agree


@pytest.fixture
def pg_url():
    from tests import postgres

    yield from postgres.fresh_schema("alluse_bt")


@pytest.mark.slow
def test_a_backtest_on_postgresql_writes_the_chain_it_writes_on_sqlite(bundled, tmp_path, pg_url):
    """D211's week-long transactions on PostgreSQL (its table locks, no raw driver): the
    same records, hashes and stamps as on SQLite, and the ledger verifies."""
    from scheduler.cli import main

    lite = f"sqlite:///{tmp_path / 'bt.db'}"
    run_backtest(bundled, FIRST, LAST, lite, compose.paper_cycle_factory, synthetic_seed=7)
    summary = run_backtest(
        bundled, FIRST, LAST, pg_url, compose.paper_cycle_factory, synthetic_seed=7
    )
    assert summary.decided > 20
    assert _rows(pg_url) == _rows(lite)
    assert main(["audit", "verify", "--db", pg_url]) == 0
