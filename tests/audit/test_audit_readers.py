"""Readers change nothing and never crash: ``audit verify/list/show/export/replay`` pointed at a
file that is not an ALL-USE database leave it as it was; a corrupted record body is reported
(exit 1), not a traceback."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from conftest import CONSTITUTION_TEXT, make_decision, raw_execute

from engine.records.audit import RunMode
from scheduler.cli import main

READERS = (
    ["verify"],
    ["list"],
    ["show", "1"],
    ["export"],
    ["replay", "1"],
    ["checkpoint", "export"],
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def other_app_db(tmp_path) -> Path:
    path = tmp_path / "notes.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO note (text) VALUES ('mine')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("verb", READERS, ids=lambda v: " ".join(v))
def test_a_reader_leaves_another_programs_database_untouched(verb, other_app_db, tmp_path, capsys):
    before = _digest(other_app_db)
    code = main(["audit", *verb, "--db", str(other_app_db)])
    err = capsys.readouterr().err
    assert code == 3 and "is not an ALL-USE database" in err and "Traceback" not in err
    assert _digest(other_app_db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]  # no -wal, no -shm


@pytest.mark.parametrize("verb", READERS[:4], ids=lambda v: " ".join(v))
def test_a_reader_refuses_a_file_that_is_not_a_database(verb, tmp_path, capsys):
    path = tmp_path / "x.db"
    path.write_text("hello, not SQLite\n" * 100)
    before = _digest(path)
    assert main(["audit", *verb, "--db", str(path)]) == 3
    assert "not an ALL-USE database" in capsys.readouterr().err
    assert _digest(path) == before


@pytest.fixture
def corrupted(store, backend_url) -> str:
    for i in range(3):
        store.append_decision(make_decision(i), RunMode.PAPER, CONSTITUTION_TEXT)
    raw_execute(backend_url, "UPDATE audit_record SET body = '{not json' WHERE seq = 2")
    return backend_url


@pytest.mark.parametrize(
    "verb", (["list"], ["show", "2"], ["export"], ["replay", "2"], ["replay", "--all"]), ids=str
)
def test_a_corrupted_body_is_reported_not_a_traceback(verb, corrupted, capsys):
    code = main(["audit", *verb, "--db", corrupted])
    err = capsys.readouterr().err
    assert code == 1 and "record #2 is corrupted" in err


def test_a_body_that_is_json_but_not_a_decision_is_reported(store, backend_url, capsys):
    store.append_decision(make_decision(0), RunMode.PAPER, CONSTITUTION_TEXT)
    raw_execute(
        backend_url, """UPDATE audit_record SET body = '{"decision": {"x": 1}}' WHERE seq = 1"""
    )
    assert main(["audit", "show", "1", "--db", backend_url]) == 1
    assert "record #1 is corrupted: not a decision" in capsys.readouterr().err
    assert main(["audit", "verify", "--db", backend_url]) == 1  # and verify names it
