"""The decision-log port the pipeline writes through, its receipts, and an in-memory log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, cast, runtime_checkable

from pydantic import BaseModel, ConfigDict

from engine.clock import Clock
from engine.records.audit import (
    GENESIS_HASH,
    DecisionConflict,
    Draft,
    ExecutionLink,
    RunMode,
    StoredRow,
    UnknownDecision,
    draft_decision,
    draft_link,
)
from engine.records.decision import Decision
from engine.records.masking import DEFAULT_MASKS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Receipt(_Frozen):
    """Proof the record is durably in the log: act only after you hold one."""

    seq: int
    hash: str
    decision_id: str
    created: bool  # False when the same decision was already recorded in this mode


class DecisionLog(Protocol):
    """What the pipeline calls. ``record`` returns only after the record is committed
    (durably), so the pipeline calls it BEFORE any broker call and acts on the receipt."""

    mode: RunMode

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        """Append ``decision`` (and store ``constitution_text`` once per digest, so the
        decision can be replayed after the file is gone). Idempotent per (decision_id, mode):
        recording an identical decision again returns the first receipt."""

    def link(self, link: ExecutionLink) -> Receipt:
        """Append an execution link; raises ``UnknownDecision`` if the decision is not logged."""

    def checkpoint(self, constitution_digest: str) -> None:
        """Seal what is logged so far: a signed checkpoint of the log's (and the ledger's)
        head, kept outside the store. Called at the end of every decided cycle and at
        shutdown; a no-op when nothing moved since the last one."""


@runtime_checkable
class CycleBatched(Protocol):
    """A ``DecisionLog`` that keeps one cycle's records and links and writes them together
    when the cycle ends (a backtest's, docs/decisions.md D93). Its receipts are sealed in
    memory at once; the records are durable only after ``end_cycle``."""

    def end_cycle(self) -> None: ...


_BATCHED_CLASSES: dict[type, bool] = {}


def end_cycle_of(target: object) -> None:
    """``target.end_cycle()`` when ``target`` is ``CycleBatched``. Whether its class is one is
    asked once per class: ``isinstance`` with a runtime protocol walks the protocol's members
    on every call (~1 % of a 33-year backtest, twice per tick)."""
    cls = type(target)
    batched = _BATCHED_CLASSES.get(cls)
    if batched is None:
        batched = _BATCHED_CLASSES[cls] = isinstance(target, CycleBatched)
    if batched:
        cast(CycleBatched, target).end_cycle()


class InMemoryDecisionLog:
    """A real chained log held in memory: for tests of the pipeline and for dry runs."""

    def __init__(
        self,
        mode: RunMode,
        clock: Clock,
        masks: Iterable[str] = DEFAULT_MASKS,
        secrets: Iterable[str] = (),
    ) -> None:
        self.mode = RunMode(mode)
        self._clock = clock
        self._masks = tuple(masks)
        self._secrets = tuple(secrets)
        self.rows: list[StoredRow] = []
        self.constitutions: dict[str, str] = {}
        self._decisions: dict[str, StoredRow] = {}  # decision_id -> its decision record

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        draft = draft_decision(decision, self.mode, self._masks, self._secrets)
        self.constitutions.setdefault(decision.constitution.digest, constitution_text)
        if draft.decision_id in self._decisions:
            return existing_receipt(self._decisions[draft.decision_id], draft)
        receipt, row = self._append(draft)
        self._decisions[draft.decision_id] = row
        return receipt

    def link(self, link: ExecutionLink) -> Receipt:
        if link.decision_id not in self._decisions:
            raise UnknownDecision(f"no decision {link.decision_id} in the log")
        return self._append(draft_link(link, self.mode, self._masks, self._secrets))[0]

    def checkpoint(self, constitution_digest: str) -> None:
        """Nothing outlives the process: there is nothing to seal."""

    def _append(self, draft: Draft) -> tuple[Receipt, StoredRow]:
        seq = len(self.rows) + 1
        prev = self.rows[-1].hash if self.rows else GENESIS_HASH
        row = draft.seal(seq, prev, self._clock.now())
        self.rows.append(row)
        return Receipt(seq=seq, hash=row.hash, decision_id=row.decision_id, created=True), row


def existing_receipt(row: Sequence, draft: Draft) -> Receipt:
    """The receipt for a decision already logged, if it is the same decision."""
    if row[11] != draft.body:
        raise DecisionConflict(
            f"decision {draft.decision_id} was recorded at seq {row[0]} with different content"
        )
    return Receipt(seq=row[0], hash=row[12], decision_id=draft.decision_id, created=False)
