"""Signed checkpoints outside the database, and the ledger in the chain.

A writer of the database who cuts records off the end, rewrites a record and re-chains every
later one, forges a balanced ledger entry or edits a position row is caught by ``alluse audit
verify`` with no manual anchor. Tampering goes around the append-only triggers, as someone
with write access to the file would.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.storage.checkpoints import KEY_NAME, checkpoint_path, load_key
from engine.records.audit import record_hash
from engine.records.checkpoint import open_note, sign, verifier_key
from engine.records.ledger_link import link_hash, op_digest
from scheduler.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """One week of the paper pipeline on synthetic data, its checkpoint beside it."""
    db = tmp_path_factory.mktemp("made") / "bt.db"
    argv = ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-09"]
    assert main([*argv, "--db", str(db), "--no-progress"]) == 0
    return db


@pytest.fixture
def db(made, tmp_path) -> Path:
    """A copy of the backtest's database and checkpoint, to tamper with."""
    copy = tmp_path / "bt.db"
    source, target = sqlite3.connect(made), sqlite3.connect(copy)
    try:
        source.backup(target)  # the whole database, write-ahead log included
    finally:
        source.close()
        target.close()
    shutil.copy(checkpoint_path(f"sqlite:///{made}"), checkpoint_path(f"sqlite:///{copy}"))
    return copy


def _verify(capsys, db: Path, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["audit", "verify", "--db", str(db), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _tamper(db: Path, *statements: str, params: list[tuple] | None = None) -> None:
    """Write behind the program's back, every trigger dropped."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        for s in statements:
            conn.execute(s)
        for sql, values in params or ():
            conn.execute(sql, values)
    finally:
        conn.close()


def _query(db: Path, sql: str, *values) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, values).fetchall()
    finally:
        conn.close()


def test_a_backtest_leaves_a_signed_checkpoint_that_verify_matches(db, capsys):
    code, out = _verify(capsys, db)
    cp = out["checkpoint"]
    assert code == 0 and out["ok"] and cp["status"] == "matches"
    assert cp["path"] == str(db) + ".checkpoint"
    assert cp["checkpoint"]["size"] == out["count"]  # the last write was after the last record
    assert out["ledger"]["operations"] > 0 and out["ledger"]["problem"] is None
    [[ledger_size]] = _query(db, "SELECT COUNT(*) FROM ledger_link")
    assert cp["checkpoint"]["ledger_size"] == ledger_size == out["ledger"]["operations"]


def test_the_signing_key_is_not_in_the_database(db, checkpoint_key):
    key = load_key(checkpoint_key, create=False)
    raw = key.private_bytes_raw()
    pem_lines = checkpoint_key.read_text().splitlines()[1:-1]
    content = db.read_bytes()
    assert raw not in content and all(line.encode() not in content for line in pem_lines)
    assert not _query(db, "SELECT seq FROM audit_record WHERE body LIKE ?", f"%{pem_lines[0]}%")


def test_records_cut_from_the_end_are_detected(db, capsys):
    [[count]] = _query(db, "SELECT COUNT(*) FROM audit_record")
    _tamper(db, f"DELETE FROM audit_record WHERE seq > {count - 3}")

    code, out = _verify(capsys, db)

    assert code == 1 and out["problem"]["code"] == "checkpoint-truncated"
    assert out["problems"] == [out["problem"]]  # the chain itself still verifies


def test_a_rewritten_and_fully_rechained_history_is_detected(db, capsys):
    rows = _query(db, "SELECT * FROM audit_record ORDER BY seq")
    target = next(i for i, r in enumerate(rows) if '"approved":true' in r[11])
    new_rows, prev = [], rows[target - 1][12]
    for i, r in enumerate(rows[target:]):
        body = r[11].replace('"approved":true', '"approved":false', 1) if i == 0 else r[11]
        fields = (*r[:1], prev, *r[2:11], body)
        prev = record_hash(fields)
        new_rows.append((prev, fields))
    _tamper(
        db,
        params=[
            (
                "UPDATE audit_record SET prev_hash = ?, body = ?, hash = ? WHERE seq = ?",
                (f[1], f[11], h, f[0]),
            )
            for h, f in new_rows
        ],
    )
    code, out = _verify(capsys, db, "--checkpoint", str(db) + ".checkpoint")

    assert out["count"] == len(rows) and out["problems"][0]["code"] == "checkpoint-rechained"
    assert code == 1


def _ledger_rows(db: Path):
    op_id, account = _query(db, "SELECT op_id, account FROM ledger_entry ORDER BY op_id LIMIT 1")[0]
    [[lines]] = _query(db, "SELECT COUNT(*) FROM ledger_entry WHERE op_id = ?", op_id)
    return op_id, account, lines


def test_a_forged_balanced_ledger_entry_is_detected(db, capsys):
    op_id, account, lines = _ledger_rows(db)
    _tamper(
        db,
        params=[
            (
                "INSERT INTO ledger_entry VALUES (?, ?, ?, ?, ?, ?, ?)",
                (op_id, lines + n, account, bucket, amount, "forged", "2024-01-02T15:00:00+00:00"),
            )
            for n, (bucket, amount) in enumerate((("cash", 500_000), ("tax_reserve", -500_000)))
        ],
    )
    code, out = _verify(capsys, db)
    assert code == 1 and out["problem"]["code"] == "ledger-digest"
    assert out["problem"]["op_id"] == op_id


def test_a_forged_operation_beside_the_chain_is_detected(db, capsys):
    _tamper(
        db,
        "INSERT INTO ledger_op VALUES ('forged:1', 'Transfer', '{}', '2024-01-02T15:00:00+00:00')",
        "INSERT INTO ledger_entry VALUES ('forged:1', 0, 'GEN', 'cash', 100, '', 'x')",
        "INSERT INTO ledger_entry VALUES ('forged:1', 1, 'REV', 'cash', -100, '', 'x')",
    )
    code, out = _verify(capsys, db)
    assert code == 1 and out["problem"]["code"] == "ledger-unchained"


def test_an_edited_position_row_is_detected(db, capsys):
    [(account, key)] = _query(db, "SELECT account, contract_key FROM ledger_position LIMIT 1")
    _tamper(
        db,
        params=[
            (
                "UPDATE ledger_position SET quantity = quantity * 2 WHERE account = ? AND contract_key = ?",
                (account, key),
            )
        ],
    )
    code, out = _verify(capsys, db)
    assert code == 1 and out["problem"]["code"] == "ledger-state"
    assert "holdings" in out["problem"]["message"]


def test_a_rechained_ledger_is_detected_by_the_checkpoint(db, capsys):
    op_id, account, lines = _ledger_rows(db)
    forged = ("INSERT INTO ledger_entry VALUES (?, ?, ?, ?, ?, ?, ?)",)
    _tamper(
        db,
        params=[
            (forged[0], (op_id, lines, account, "cash", 700, "f", "x")),
            (forged[0], (op_id, lines + 1, account, "tax_reserve", -700, "f", "x")),
        ],
    )
    links = _query(db, "SELECT seq, op_id, prev_hash, digest, hash FROM ledger_link ORDER BY seq")
    updates, prev = [], None
    for seq, lop, old_prev, digest, _ in links:
        prev = old_prev if prev is None else prev
        if lop == op_id or updates:
            ops = _query(db, "SELECT kind, body, at FROM ledger_op WHERE op_id = ?", lop)[0]
            entries = _query(
                db,
                "SELECT line, account, bucket, amount, memo FROM ledger_entry WHERE op_id = ?",
                lop,
            )
            digest = op_digest(lop, *ops, entries)
            new = link_hash(seq, prev, lop, digest)
            updates.append(
                (
                    "UPDATE ledger_link SET prev_hash = ?, digest = ?, hash = ? WHERE seq = ?",
                    (prev, digest, new, seq),
                )
            )
            prev = new
        else:
            prev = link_hash(seq, old_prev, lop, digest)
    _tamper(db, params=updates)

    code, out = _verify(capsys, db)

    # the forged entry changes the balances the operations produce, so the state check or
    # the checkpoint catches it; the checkpoint names the re-chaining
    codes = [p["code"] for p in out["problems"]]
    assert code == 1 and "checkpoint-ledger-rechained" in codes


def test_without_a_checkpoint_verify_says_so_and_can_be_made_to_fail(db, capsys):
    Path(str(db) + ".checkpoint").unlink()
    capsys.readouterr()
    assert main(["audit", "verify", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "UNCHECKED: no checkpoint at" in text and "cannot be detected" in text
    code, out = _verify(capsys, db, "--require-checkpoint")
    assert code == 1 and out["problem"]["code"] == "checkpoint-none"


def test_an_exported_checkpoint_checks_the_log_on_another_machine(
    db, tmp_path, capsys, monkeypatch
):
    exported, keys = tmp_path / "kept.checkpoint", tmp_path / "keys.txt"
    assert main(["audit", "checkpoint", "export", "--db", str(db), "-o", str(exported)]) == 0
    capsys.readouterr()
    assert main(["audit", "key", "show"]) == 0
    keys.write_text(capsys.readouterr().out.splitlines()[1] + "\n")
    [[count]] = _query(db, "SELECT COUNT(*) FROM audit_record")
    _tamper(db, f"DELETE FROM audit_record WHERE seq = {count}")
    Path(str(db) + ".checkpoint").unlink()  # the copy beside the database is gone too
    monkeypatch.setenv("ALLUSE_CHECKPOINT_KEY", str(tmp_path / "no-such.key"))  # not the signer

    code, out = _verify(capsys, db, "--checkpoint", str(exported), "--key", str(keys))
    assert code == 1 and out["problem"]["code"] == "checkpoint-truncated"
    code, out = _verify(capsys, db, "--checkpoint", str(exported))
    assert code == 1 and out["checkpoint"]["code"] == "signature"  # no key to trust


def test_a_checkpoint_signed_by_another_key_is_refused(db, capsys):
    path = Path(str(db) + ".checkpoint")
    checkpoint, _ = open_note(path.read_text(), [(KEY_NAME, load_key(_key_path()).public_key())])
    path.write_text(sign(checkpoint, KEY_NAME, Ed25519PrivateKey.generate()))
    code, out = _verify(capsys, db)
    assert code == 1 and out["problem"]["code"] == "checkpoint-signature"


def _key_path() -> Path:
    from adapters.storage.checkpoints import key_path

    return key_path()


def test_after_a_key_rotation_old_checkpoints_still_verify(db, tmp_path, capsys, monkeypatch):
    key = tmp_path / "rotating.key"
    shutil.copy(_key_path(), key)
    monkeypatch.setenv("ALLUSE_CHECKPOINT_KEY", str(key))
    old = verifier_key(KEY_NAME, load_key(key).public_key())
    capsys.readouterr()
    assert main(["audit", "key", "rotate"]) == 0
    out = capsys.readouterr().out
    assert f"retired {old}" in out and verifier_key(KEY_NAME, load_key(key).public_key()) != old
    code, result = _verify(capsys, db)
    assert code == 0 and result["checkpoint"]["status"] == "matches"


def test_key_show_creates_the_key_only_when_asked(tmp_path, capsys, monkeypatch):
    key = tmp_path / "keys" / "new.key"
    monkeypatch.setenv("ALLUSE_CHECKPOINT_KEY", str(key))
    assert main(["audit", "key", "show"]) == 1 and not key.exists()
    assert f"no checkpoint key at {key}" in capsys.readouterr().err
    assert main(["audit", "key", "show", "--create"]) == 0 and key.exists()
    created = capsys.readouterr().out.splitlines()[1]
    assert created == verifier_key(KEY_NAME, load_key(key).public_key())
    assert main(["audit", "key", "show", "--create"]) == 0  # an existing key is kept
    assert capsys.readouterr().out.splitlines()[1] == created
