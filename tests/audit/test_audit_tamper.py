"""Tampering with the stored log is reported at the exact sequence number.

The triggers stop normal UPDATE/DELETE (test_audit_store); here we go around them, as an
attacker with file or superuser access would, and check that ``verify`` notices.
"""

from __future__ import annotations

import sqlite3

import pytest
from conftest import CONSTITUTION_TEXT, make_decision, raw_execute

from engine.records.audit import COLUMNS, RunMode

N = 8


@pytest.fixture
def filled(store):
    for i in range(N):
        store.append_decision(make_decision(i), RunMode.PAPER, CONSTITUTION_TEXT)
    assert store.verify().ok
    return store


def _problem(store):
    report = store.verify()
    assert not report.ok
    return report.problem.seq, report.problem.code


# One changed value in each column of record 5 (text columns: one byte appended/changed).
_CHANGES = {
    "seq": "seq = seq + 100",
    "prev_hash": "prev_hash = prev_hash || 'x'",
    "record_type": "record_type = 'link'",
    "record_version": "record_version = 2",
    "recorded_at": "recorded_at = replace(recorded_at, '2026', '2027')",
    "mode": "mode = 'live'",
    "decision_id": "decision_id = decision_id || 'x'",
    "as_of": "as_of = replace(as_of, '15:00', '16:00')",
    "constitution_version": "constitution_version = '1.4'",
    "constitution_digest": "constitution_digest = constitution_digest || 'x'",
    "search": "search = replace(search, 'kind:open_put', 'kind:open_pux')",
    "body": "body = replace(body, 'weekly income entry 4', 'weekly income entry 5')",
    "hash": "hash = replace(hash, 'sha256:', 'sha256:0')",
}


@pytest.mark.parametrize("column", COLUMNS)
def test_a_change_in_any_column_is_reported_at_its_seq(filled, backend_url, column):
    raw_execute(backend_url, f"UPDATE audit_record SET {_CHANGES[column]} WHERE seq = 5")
    seq, code = _problem(filled)
    assert seq == 5
    assert code == ("gap" if column == "seq" else "hash")


def test_a_deleted_record_is_reported_at_its_seq(filled, backend_url):
    raw_execute(backend_url, "DELETE FROM audit_record WHERE seq = 5")
    assert _problem(filled) == (5, "gap")


def test_a_deleted_first_record_is_reported(filled, backend_url):
    raw_execute(backend_url, "DELETE FROM audit_record WHERE seq = 1")
    assert _problem(filled) == (1, "genesis")


def test_two_swapped_records_are_reported_at_the_first(filled, backend_url):
    # Reorder: record 4's content moves to seq 5 and back, every other column kept.
    raw_execute(
        backend_url,
        "UPDATE audit_record SET seq = -4 WHERE seq = 4",
        "UPDATE audit_record SET seq = 4 WHERE seq = 5",
        "UPDATE audit_record SET seq = 5 WHERE seq = -4",
    )
    assert _problem(filled) == (4, "hash")


def test_a_record_rewritten_with_a_fresh_valid_hash_breaks_the_next_link(
    filled, backend_url, clock
):
    # An attacker who recomputes record 5's hash still cannot fix record 6's prev_hash.
    from engine.records.audit import draft_decision

    forged = draft_decision(make_decision(4, vix=30.0), RunMode.PAPER).seal(
        5, filled.get(5).prev_hash, clock.now()
    )
    values = ", ".join(
        f"{c} = '{getattr(forged, c)}'" for c in ("decision_id", "body", "search", "hash")
    )
    raw_execute(backend_url, f"UPDATE audit_record SET {values} WHERE seq = 5")
    assert _problem(filled) == (6, "prev-hash")


def test_one_flipped_byte_in_the_sqlite_file_is_reported(tmp_path, clock):
    from adapters.storage.audit_store import AuditStore

    path = tmp_path / "audit.db"
    store = AuditStore.open(str(path), clock)
    for i in range(N):
        store.append_decision(make_decision(i), RunMode.PAPER, CONSTITUTION_TEXT)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # move everything into the main file
    conn.close()
    data = bytearray(path.read_bytes())
    at = data.index(b"weekly income entry 6")
    data[at] = ord("W")
    path.write_bytes(bytes(data))
    store = AuditStore.open(str(path), clock)
    try:
        assert _problem(store) == (7, "hash")
    finally:
        store.close()
