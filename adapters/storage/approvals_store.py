"""Approval requests on the database (engine.execution.approvals.ApprovalStore).

Table ``approval`` (component ``approvals``): one row per request, its current state and its
JSON body. The row is mutable (its state moves); its history is in the audit log: every change
is saved in ONE write transaction with its audit-log record (a ``note`` link on the decision
that asked, ``AuditStore.append_link(alongside=...)``) and its notification (the outbox).
A change from a state the row is no longer in (the daemon expiring a request while a person
approves it) is refused with ``ApprovalClosed`` and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from adapters.storage.audit_store import AuditStore
from adapters.storage.migrations import Migration, migrate, register
from adapters.storage.outbox import SqlOutbox
from engine.execution.approvals import OPEN_STATES, Approval, ApprovalClosed, State
from engine.records.alerts import Alert
from engine.records.audit import ExecutionLink, RunMode, utc_stamp

COMPONENT = "approvals"
_DDL = (
    "CREATE TABLE approval (id TEXT PRIMARY KEY, subject TEXT NOT NULL, state TEXT NOT NULL,"
    " mode TEXT NOT NULL, decision_id TEXT NOT NULL, requested_at TEXT NOT NULL,"
    " expires_at TEXT NOT NULL, answered_at TEXT, body TEXT NOT NULL)",
    "CREATE INDEX ix_approval_state ON approval (state, requested_at)",
    "CREATE INDEX ix_approval_subject ON approval (subject, answered_at)",
)
register(Migration(COMPONENT, 1, "approval requests", _DDL, _DDL))
_OPEN = "('pending', 'approved')"


class SqlApprovalStore:
    """``exclusive``: this process is the only writer (a backtest): open requests are kept
    in memory instead of read at every tick."""

    def __init__(
        self,
        audit: AuditStore,
        outbox: SqlOutbox | None = None,
        *,
        exclusive: bool = False,
    ):
        """A request's link follows its decision in the chain: ``audit`` writes what a
        backtest's log holds back first (``AuditStore.holds_back``)."""
        self.audit = audit
        self.outbox = outbox
        self.exclusive = exclusive
        migrate(audit.engine, [COMPONENT])
        self._cache: dict[str, Approval] | None = None

    # ------------------------------------------------------------------ the port

    def open_approvals(self) -> list[Approval]:
        if self.exclusive and self._cache is not None:
            return sorted(self._cache.values(), key=lambda a: (a.requested_at, a.id))
        found = self._bodies(f"WHERE state IN {_OPEN} ORDER BY requested_at, id", {})
        if self.exclusive:
            self._cache = {a.id: a for a in found}
        return found

    def last_closed(self, subject: str) -> Approval | None:
        found = self._bodies(
            f"WHERE subject = :s AND state NOT IN {_OPEN} ORDER BY answered_at DESC, id LIMIT 1",
            {"s": subject},
        )
        return found[0] if found else None

    def save(
        self, approval: Approval, prior: State | None, link: ExecutionLink, alerts: Sequence[Alert]
    ) -> None:
        self.audit.append_link(
            link,
            RunMode(approval.mode),
            alongside=lambda conn: self._write(conn, approval, prior, alerts),
        )
        if self._cache is not None:
            if approval.state in OPEN_STATES:
                self._cache[approval.id] = approval
            else:
                self._cache.pop(approval.id, None)

    # ------------------------------------------------------------------ reading

    def get(self, approval_id: str) -> Approval | None:
        found = self._bodies("WHERE id = :i", {"i": approval_id})
        return found[0] if found else None

    def listed(self, states: Sequence[str] = (), limit: int = 50) -> list[Approval]:
        """Requests in ``states`` (all when empty), the most recent ``limit``, oldest first."""
        where = ""
        params: dict = {"l": limit}
        if states:
            names = [f":s{i}" for i in range(len(states))]
            where = f"WHERE state IN ({', '.join(names)}) "
            params |= {f"s{i}": s for i, s in enumerate(states)}
        rows = self._bodies(f"{where}ORDER BY requested_at DESC, id DESC LIMIT :l", params)
        return list(reversed(rows))

    def _bodies(self, clause: str, params: dict) -> list[Approval]:
        from adapters.storage.database import read_connection

        with read_connection(self.audit.engine, "reading approvals") as conn:
            rows = conn.execute(text(f"SELECT body FROM approval {clause}"), params).all()
        return [Approval.model_validate_json(r[0]) for r in rows]

    # ------------------------------------------------------------------ writing

    def _write(
        self, conn: Connection, a: Approval, prior: State | None, alerts: Sequence[Alert]
    ) -> None:
        row = conn.execute(text("SELECT state FROM approval WHERE id = :i"), {"i": a.id}).first()
        stored = row[0] if row is not None else None
        if stored != prior:
            raise ApprovalClosed(
                f"approval {a.id} is {stored or 'unknown'}"
                + (f", not {prior}" if prior else ", it exists already")
                + ": nothing changed"
            )
        values = {
            "i": a.id,
            "su": a.subject,
            "st": a.state,
            "m": a.mode,
            "d": a.decision_id,
            "r": utc_stamp(a.requested_at),
            "e": utc_stamp(a.expires_at),
            "an": utc_stamp(a.answered_at) if a.answered_at else None,
            "b": a.model_dump_json(),
        }
        if row is None:
            conn.execute(
                text(
                    "INSERT INTO approval (id, subject, state, mode, decision_id, requested_at,"
                    " expires_at, answered_at, body) VALUES (:i, :su, :st, :m, :d, :r, :e, :an, :b)"
                ),
                values,
            )
        else:
            conn.execute(
                text("UPDATE approval SET state = :st, answered_at = :an, body = :b WHERE id = :i"),
                values,
            )
        if self.outbox is not None:
            self.outbox.enqueue(conn, alerts)
