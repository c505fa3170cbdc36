"""``alluse backup`` makes a copy that verifies (SQLite online backup API; pg_dump from the
verified snapshot), even while a writer holds the lock; ``alluse restore`` refuses a copy that
does not verify and touches nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess

import pytest

from scheduler.cli import main
from tests import postgres


def _head(path) -> tuple[int, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    finally:
        conn.close()


def _only(folder, suffix: str):
    (found,) = folder.glob(f"*{suffix}")
    return found


def test_backup_copy_verifies_with_audit_verify_and_its_manifest_names_the_head(
    backtest_db, tmp_path, capsys
):
    assert main(["backup", "--db", str(backtest_db), "--to", str(tmp_path / "bk")]) == 0
    copy = _only(tmp_path / "bk", ".db")
    manifest = json.loads(_only(tmp_path / "bk", ".json").read_text())
    assert (manifest["head_seq"], manifest["head_hash"]) == _head(backtest_db)
    capsys.readouterr()
    assert main(["audit", "verify", "--db", str(copy), "--anchor", manifest["head_hash"]]) == 0
    assert not list((tmp_path / "bk").glob("*.partial"))


def test_backup_while_a_writer_holds_the_lock_copies_the_committed_state(backtest_db, tmp_path):
    db = tmp_path / "live.db"
    shutil.copy(backtest_db, db)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO ledger_mode (id, mode, reason, latched) VALUES (7, 'active', 'uncommitted', 0)"
    )
    try:
        assert main(["backup", "--db", str(db), "--to", str(tmp_path / "bk")]) == 0
    finally:
        writer.execute("COMMIT")
        writer.close()
    copy = sqlite3.connect(_only(tmp_path / "bk", ".db"))
    assert copy.execute("SELECT COUNT(*) FROM ledger_mode WHERE id = 7").fetchone() == (0,)
    copy.close()


def _tampered_copy(backtest_db, path):
    shutil.copy(backtest_db, path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_record_no_update")
    conn.execute("UPDATE audit_record SET search = search || 'forged ' WHERE seq = 3")
    conn.commit()
    conn.close()


def test_restore_refuses_a_copy_that_does_not_verify_and_touches_nothing(
    backtest_db, tmp_path, capsys
):
    bad = tmp_path / "bad.db"
    _tampered_copy(backtest_db, bad)
    target = tmp_path / "target.db"
    assert main(["restore", "--from", str(bad), "--db", str(target)]) == 1
    assert "does not verify" in capsys.readouterr().err and not target.exists()
    shutil.copy(backtest_db, target)
    before = target.read_bytes()
    assert main(["restore", "--from", str(bad), "--db", str(target), "--force"]) == 1
    assert target.read_bytes() == before


def test_backup_refuses_to_keep_a_copy_of_a_broken_log(backtest_db, tmp_path, capsys):
    bad = tmp_path / "bad.db"
    _tampered_copy(backtest_db, bad)
    assert main(["backup", "--db", str(bad), "--to", str(tmp_path / "bk")]) == 1
    assert "does not verify" in capsys.readouterr().err
    assert not list((tmp_path / "bk").iterdir())


def test_restore_puts_a_verified_copy_in_place(backtest_db, tmp_path):
    assert main(["backup", "--db", str(backtest_db), "--to", str(tmp_path / "bk")]) == 0
    copy = _only(tmp_path / "bk", ".db")
    target = tmp_path / "restored.db"
    assert main(["restore", "--from", str(copy), "--db", str(target)]) == 0
    assert _head(target) == _head(backtest_db)
    assert main(["restore", "--from", str(copy), "--db", str(target)]) == 2  # exists: needs --force
    assert main(["restore", "--from", str(copy), "--db", str(target), "--force"]) == 0
    assert main(["audit", "verify", "--db", str(target)]) == 0


@pytest.mark.postgres
def test_postgres_backup_is_a_pg_dump_of_the_verified_schema(tmp_path):
    from adapters.storage.audit_store import AuditStore
    from engine.clock import WallClock
    from engine.records.audit import RunMode
    from tests.audit.conftest import make_decision

    schema_url = postgres.fresh_schema("visible_backup")
    url = next(schema_url)
    try:
        store = AuditStore.open(url, WallClock())
        for i in range(3):
            store.append_decision(make_decision(i), RunMode.PAPER, "text")
        head = store.verify()
        store.close()
        assert main(["backup", "--db", url, "--to", str(tmp_path / "bk")]) == 0
        dump = _only(tmp_path / "bk", ".dump")
        manifest = json.loads(_only(tmp_path / "bk", ".json").read_text())
        assert (manifest["records"], manifest["head_hash"]) == (3, head.head_hash)
        listing = subprocess.run(
            ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
        ).stdout
        assert "TABLE DATA" in listing and "audit_record" in listing
    finally:
        schema_url.close()
