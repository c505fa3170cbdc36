"""Concurrency and faults: several writers, a killed writer, a full disk, a read-only or
unreachable database. Each fault gives a clear project error and never a half-written record."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import CONSTITUTION_TEXT, make_decision

from adapters.storage.audit_store import AuditStore
from adapters.storage.errors import StorageFull, StorageReadOnly, StorageUnavailable
from constitution.errors import OperationalError, RetryError
from engine.records.audit import RunMode

APPENDER = Path(__file__).with_name("audit_appender.py")


def _spawn(url: str, count: int, tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(APPENDER), url, str(count), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_appending_500_each_give_1000_chained_records(store, backend_url):
    store.append_decision(
        make_decision(0, account="COM"), RunMode.PAPER, CONSTITUTION_TEXT
    )  # schema exists first
    procs = [_spawn(backend_url, 500, tag) for tag in ("a", "b")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    seqs = [[int(line) for line in out.split()[1:]] for out, _ in outputs]
    assert all(s == sorted(s) and len(s) == 500 for s in seqs)
    assert sorted(seqs[0] + seqs[1]) == list(range(2, 1002))  # no gap, no duplicate
    report = store.verify()
    assert report.ok and report.count == 1001 and report.head_seq == 1001


@pytest.mark.slow
def test_a_writer_killed_mid_append_leaves_a_chain_that_verifies(store, backend_url, clock):
    store.append_decision(make_decision(0, account="COM"), RunMode.PAPER, CONSTITUTION_TEXT)
    proc = _spawn(backend_url, 100_000, "a")
    assert proc.stdout.readline().strip() == "ready"
    last = 0
    while last < 40:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    report = store.verify()
    assert report.ok and report.count >= last  # every receipt handed out is in the log
    after = store.append_decision(make_decision(1, account="COM"), RunMode.PAPER, CONSTITUTION_TEXT)
    assert after.seq == report.count + 1 and store.verify().ok


def test_a_full_disk_is_a_clear_error_and_writes_nothing(tmp_path, clock):
    path = tmp_path / "audit.db"
    store = AuditStore.open(str(path), clock)
    store.append_decision(make_decision(0), RunMode.PAPER, CONSTITUTION_TEXT)
    with sqlite3.connect(path) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    full = AuditStore.open(str(path), clock, sqlite_pragmas={"max_page_count": pages})
    big = make_decision(1, extra_facts={"notes": "x" * 200_000})
    with pytest.raises(StorageFull) as caught:
        full.append_decision(big, RunMode.PAPER, CONSTITUTION_TEXT)
    assert isinstance(caught.value, OperationalError) and caught.value.exit_code == 3
    assert full.count() == 1 and full.verify().ok
    assert store.append_decision(make_decision(2), RunMode.PAPER, CONSTITUTION_TEXT).seq == 2
    full.close()
    store.close()


def _read_only(url: str) -> str:
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    # The PostgreSQL fixture's URL ends with options=-csearch_path=...: add one more option.
    return url + quote(" -cdefault_transaction_read_only=on")


def test_a_read_only_database_is_a_clear_error_and_writes_nothing(store, backend_url, clock):
    store.append_decision(make_decision(0), RunMode.PAPER, CONSTITUTION_TEXT)
    reader = AuditStore.open(_read_only(backend_url), clock)
    try:
        assert reader.verify().ok  # reading works
        with pytest.raises(StorageReadOnly) as caught:
            reader.append_decision(make_decision(1), RunMode.PAPER, CONSTITUTION_TEXT)
        assert caught.value.exit_code == 3
    finally:
        reader.close()
    assert store.count() == 1 and store.verify().ok


def test_a_busy_database_is_a_retry_error(tmp_path, clock):
    path = tmp_path / "audit.db"
    AuditStore.open(str(path), clock).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store = AuditStore.open(str(path), clock, sqlite_pragmas={"busy_timeout": 50})
    try:
        with pytest.raises(StorageUnavailable) as caught:
            store.append_decision(make_decision(1), RunMode.PAPER, CONSTITUTION_TEXT)
        assert isinstance(caught.value, RetryError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.count() == 0
    store.close()


def test_an_unreachable_postgresql_is_a_retry_error(clock):
    with pytest.raises(RetryError):
        AuditStore.open("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2", clock)
