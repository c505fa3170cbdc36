"""A backtest's decision log: one transaction per cycle (issue 18, docs/decisions.md D93, D180).

Live and paper write every record in its own durable commit before anything acts (write before
act). A backtest's broker is the paper venue and its database can be made again by running
the backtest again, so its cycle's records - the decision, then the order, status, fill and
rejection links - are kept and written in ONE transaction when the cycle ends (``end_cycle``,
called by ``engine.cycle.trading``), sealed there with the same sequence numbers, hashes and
stamps record-by-record writing gives them (tests/scheduler/test_batched_log.py).
"""

from __future__ import annotations

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


class CycleBatchedLog:
    """The ``DecisionLog`` port on an ``AuditStore``, one transaction per cycle.

    Receipts are sealed against the head as this log last wrote it (read once at the start);
    the rows are sealed again inside the cycle's transaction against the head found there, so
    a weekly note written between two cycles by another writer only moves the numbers."""

    def __init__(self, store: AuditStore, mode: RunMode, ledger: CycleWrites | None = None):
        self.store = store
        self.mode = RunMode(mode)
        # the cycle's ledger and venue writes, committed in the records' transaction (D180)
        self._ledger = ledger
        if ledger is not None:
            ledger.attached = True
        self._head: tuple[int, str] | None = None
        self._drafts: list[Draft] = []
        self._this_cycle: dict[str, StoredRow] = {}  # decision id -> its (provisional) row
        self._recorded: set[str] = set()  # every decision this log has written
        self._texts: dict[str, tuple[str, str]] = {}
        self._last: tuple[int, str] = (0, "")  # the last row sealed this cycle

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        draft = draft_decision(decision, self.mode, self.store.masks, self.store.secrets)
        known = self._this_cycle.get(draft.decision_id)
        if known is None and draft.decision_id in self._recorded:
            known = self.store.recorded(draft.decision_id, self.mode)
        if known is not None:
            return existing_receipt(known, draft)
        c = decision.constitution
        self._texts.setdefault(c.digest, (c.version, constitution_text))
        receipt, row = self._seal(draft)
        self._this_cycle[draft.decision_id] = row
        return receipt

    def link(self, link: ExecutionLink) -> Receipt:
        did = link.decision_id
        known = did in self._this_cycle or did in self._recorded
        if not known and self.store.recorded(did, self.mode) is None:
            raise UnknownDecision(
                f"no decision {did} in the log: execution must follow a recorded decision"
            )
        return self._seal(draft_link(link, self.mode, self.store.masks, self.store.secrets))[0]

    def _seal(self, draft: Draft) -> tuple[Receipt, StoredRow]:
        if self._head is None:
            self._head = self.store.head()
        seq, prev = self._last if self._drafts else self._head
        row = draft.seal(seq + 1, prev, self.store.clock.now())
        self._last = (row.seq, row.hash)
        self._drafts.append(draft)
        return Receipt(seq=row.seq, hash=row.hash, decision_id=row.decision_id, created=True), row

    def end_cycle(self) -> None:
        """Write the cycle's records, with its ledger's writes, in one transaction (nothing to
        do after a quiet tick)."""
        if not self._drafts:
            if self._ledger is not None:
                self._ledger.flush()
            return
        drafts, texts = self._drafts, self._texts
        self._recorded.update(self._this_cycle)
        self._drafts, self._texts, self._this_cycle = [], {}, {}
        ledger, where = self._ledger, f"recording {len(drafts)} records"

        def alongside(conn: Connection) -> None:
            if ledger is not None:
                ledger.write_into(conn, where)

        rows = self.store.append_drafts(drafts, self.mode, texts, alongside)
        self._head = (rows[-1].seq, rows[-1].hash)

    def checkpoint(self, constitution_digest: str) -> None:
        """The cycle's records first, then the signed checkpoint of the head they make."""
        self.end_cycle()
        self.store.checkpoint(constitution_digest)

    def close(self) -> None:
        self.end_cycle()
        self.store.close()
