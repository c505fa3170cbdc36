"""The store on a real database (a SQLite file, and PostgreSQL found by tests.postgres)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import CONSTITUTION_TEXT, make_decision

from adapters.storage import audit_schema
from adapters.storage.audit_store import AuditQuery, AuditStore, SqlDecisionLog, open_decision_log
from adapters.storage.database import create_db_engine, default_db_path, resolve_url
from adapters.storage.errors import AppendOnlyViolation, SchemaTooNew, StorageError
from adapters.storage.migrations import Migration, current_versions, migrate, register
from engine.records.audit import DecisionConflict, ExecutionLink, RunMode, UnknownDecision
from engine.records.decision import ConstitutionRef
from engine.records.log import DecisionLog
from tests import postgres


def test_a_recorded_decision_reads_back_exactly(store):
    decision = make_decision(1)
    receipt = store.append_decision(decision, RunMode.PAPER, CONSTITUTION_TEXT)
    record = store.get(receipt.seq)
    assert record.decision == decision
    assert (record.seq, record.hash, record.mode, record.decision_id) == (
        1,
        receipt.hash,
        RunMode.PAPER,
        decision.decision_id,
    )
    assert record.recorded_at == "2026-01-05T15:00:00.000000Z"
    assert store.verify().ok


def test_recording_is_idempotent_per_decision_and_mode(store):
    decision = make_decision(1)
    first = store.append_decision(decision, RunMode.PAPER, CONSTITUTION_TEXT)
    again = store.append_decision(decision, RunMode.PAPER, CONSTITUTION_TEXT)
    backtest = store.append_decision(decision, RunMode.BACKTEST, CONSTITUTION_TEXT)
    assert (again.seq, again.created) == (first.seq, False)
    assert (backtest.seq, backtest.created) == (2, True)
    assert store.count() == 2


def test_a_different_decision_under_a_recorded_id_is_refused(store):
    decision = make_decision(1)
    store.append_decision(decision, RunMode.PAPER, CONSTITUTION_TEXT)
    with pytest.raises(DecisionConflict):
        store.append_decision(
            decision.model_copy(update={"derived": {}}), RunMode.PAPER, CONSTITUTION_TEXT
        )
    assert store.count() == 1


def test_links_are_appended_as_records_of_their_own(store):
    decision = make_decision(1)
    first = store.append_decision(decision, RunMode.LIVE, CONSTITUTION_TEXT)
    order = store.append_link(
        ExecutionLink(decision_id=decision.decision_id, kind="order", ref="c-1", data={"qty": 1}),
        RunMode.LIVE,
    )
    fill = store.append_link(
        ExecutionLink(
            decision_id=decision.decision_id, kind="fill", ref="c-1", data={"price": 2.1}
        ),
        RunMode.LIVE,
    )
    records = store.for_decision(decision.decision_id)
    assert [r.seq for r in records] == [1, 2, 3] and (order.seq, fill.seq) == (2, 3)
    assert records[0].hash == first.hash and records[0].decision == decision
    assert [r.link.kind for r in records[1:]] == ["order", "fill"]
    assert store.verify().ok


def test_a_link_to_an_unrecorded_decision_writes_nothing(store):
    with pytest.raises(UnknownDecision):
        store.append_link(ExecutionLink(decision_id="d-nothing", kind="order"), RunMode.PAPER)
    assert store.count() == 0


def test_constitution_text_is_stored_once_per_digest(store):
    other = ConstitutionRef(version="1.4", digest="sha256:" + "d4" * 32)
    store.append_decision(make_decision(1), RunMode.PAPER, CONSTITUTION_TEXT)
    store.append_decision(make_decision(2), RunMode.PAPER, "ignored: this digest is stored")
    store.append_decision(make_decision(3, constitution=other), RunMode.PAPER, "v1.4 text")
    assert store.constitution_text(make_decision(1).constitution.digest) == CONSTITUTION_TEXT
    assert store.constitution_text(other.digest) == "v1.4 text"
    assert store.constitution_text("sha256:unknown") is None


def test_batch_append_is_chained_and_skips_decisions_already_recorded(store):
    store.append_decision(make_decision(0), RunMode.BACKTEST, CONSTITUTION_TEXT)
    texts = {make_decision(0).constitution.digest: CONSTITUTION_TEXT}
    receipts = store.append_decisions([make_decision(i) for i in range(4)], RunMode.BACKTEST, texts)
    assert [(r.seq, r.created) for r in receipts] == [(1, False), (2, True), (3, True), (4, True)]
    assert store.verify().count == 4


def test_list_filters_by_account_rule_kind_mode_time_and_limit(store):
    store.append_decision(
        make_decision(1, account="GEN", kind="open_put", rule="entry"),
        RunMode.PAPER,
        CONSTITUTION_TEXT,
    )
    store.append_decision(
        make_decision(2, account="REV", kind="roll", rule="atr level"),
        RunMode.PAPER,
        CONSTITUTION_TEXT,
    )
    store.append_decision(
        make_decision(3, account="MINI-1", kind="roll", rule="atr level"),
        RunMode.BACKTEST,
        CONSTITUTION_TEXT,
    )
    store.append_link(
        ExecutionLink(decision_id=make_decision(1).decision_id, kind="order"), RunMode.PAPER
    )

    def seqs(**kw):
        return [r.seq for r in store.query(AuditQuery(**kw))]

    assert seqs() == [1, 2, 3]
    assert seqs(account="REV") == [2]
    assert seqs(account="GE") == []  # whole names only
    assert seqs(rule="atr level") == [2, 3]
    assert seqs(kind="roll", mode=RunMode.BACKTEST) == [3]
    assert seqs(since=datetime(2026, 1, 7, tzinfo=UTC)) == [2, 3]
    assert seqs(until=datetime(2026, 1, 7, tzinfo=UTC)) == [1]
    assert seqs(limit=2) == [2, 3]
    assert seqs(record_type=None) == [1, 2, 3, 4]


def test_updates_and_deletes_are_refused_by_the_database(store):
    store.append_decision(make_decision(1), RunMode.PAPER, CONSTITUTION_TEXT)
    for statement in (
        "UPDATE audit_record SET mode = 'live'",
        "DELETE FROM audit_record",
        "UPDATE constitution_text SET text = 'forged'",
        "DELETE FROM constitution_text",
    ):
        with pytest.raises(AppendOnlyViolation):
            _execute(store, statement)
    assert store.count() == 1 and store.get(1).mode is RunMode.PAPER
    assert store.constitution_text(make_decision(1).constitution.digest) == CONSTITUTION_TEXT


def test_postgresql_also_refuses_truncate(clock):
    """TRUNCATE is a PostgreSQL statement (SQLite has none), so this runs on PostgreSQL only."""
    schema = postgres.fresh_schema("alluse_t")
    store = AuditStore.open(next(schema), clock)
    try:
        _refuses_truncate(store)
    finally:
        store.close()
        schema.close()


def _refuses_truncate(store: AuditStore) -> None:
    store.append_decision(make_decision(1), RunMode.PAPER, CONSTITUTION_TEXT)
    with pytest.raises(AppendOnlyViolation):
        _execute(store, "TRUNCATE audit_record")
    assert store.count() == 1


def _execute(store: AuditStore, statement: str) -> None:
    # Through the storage layer's own transaction helper, as product code would.
    from adapters.storage.database import write_transaction

    with write_transaction(store.engine, None, "tampering") as conn:
        conn.exec_driver_sql(statement)


def test_migrations_are_versioned_and_applied_once(backend_url, clock):
    engine = create_db_engine(backend_url)
    try:
        assert [m.version for m in migrate(engine, [audit_schema.COMPONENT])] == [1]
        assert migrate(engine, [audit_schema.COMPONENT]) == []
        with engine.connect() as conn:
            assert current_versions(conn) == {"audit": 1}
    finally:
        engine.dispose()


def test_another_component_registers_its_own_migrations(backend_url):
    m = Migration(
        "test-ledger",
        1,
        "a ledger table",
        sqlite=("CREATE TABLE t_ledger (x INTEGER)",),
        postgresql=("CREATE TABLE t_ledger (x INTEGER)",),
    )
    register(m)
    register(m)  # registering the same migration again is harmless
    engine = create_db_engine(backend_url)
    try:
        migrate(engine, [audit_schema.COMPONENT, "test-ledger"])
        with engine.connect() as conn:
            assert current_versions(conn) == {"audit": 1, "test-ledger": 1}
    finally:
        engine.dispose()


def test_migrations_must_be_consecutive():
    with pytest.raises(ValueError):
        register(Migration("test-gappy", 2, "skips 1", sqlite=(), postgresql=()))


def test_a_database_from_a_newer_program_is_refused(backend_url, clock):
    AuditStore.open(backend_url, clock).close()
    engine = create_db_engine(backend_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO schema_version (component, version, description) VALUES ('audit', 99, 'future')"
            )
        with pytest.raises(SchemaTooNew):
            migrate(engine, [audit_schema.COMPONENT])
    finally:
        engine.dispose()


def test_sql_decision_log_is_the_engine_port(store):
    log: DecisionLog = SqlDecisionLog(store, RunMode.DRY_RUN)
    receipt = log.record(make_decision(1), CONSTITUTION_TEXT)
    link = log.link(
        ExecutionLink(decision_id=receipt.decision_id, kind="note", data={"why": "dry run"})
    )
    assert (receipt.seq, link.seq) == (1, 2)
    assert store.get(2).mode is RunMode.DRY_RUN


def test_open_decision_log_creates_the_database_and_tables(tmp_path, clock):
    log = open_decision_log(str(tmp_path / "new" / "alluse.db"), RunMode.PAPER, clock)
    assert log.record(make_decision(1), CONSTITUTION_TEXT).seq == 1
    assert (tmp_path / "new" / "alluse.db").exists()
    log.store.close()


def test_readers_refuse_a_sqlite_file_that_does_not_exist(tmp_path, clock):
    with pytest.raises(StorageError):
        AuditStore.open(str(tmp_path / "typo.db"), clock, create=False)
    assert not (tmp_path / "typo.db").exists()


def test_database_url_comes_from_flag_then_env_then_per_user_default(tmp_path):
    env = {"ALLUSE_DB": "postgresql+psycopg://u@h/db", "XDG_DATA_HOME": str(tmp_path)}
    assert resolve_url("sqlite:///x.db", env) == "sqlite:///x.db"
    assert resolve_url(None, env) == "postgresql+psycopg://u@h/db"
    assert (
        resolve_url(None, {"XDG_DATA_HOME": str(tmp_path)})
        == f"sqlite:///{tmp_path}/alluse/alluse.db"
    )
    assert resolve_url(str(tmp_path / "a.db"), {}) == f"sqlite:///{tmp_path}/a.db"
    assert default_db_path({}) == Path.home() / ".local" / "share" / "alluse" / "alluse.db"


def test_a_receipt_means_the_record_is_committed_for_every_other_reader(store, backend_url, clock):
    receipt = store.append_decision(make_decision(1), RunMode.LIVE, CONSTITUTION_TEXT)
    other = AuditStore.open(backend_url, clock, create=False)  # another connection pool
    try:
        assert other.get(receipt.seq).hash == receipt.hash
    finally:
        other.close()


def _synchronous(url: str) -> int:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    finally:
        engine.dispose()


def test_only_a_backtests_sqlite_file_commits_without_waiting_for_the_disk(tmp_path):
    """FULL (2) for paper and live: a commit is on disk before anyone acts on it; OFF (0) for
    a database marked reproducible, a backtest's, which can be made again (D218)."""
    from adapters.storage.database import reproducible

    paper, backtest = f"sqlite:///{tmp_path}/paper.db", f"sqlite:///{tmp_path}/backtest.db"
    reproducible(backtest)
    assert _synchronous(paper) == 2
    assert _synchronous(backtest) == 0
