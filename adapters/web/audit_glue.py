"""The dashboard's only contact with the audit log's verification and replay.

The chain, the ledger's chain and the signed checkpoint beside the database are verified with
``adapters.storage.audit_verify.verify_all`` (the code path of ``alluse audit verify``); a
decision is replayed with ``engine.records.replay.replay`` through the decision pipeline
(``engine.cycle.pipeline.redecide``: rules, then the risk review with its recorded inputs), as
``alluse audit replay`` does. A log without a checkpoint says so rather than hides it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import Any

from pydantic import BaseModel, ConfigDict

from adapters.storage.audit_verify import CheckpointOutcome, verify_all
from adapters.storage.readers import ReadOnlyDatabase
from engine.clock import Clock
from engine.records.audit import AuditRecord
from engine.records.replay import replay


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Checkpoint(_View):
    seq: int
    head_hash: str
    at: str


class ChainStatus(_View):
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    problem: str | None
    verified_at: str
    checkpoint: Checkpoint | None  # the latest signed checkpoint (none before issue 16)
    checkpoint_note: str


class ReplayView(_View):
    seq: int
    decision_id: str
    identical: bool
    differences: list[str]
    notes: list[str]


NO_CHECKPOINTS = "no signed checkpoint: truncation and re-chaining cannot be detected"


def _checkpoint_view(outcome: CheckpointOutcome) -> Checkpoint | None:
    cp = outcome.checkpoint
    return None if cp is None else Checkpoint(seq=cp.size, head_hash=cp.head, at=cp.time)


def _checkpoint_note(outcome: CheckpointOutcome) -> str:
    if outcome.status == "matches":
        return f"the log matches the checkpoint signed by {outcome.signer}"
    if outcome.status == "failed":
        return f"checkpoint {outcome.code}: {outcome.message}"
    return NO_CHECKPOINTS


def latest_checkpoint(db: ReadOnlyDatabase, clock: Clock) -> Checkpoint | None:
    """The latest signed checkpoint of the log, read and checked as ``audit verify`` does."""
    return _checkpoint_view(verify_all(db.audit(clock)).checkpoint)


def verify(db: ReadOnlyDatabase, clock: Clock) -> ChainStatus:
    """The audit chain, the ledger's chain and the checkpoint, as ``alluse audit verify``."""
    full = verify_all(db.audit(clock))
    report, problem = full.chain, full.chain.problem
    text = f"seq {problem.seq}: {problem.code}: {problem.message}" if problem else None
    if text is None and full.ledger is not None and full.ledger.problem is not None:
        text = f"ledger {full.ledger.problem.code}: {full.ledger.problem.message}"
    if text is None and full.checkpoint.status == "failed":
        text = _checkpoint_note(full.checkpoint)
    return ChainStatus(
        ok=text is None,
        count=report.count,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problem=text,
        verified_at=clock.now().isoformat(),
        checkpoint=_checkpoint_view(full.checkpoint),
        checkpoint_note=_checkpoint_note(full.checkpoint),
    )


def checkpoint_age(db: ReadOnlyDatabase, clock: Clock) -> float | None:
    cp = latest_checkpoint(db, clock)
    now = clock.now()
    return (
        None
        if cp is None
        else (now - datetime.fromisoformat(cp.at.replace("Z", "+00:00"))).total_seconds()
    )


def replay_decision(db: ReadOnlyDatabase, clock: Clock, ident: str) -> ReplayView | None:
    """Re-evaluate a recorded decision's facts under its recorded constitution (read-only)."""
    store = db.audit(clock)
    found = db.decision_by(ident)
    if found is None:
        return None
    record: AuditRecord | None = store.get(found.seq)
    if record is None or record.constitution_digest is None:
        return None
    text = store.constitution_text(record.constitution_digest)
    if text is None:
        return ReplayView(
            seq=record.seq,
            decision_id=record.decision_id,
            identical=False,
            differences=[],
            notes=[f"the text of constitution {record.constitution_digest} is not in the log"],
        )
    result = replay(record, text, *_pipeline())
    return ReplayView(
        seq=record.seq,
        decision_id=result.decision_id,
        identical=result.identical,
        differences=list(result.differences),
        notes=list(result.notes),
    )


def _pipeline() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(load a logged constitution text as it was, the pipeline's ``redecide``)."""
    load_text = import_module("constitution.load").load_constitution_text
    redecide = import_module("engine.cycle.pipeline").redecide

    def load(text: str, source: str) -> Any:
        return load_text(text, source, released_check=False)

    return load, redecide
