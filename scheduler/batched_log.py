"""A backtest's decision log: whole cycles per transaction (issue 18, docs/decisions.md D93,
D180, D211).

Live and paper write every record in its own durable commit before anything acts (write before
act). A backtest's broker is the paper venue and its database can be made again by running
the backtest again, so its cycles' records - each decision, then its order, status, fill and
rejection links - are kept and written with their ledger's writes in ONE transaction: when the
week's signed checkpoint is due, when ``CYCLES_PER_COMMIT`` cycles wait, when another writer is
about to append or read (``AuditStore.holds_back``), and at the end. They are sealed there with the same sequence
numbers, hashes and stamps record-by-record writing gives them
(tests/scheduler/test_batched_log.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from adapters.storage.audit_store import AuditStore
from adapters.storage.ledger_store import CycleWrites
from engine.records.audit import (
    Draft,
    ExecutionLink,
    RunMode,
    StoredRow,
    UnknownDecision,
    draft_decision,
    draft_link,
)
from engine.records.decision import Decision
from engine.records.log import Receipt, existing_receipt

if TYPE_CHECKING:
    from adapters.storage.database import Connection  # sqlalchemy stays in adapters.storage


# Ended cycles kept before a write: bounds the memory a backtest holds (a cycle's records are a
# few kilobytes) while paying one commit for a week of cycles; a week's checkpoint writes sooner.
CYCLES_PER_COMMIT = 256


class CycleBatchedLog:
    """The ``DecisionLog`` port on an ``AuditStore``, whole cycles per transaction.

    Receipts are sealed against the head as this log last wrote it (read once at the start);
    the rows are sealed again inside the write's transaction against the head found there, so
    a note written between two writes by another writer only moves the numbers. Another
    writer or reader on the same store writes the kept records first (``holds_back``)."""

    def __init__(self, store: AuditStore, mode: RunMode, ledger: CycleWrites | None = None):
        self.store = store
        self.mode = RunMode(mode)
        # the cycles' ledger and venue writes, committed in the records' transaction (D180)
        self._ledger = ledger
        if ledger is not None:
            ledger.attached = True
        self._head: tuple[int, str] | None = None
        self._drafts: list[tuple[Draft, datetime]] = []  # unwritten records, with their times
        self._unwritten: dict[str, StoredRow] = {}  # decision id -> its (provisional) row
        self._recorded: set[str] = set()  # every decision this log has written
        self._texts: dict[str, tuple[str, str]] = {}
        self._last: tuple[int, str] = (0, "")  # the last row sealed and not yet written
        self._waiting = 0  # ended cycles whose writes are not yet written
        store.holds_back(self.flush)  # any other writer or reader of the store writes them first

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        draft = draft_decision(decision, self.mode, self.store.masks, self.store.secrets)
        known = self._unwritten.get(draft.decision_id)
        if known is None and draft.decision_id in self._recorded:
            known = self.store.recorded(draft.decision_id, self.mode)
        if known is not None:
            return existing_receipt(known, draft)
        c = decision.constitution
        self._texts.setdefault(c.digest, (c.version, constitution_text))
        receipt, row = self._seal(draft)
        self._unwritten[draft.decision_id] = row
        return receipt

    def link(self, link: ExecutionLink) -> Receipt:
        did = link.decision_id
        known = did in self._unwritten or did in self._recorded
        if not known and self.store.recorded(did, self.mode) is None:
            raise UnknownDecision(
                f"no decision {did} in the log: execution must follow a recorded decision"
            )
        return self._seal(draft_link(link, self.mode, self.store.masks, self.store.secrets))[0]

    def _seal(self, draft: Draft) -> tuple[Receipt, StoredRow]:
        if self._head is None:
            self._head = self.store.head()
        seq, prev = self._last if self._drafts else self._head
        now = self.store.clock.now()
        row = draft.seal(seq + 1, prev, now)
        self._last = (row.seq, row.hash)
        self._drafts.append((draft, now))
        return Receipt(seq=row.seq, hash=row.hash, decision_id=row.decision_id, created=True), row

    def end_cycle(self) -> None:
        """The cycle's records and ledger writes wait for the next write (nothing to keep after
        a quiet tick that changed nothing)."""
        if self._drafts or (self._ledger is not None and self._ledger.pending):
            self._waiting += 1
        if self._waiting >= CYCLES_PER_COMMIT:
            self.flush()

    def flush(self) -> None:
        """Write every record and ledger write kept so far, in one transaction."""
        self._waiting = 0
        if not self._drafts:
            if self._ledger is not None:
                self._ledger.flush()
            return
        drafts, texts = self._drafts, self._texts
        self._recorded.update(self._unwritten)
        self._drafts, self._texts, self._unwritten = [], {}, {}
        ledger, where = self._ledger, f"recording {len(drafts)} records"

        def alongside(conn: Connection) -> None:
            if ledger is not None:
                ledger.write_into(conn, where)

        rows = self.store.append_drafts(drafts, self.mode, texts, alongside)
        self._head = (rows[-1].seq, rows[-1].hash)

    def checkpoint(self, constitution_digest: str) -> None:
        """The signed checkpoint of the head the kept records make, when one is due (D72):
        they are written first. (The cycle's end, ``end_cycle``, comes after it.)"""
        if self.store.checkpoint_due():
            self.store.checkpoint(constitution_digest)  # the store writes what is kept first

    def close(self) -> None:
        self.store.close()  # likewise
