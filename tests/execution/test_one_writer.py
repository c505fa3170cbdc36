"""One writer per database (issue 13): the single-writer lease on SQLite and PostgreSQL, two
concurrent ``alluse paper step`` runs, two daemons started together, and a crashed holder's
lease taken over with a record in the audit log."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.brokers.paper import PaperBroker
from adapters.storage import audit_schema, ledger_schema
from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.database import create_db_engine
from adapters.storage.lease import DatabaseHeld, acquire
from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
from adapters.storage.migrations import migrate
from engine.clock import WallClock
from scheduler.cli import main
from tests import postgres
from tests.execution.helpers import EXAMPLE_FACTS
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    """The environment as the session's fixtures left it (their checkpoint key and data
    directory), read when a child starts, not when this module is imported."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _alluse(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_writer_is_refused_naming_the_holder_until_the_first_releases(backend_url):
    first = acquire(backend_url)
    with pytest.raises(DatabaseHeld) as refused:
        acquire(backend_url)
    assert refused.value.exit_code == 3
    assert refused.value.holder.pid == os.getpid()
    assert f"database held by pid {os.getpid()} since " in str(refused.value)
    first.release()
    second = acquire(backend_url)  # released: the next writer gets it at once
    assert second.taken_over is None  # a clean release leaves nothing to take over
    second.release()


@pytest.mark.postgres
def test_leases_of_different_postgresql_schemas_are_independent(pg_url, pg_url2):
    first, second = acquire(pg_url), acquire(pg_url2)  # two schemas: two databases, two writers
    first.release()
    second.release()


def test_readers_need_no_lease(backend_url, capsys):
    assert main(["paper", "step", "--facts", str(EXAMPLE_FACTS), "--db", backend_url]) == 0
    capsys.readouterr()
    with acquire(backend_url):  # a writer holds it
        assert main(["paper", "status", "--db", backend_url]) == 0
        assert main(["audit", "verify", "--db", backend_url]) == 0
        assert main(["audit", "list", "--db", backend_url]) == 0
    out = capsys.readouterr().out
    assert "GEN" in out


# --------------------------------------------------------------------------- a crashed holder

HOLD_AND_DIE = (
    "import os, signal, sys; from adapters.storage.lease import acquire; "
    "acquire(sys.argv[1]); print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
)


def _crash_holding(url: str) -> int:
    child = subprocess.run(
        [sys.executable, "-c", HOLD_AND_DIE, url],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    return int(child.stdout.strip())


def test_a_lease_left_by_a_killed_writer_is_taken_over_and_recorded(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    assert main(["paper", "step", "--facts", str(EXAMPLE_FACTS), "--db", url]) == 0
    dead = _crash_holding(url)  # kill -9 while holding the lease

    later = tmp_path / "later.yaml"
    later.write_text(EXAMPLE_FACTS.read_text().replace("T10:15:00", "T10:45:00"))
    capsys.readouterr()
    assert main(["paper", "step", "--facts", str(later), "--db", url]) == 0
    err = capsys.readouterr().err
    assert f"took over the writer lease of pid {dead} since" in err

    audit = AuditStore.open(url, WallClock())
    notes = [
        r.link
        for r in audit.iter_records(AuditQuery(record_type="link", limit=None))
        if r.link.kind == "note" and r.link.ref == "writer_lease_taken_over"
    ]
    first = audit.query(AuditQuery(limit=None))[0].decision_id
    audit.close()
    [note] = notes
    assert note.data["previous"]["pid"] == dead and note.data["holder"]["pid"] == os.getpid()
    assert note.decision_id == first  # on the crashed run's last decision, before this one's


@pytest.mark.postgres
def test_a_killed_writers_postgresql_lease_is_released_by_the_server(pg_url):
    _crash_holding(pg_url)
    lease = wait_until(lambda: _try(pg_url), 30, "the server to drop the dead session's lock")
    lease.release()


def _try(url: str):
    try:
        return acquire(url)
    except DatabaseHeld:
        return None


@pytest.fixture
def pg_url():
    yield from postgres.fresh_schema("alluse_lease")


@pytest.fixture
def pg_url2():
    yield from postgres.fresh_schema("alluse_lease")


# --------------------------------------------------------------------------- concurrent writers


class _Blocker:
    """Holds the database's write lock from the test, so whichever step takes the lease waits
    inside it (deterministically overlapping the other) until ``release``."""

    def __init__(self, url: str):
        self.url = url
        engine = create_db_engine(url)
        migrate(engine, [ledger_schema.COMPONENT, audit_schema.COMPONENT])  # empty tables
        engine.dispose()
        if url.startswith("sqlite"):
            self._conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self._conn.execute("BEGIN IMMEDIATE")
        else:
            self._engine = create_db_engine(url)
            self._conn = self._engine.connect()
            self._txn = self._conn.begin()
            self._conn.execute(text("LOCK TABLE ledger_op IN ACCESS EXCLUSIVE MODE"))

    def release(self) -> None:
        if self.url.startswith("sqlite"):
            self._conn.execute("ROLLBACK")
            self._conn.close()
        else:
            self._txn.rollback()
            self._conn.close()
            self._engine.dispose()


@pytest.mark.slow
def test_two_concurrent_paper_steps_one_decides_the_other_exits_3_and_writes_nothing(
    backend_url,
):
    blocker = _Blocker(backend_url)
    step = ("paper", "step", "--facts", str(EXAMPLE_FACTS), "--db", backend_url)
    procs = [_alluse(*step), _alluse(*step)]
    try:
        loser = wait_until(
            lambda: next((p for p in procs if p.poll() is not None), None),
            60,
            "one step to be refused",
        )
    finally:
        blocker.release()
    winner = next(p for p in procs if p is not loser)
    out, err = winner.communicate(timeout=120)
    assert winner.returncode == 0, err
    lost_out, lost_err = loser.communicate()
    assert loser.returncode == 3 and "opened a paper portfolio" not in lost_out
    assert f"database held by pid {winner.pid} since" in lost_err
    assert "Traceback" not in lost_err

    store = SqlLedgerStore.open(backend_url)
    venue = PaperBroker(store=SqlVenueStore(store.engine))
    audit = AuditStore(store.engine, WallClock())
    decisions = audit.query(AuditQuery(limit=None))
    assert len(decisions) == 1  # exactly one decided
    ids = [r.client_order_id for r in venue.requests()]
    assert ids and len(ids) == len(set(ids))  # no duplicate order ids
    assert set(ids) == set(store.state.orders)
    assert set(store.state.accounts) == {"GEN", "REV", "COM"}  # opened once: 3 accounts, not 6
    opened = Counter(op.split(":")[0] for op in store.state.applied)
    assert opened["intent"] == len(ids)
    store.close()


@pytest.mark.slow
def test_two_daemons_started_together_one_runs_the_other_exits_3(backend_url):
    run = ("run", "--paper", "--synthetic", "1", "--every", "0.5", "--db", backend_url)
    procs = [_alluse(*run), _alluse(*run)]
    try:
        loser = wait_until(
            lambda: next((p for p in procs if p.poll() is not None), None),
            90,
            "one daemon to be refused",
        )
        winner = next(p for p in procs if p is not loser)
        _, lost_err = loser.communicate()
        assert loser.returncode == 3, lost_err
        assert f"database held by pid {winner.pid} since" in lost_err
        wait_until(lambda: _decisions(backend_url) >= 1, 120, "the running daemon to decide")
        assert winner.poll() is None  # the holder runs on
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    _, err = winner.communicate(timeout=60)
    assert winner.returncode == 0, err[-2000:]

    from adapters.storage.scheduler_store import SchedulerStore

    runs = {e.run_id for e in SchedulerStore.open(backend_url).events()}
    assert len(runs) == 1  # the refused daemon wrote nothing: not even a start event


def _decisions(url: str) -> int:
    audit = AuditStore.open(url, WallClock())
    try:
        return len(audit.query(AuditQuery(limit=None)))
    finally:
        audit.close()


def test_a_refused_step_leaves_the_database_byte_for_byte_as_it_was(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    assert main(["paper", "step", "--facts", str(EXAMPLE_FACTS), "--db", url]) == 0
    db = tmp_path / "paper.db"
    with acquire(url):
        before = _dump(db)
        capsys.readouterr()
        assert main(["paper", "step", "--facts", str(EXAMPLE_FACTS), "--db", url]) == 3
        assert main(["paper", "resume", "--db", url]) == 3
        err = capsys.readouterr().err
        assert err.count(f"database held by pid {os.getpid()} since") == 2
        assert _dump(db) == before


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
