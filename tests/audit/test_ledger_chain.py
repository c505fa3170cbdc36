"""The ledger's hash chain on SQLite and PostgreSQL: written with every operation, in the same
transaction; a forged balanced entry is found; checkpoints of a server database are kept in a
directory, named without the password."""

from __future__ import annotations

from datetime import UTC, date, datetime

from conftest import CONSTITUTION_TEXT, make_decision, raw_execute
from sqlalchemy import text

from adapters.storage.audit_ledger_check import verify_ledger
from adapters.storage.audit_store import AuditStore
from adapters.storage.checkpoints import checkpoint_path
from adapters.storage.ledger_store import SqlLedgerStore
from engine.clock import FixedClock
from engine.execution.ledger import Deposit, OpenAccount, Transfer
from engine.records.audit import RunMode
from scheduler.cli import main

AT = datetime(2024, 1, 2, 15, tzinfo=UTC)
OPS = (
    OpenAccount("o1", "GEN", "gen", date(2024, 1, 2)),
    OpenAccount("o2", "COM", "com", date(2024, 1, 2)),
    Deposit("d1", "GEN", 400_000_00),
    Transfer("t1", "GEN", "COM", 50_000_00),
)


def _ledger(url: str) -> SqlLedgerStore:
    store = SqlLedgerStore.open(url)
    store.apply(OPS[:2], AT)
    store.apply(OPS[2:], AT)
    return store


def test_every_operation_is_chained_as_it_is_applied(backend_url):
    store = _ledger(backend_url)
    try:
        report = verify_ledger(store.engine)
        with store.engine.connect() as conn:
            links = conn.execute(text("SELECT op_id FROM ledger_link ORDER BY seq")).scalars().all()
    finally:
        store.close()
    assert links == [op.op_id for op in OPS]
    assert report.ok and report.operations == 4 and report.head_seq == 4


def test_a_forged_balanced_entry_breaks_the_ledger_chain(backend_url):
    store = _ledger(backend_url)
    try:
        with store.engine.begin() as conn:  # ledger_entry has no trigger: a plain INSERT
            for line, (account, amount) in enumerate((("GEN", 1_000_00), ("COM", -1_000_00)), 2):
                conn.execute(
                    text("INSERT INTO ledger_entry VALUES ('t1', :l, :a, 'cash', :m, 'x', 'x')"),
                    {"l": line, "a": account, "m": amount},
                )
        report = verify_ledger(store.engine)
    finally:
        store.close()
    assert report.problem is not None and report.problem.code == "digest"
    assert report.problem.op_id == "t1"


def test_a_database_without_a_ledger_has_no_ledger_report(backend_url):
    store = AuditStore.open(backend_url, FixedClock(AT))
    try:
        assert verify_ledger(store.engine) is None
    finally:
        store.close()


def test_server_checkpoints_are_kept_in_a_directory_named_without_the_password(tmp_path):
    url = "postgresql+psycopg://alice:s3cret@db.example:5433/prod?options=-csearch_path%3Dbooks"
    default = checkpoint_path(url, {"XDG_DATA_HOME": str(tmp_path)})
    configured = checkpoint_path(url, {"ALLUSE_CHECKPOINT_DIR": str(tmp_path / "cp")})
    assert default.parent == tmp_path / "alluse" / "checkpoints"
    assert configured.parent == tmp_path / "cp"
    assert "s3cret" not in str(default) and "db.example" in default.name
    sqlite = checkpoint_path(f"sqlite:///{tmp_path / 'x.db'}", {})
    assert sqlite == tmp_path / "x.db.checkpoint"
    assert (
        checkpoint_path(
            f"sqlite:///{tmp_path / 'x.db'}", {"ALLUSE_CHECKPOINT_DIR": "/c"}
        ).parent.as_posix()
        == "/c"
    )


def test_a_postgres_log_writes_its_checkpoint_to_the_configured_directory(
    backend_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALLUSE_CHECKPOINT_DIR", str(tmp_path / "cp"))
    store = AuditStore.open(backend_url, FixedClock(AT))
    ledger = _ledger(backend_url)
    try:
        cp = store.checkpoint("sha256:" + "c" * 64)
        again = store.checkpoint("sha256:" + "c" * 64)  # nothing moved: nothing written
    finally:
        ledger.close()
        store.close()
    [written] = (tmp_path / "cp").iterdir()
    assert cp.ledger_size == 4 and cp.size == 0 and again is None
    assert written.read_text().startswith("alluse.audit/empty\n0\n")


def test_records_cut_from_a_log_are_found_by_its_checkpoint_on_every_backend(
    store, backend_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ALLUSE_CHECKPOINT_DIR", str(tmp_path / "cp"))
    for i in range(5):
        store.append_decision(make_decision(i), RunMode.PAPER, CONSTITUTION_TEXT)
    assert store.checkpoint("sha256:" + "c" * 64).size == 5
    assert main(["audit", "verify", "--db", backend_url, "--require-checkpoint"]) == 0

    raw_execute(backend_url, "DELETE FROM audit_record WHERE seq > 3")
    capsys.readouterr()

    assert main(["audit", "verify", "--db", backend_url]) == 1
    assert "checkpoint-truncated" in capsys.readouterr().out
