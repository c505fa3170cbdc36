"""The dashboard reads without the writer's lease: a daemon holding the write lock does not
stop it answering, and it never takes a lock that stops the daemon writing."""

from __future__ import annotations

import shutil
import sqlite3

import httpx

from tests.web.server import serving


def test_pages_answer_while_a_writer_holds_the_write_lock_and_the_writer_commits_meanwhile(
    backtest_db, tmp_path
):
    db = tmp_path / "live.db"
    shutil.copy(backtest_db, db)  # the shared database stays untouched
    with serving(db) as base:
        writer = sqlite3.connect(db, isolation_level=None, timeout=0.5)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")  # what an appending daemon holds
        writer.execute(
            "INSERT INTO ledger_mode (id, mode, reason, latched) VALUES (2, 'active', 'test', 0)"
        )
        try:
            for path in ("/api/overview", "/api/decisions", "/api/positions", "/", "/metrics"):
                assert httpx.get(base + path, timeout=10).status_code == 200, path
        finally:
            writer.execute("COMMIT")  # not blocked by the reader (busy timeout 0.5 s)
        assert writer.execute("SELECT reason FROM ledger_mode WHERE id = 2").fetchone() == ("test",)
        writer.close()
        assert httpx.get(base + "/api/overview").status_code == 200
