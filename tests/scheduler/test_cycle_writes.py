"""A backtest writes each cycle's ledger and paper-venue changes in one transaction (D180), with
the cycle's audit records, and the database it leaves is the one per-``apply`` writing leaves:
every table, row for row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

import pytest

from adapters.storage import ledger_store
from adapters.storage.ledger_store import SqlLedgerStore
from engine.execution.ledger import Note
from scheduler import compose
from scheduler.backtest import run_backtest

FIRST, LAST = date(2024, 1, 2), date(2024, 1, 12)


def _tables(path) -> dict[str, list[str]]:
    db = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "schema_version"  # stamped with the wall clock at migration
        ]
        # rowid order too: a later load builds its dicts in the order the rows were written
        return {n: [repr(r) for r in db.execute(f"SELECT rowid, * FROM {n}")] for n in names}
    finally:
        db.close()


@pytest.mark.slow
def test_cycle_batched_ledger_leaves_the_same_database(bundled, tmp_path, monkeypatch):
    writes = []  # one entry per transaction that carried ledger or venue writes
    real_open, real_write = SqlLedgerStore.open, ledger_store.CycleWrites.write_into

    def counted(self, conn, where):
        writes.append(self.pending)
        return real_write(self, conn, where)

    monkeypatch.setattr(ledger_store.CycleWrites, "write_into", counted)
    a, b = tmp_path / "batched.db", tmp_path / "single.db"
    batched = run_backtest(
        bundled, FIRST, LAST, f"sqlite:///{a}", compose.paper_cycle_factory, synthetic_seed=7
    )
    # the same backtest with the ledger written at every apply, as paper and live write it
    monkeypatch.setattr(
        SqlLedgerStore, "open", classmethod(lambda cls, url, per_cycle=False: real_open(url))
    )
    single = run_backtest(
        bundled, FIRST, LAST, f"sqlite:///{b}", compose.paper_cycle_factory, synthetic_seed=7
    )
    ta, tb = _tables(a), _tables(b)
    assert ta == tb
    assert len(ta["ledger_fill"]) > 0 and len(ta["ledger_op"]) > 50
    assert batched.decided == single.decided and batched.run == single.run
    assert 0 < sum(writes) <= batched.run  # at most one ledger commit per cycle run


def test_pending_writes_reach_the_database_only_at_the_cycle_end(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = SqlLedgerStore.open(url, per_cycle=True)
    at = datetime(2024, 1, 2, 15, tzinfo=UTC)
    store.apply([Note("n:1", "test", (("k", "v"),))], at)
    assert "n:1" in store.state.applied
    assert "n:1" not in SqlLedgerStore.open(url).state.applied  # not yet committed
    store.end_cycle()
    assert "n:1" in SqlLedgerStore.open(url).state.applied
    store.apply([Note("n:2", "test", (("k", "w"),))], at)
    assert store.notes_of("test") == [{"k": "v"}, {"k": "w"}]  # a reader sees its own writes
    store.close()


def test_a_store_without_cycle_writes_commits_each_apply(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = SqlLedgerStore.open(url)
    store.apply([Note("n:1", "test", (("k", "v"),))], datetime(2024, 1, 2, 15, tzinfo=UTC))
    assert store.writes is None
    assert "n:1" in SqlLedgerStore.open(url).state.applied
    store.close()


def test_a_failed_cycle_write_is_a_storage_error_and_writes_nothing(tmp_path):
    from adapters.storage.errors import StorageError

    url = f"sqlite:///{tmp_path / 'l.db'}"
    first, second = (SqlLedgerStore.open(url, per_cycle=True) for _ in range(2))
    at = datetime(2024, 1, 2, 15, tzinfo=UTC)
    first.apply([Note("n:1", "test", (("k", "v"),))], at)
    first.end_cycle()
    # a second writer that never saw n:1 (the writer lease forbids it; here it is forced)
    second.apply([Note("n:2", "test", (("k", "w"),)), Note("n:1", "test", (("k", "x"),))], at)
    with pytest.raises(StorageError, match="writing a cycle's ledger"):
        second.end_cycle()
    assert SqlLedgerStore.open(url).state.applied == frozenset({"n:1"})  # n:2 rolled back


def test_an_attached_ledger_commits_with_the_cycle_records(tmp_path):
    """The log takes the cycle's ledger writes into its own transaction: the ledger waits for
    the log, and a ledger write that fails takes the cycle's records down with it."""
    from adapters.storage.audit_store import AuditStore
    from adapters.storage.errors import StorageError
    from engine.clock import FixedClock
    from engine.records.audit import ExecutionLink, RunMode, draft_link
    from scheduler.batched_log import CycleBatchedLog

    url = f"sqlite:///{tmp_path / 'l.db'}"
    at = datetime(2024, 1, 2, 15, tzinfo=UTC)
    store = SqlLedgerStore.open(url, per_cycle=True)
    audit = AuditStore.open(url, FixedClock(at))
    log = CycleBatchedLog(audit, RunMode.BACKTEST, store.writes)
    store.apply([Note("n:1", "test", (("k", "v"),))], at)
    store.end_cycle()  # attached: left to the log
    assert "n:1" not in SqlLedgerStore.open(url).state.applied
    log.end_cycle()  # kept for the next write, with the cycles after it (D211)
    assert "n:1" not in SqlLedgerStore.open(url).state.applied
    log.flush()  # no records kept: the ledger goes alone
    assert "n:1" in SqlLedgerStore.open(url).state.applied

    before = audit.count()
    other = SqlLedgerStore.open(url)  # forced past the writer lease: takes n:2 first
    other.apply([Note("n:2", "test", (("k", "x"),))], at)
    store.apply([Note("n:2", "test", (("k", "w"),))], at)
    # a link record in the same cycle (its decision need not exist for the write itself)
    link = ExecutionLink(decision_id="d-1", kind="note", data={"why": "test"})
    log._drafts.append((draft_link(link, RunMode.BACKTEST), at))
    with pytest.raises(StorageError, match="recording 1 records: database error .*UNIQUE"):
        log.flush()
    assert audit.count() == before  # the records rolled back with the ledger
