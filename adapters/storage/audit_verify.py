"""``alluse audit verify`` end to end: the audit chain, the ledger's chain, the signed checkpoint.

The chain walk finds an altered or removed record; the ledger check finds a forged or altered
ledger entry or row; the checkpoint (kept outside the database, signed) finds what a chain
alone cannot: records cut from the end, and history rewritten and re-chained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from adapters.storage.audit_ledger_check import verify_ledger
from adapters.storage.audit_store import AuditStore
from adapters.storage.checkpoints import (
    checkpoint_path,
    hash_at,
    key_path,
    read_heads,
    read_note,
    trusted_keys,
)
from adapters.storage.database import read_connection
from engine.records.chain import VerifyReport
from engine.records.checkpoint import Checkpoint, CheckpointError, check, open_note
from engine.records.ledger_link import LedgerReport


@dataclass(frozen=True)
class CheckpointOutcome:
    path: str | None
    status: str  # "matches" | "none" | "failed"
    checkpoint: Checkpoint | None = None
    signer: str | None = None
    code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "checkpoint": self.checkpoint.model_dump() if self.checkpoint else None,
            "signer": self.signer,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class FullReport:
    chain: VerifyReport
    ledger: LedgerReport | None
    checkpoint: CheckpointOutcome


def verify_all(
    store: AuditStore,
    anchor: str | None = None,
    checkpoint_file: Path | None = None,
    verifier_keys: Iterable[str] = (),
) -> FullReport:
    chain = store.verify(anchor)
    ledger = verify_ledger(store.engine)
    return FullReport(chain, ledger, _checkpoint(store, checkpoint_file, verifier_keys))


def _checkpoint(
    store: AuditStore, given: Path | None, verifier_keys: Iterable[str]
) -> CheckpointOutcome:
    path = given or checkpoint_path(store.engine.url.render_as_string(hide_password=False))
    shown = str(path) if path else None
    note = read_note(path) if path else None
    if note is None:
        return CheckpointOutcome(shown, "none")
    try:
        cp, signer = open_note(note, trusted_keys(key_path(), verifier_keys))
    except CheckpointError as exc:
        return CheckpointOutcome(shown, "failed", code="signature", message=str(exc))
    with read_connection(store.engine, "checking the log against its checkpoint") as conn:
        heads = read_heads(conn)
        problem = check(
            cp,
            heads.origin,
            heads.size,
            lambda seq: hash_at(conn, "audit_record", seq),
            heads.ledger_size,
            lambda seq: hash_at(conn, "ledger_link", seq),
        )
    if problem is not None:
        return CheckpointOutcome(shown, "failed", cp, signer, problem.code, problem.message)
    return CheckpointOutcome(shown, "matches", cp, signer)
