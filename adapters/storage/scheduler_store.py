"""The scheduler's own tables (component ``scheduler``), next to the audit log.

``scheduler_cycle``  one row per cycle the scheduler ran: when, why, and the cycle's report
                     (JSON). The week's rows are what the weekly report is built from, and the
                     last row is the snapshot a restart resumes from.
``scheduler_week``   one row per labelled week: week type and the weekly report (JSON).
``scheduler_event``  start, stop, resume steps, constitution swaps and refused edits.

No job of APScheduler's is stored here (or anywhere): the daemon rebuilds its jobs from the
constitution at every start, so nothing executable lives in the database. A table
``apscheduler_jobs`` left by an older version is never read. Values cross this boundary as
plain text and dicts: the scheduler never sees SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from adapters.storage.database import create_db_engine, read_connection, write_transaction
from adapters.storage.migrations import Migration, migrate, register
from engine.records.audit import utc_stamp

COMPONENT = "scheduler"

_TABLES = (
    "CREATE TABLE scheduler_cycle (id {pk}, at TEXT NOT NULL, run_id TEXT NOT NULL,"
    " reason TEXT NOT NULL, decision_id TEXT NOT NULL, report TEXT NOT NULL)",
    "CREATE INDEX ix_scheduler_cycle_at ON scheduler_cycle (at)",
    "CREATE TABLE scheduler_week (week_start TEXT PRIMARY KEY, cut_at TEXT NOT NULL,"
    " week_type TEXT NOT NULL, report TEXT NOT NULL)",
    "CREATE TABLE scheduler_event (id {pk}, at TEXT NOT NULL, run_id TEXT NOT NULL,"
    " kind TEXT NOT NULL, detail TEXT NOT NULL)",
)

V1 = Migration(
    component=COMPONENT,
    version=1,
    description="scheduler_cycle, scheduler_week, scheduler_event",
    sqlite=tuple(s.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT") for s in _TABLES),
    postgresql=tuple(s.format(pk="BIGSERIAL PRIMARY KEY") for s in _TABLES),
)
register(V1)


def _stamp(at: datetime) -> str:
    return utc_stamp(at)  # fixed-width UTC text: string order is time order


@dataclass(frozen=True)
class CycleRow:
    at: str
    run_id: str
    reason: str
    decision_id: str
    report: dict


@dataclass(frozen=True)
class EventRow:
    at: str
    run_id: str
    kind: str
    detail: dict


class SchedulerStore:
    """Reads and writes the scheduler tables of one database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> SchedulerStore:
        engine = create_db_engine(url)
        migrate(engine, [COMPONENT])
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def append_cycle(
        self, at: datetime, run_id: str, reason: str, decision_id: str, report: dict
    ) -> None:
        with write_transaction(
            self.engine, "scheduler_cycle", "recording a scheduler cycle"
        ) as conn:
            conn.execute(
                text(
                    "INSERT INTO scheduler_cycle (at, run_id, reason, decision_id, report) VALUES (:a, :r, :w, :d, :j)"
                ),
                {
                    "a": _stamp(at),
                    "r": run_id,
                    "w": reason,
                    "d": decision_id,
                    "j": json.dumps(report, sort_keys=True),
                },
            )

    def cycles_between(self, start: datetime, end: datetime) -> list[CycleRow]:
        """Cycles with start <= at < end, in time order."""
        with read_connection(self.engine, "reading scheduler cycles") as conn:
            rows = conn.execute(
                text(
                    "SELECT at, run_id, reason, decision_id, report FROM scheduler_cycle WHERE at >= :s AND at < :e ORDER BY at, id"
                ),
                {"s": _stamp(start), "e": _stamp(end)},
            ).all()
        return [CycleRow(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def last_cycle(self) -> CycleRow | None:
        with read_connection(self.engine, "reading the last scheduler cycle") as conn:
            r = conn.execute(
                text(
                    "SELECT at, run_id, reason, decision_id, report FROM scheduler_cycle ORDER BY at DESC, id DESC LIMIT 1"
                )
            ).first()
        return None if r is None else CycleRow(r[0], r[1], r[2], r[3], json.loads(r[4]))

    def put_week(self, week_start: str, cut_at: datetime, week_type: str, report: dict) -> bool:
        """Record a week once; False when that week was already labelled (a restart)."""
        with write_transaction(self.engine, "scheduler_week", "recording a week") as conn:
            exists = conn.execute(
                text("SELECT 1 FROM scheduler_week WHERE week_start = :w"), {"w": week_start}
            ).first()
            if exists:
                return False
            conn.execute(
                text(
                    "INSERT INTO scheduler_week (week_start, cut_at, week_type, report) VALUES (:w, :c, :t, :j)"
                ),
                {
                    "w": week_start,
                    "c": _stamp(cut_at),
                    "t": week_type,
                    "j": json.dumps(report, sort_keys=True, default=str),
                },
            )
        return True

    def weeks(self) -> list[tuple[str, str, dict]]:
        with read_connection(self.engine, "reading weeks") as conn:
            rows = conn.execute(
                text("SELECT week_start, week_type, report FROM scheduler_week ORDER BY week_start")
            ).all()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def append_event(self, at: datetime, run_id: str, kind: str, detail: dict) -> None:
        with write_transaction(
            self.engine, "scheduler_event", "recording a scheduler event"
        ) as conn:
            conn.execute(
                text(
                    "INSERT INTO scheduler_event (at, run_id, kind, detail) VALUES (:a, :r, :k, :d)"
                ),
                {
                    "a": _stamp(at),
                    "r": run_id,
                    "k": kind,
                    "d": json.dumps(detail, sort_keys=True, default=str),
                },
            )

    def events(self, kind: str | None = None) -> list[EventRow]:
        with read_connection(self.engine, "reading scheduler events") as conn:
            q = "SELECT at, run_id, kind, detail FROM scheduler_event"
            rows = conn.execute(
                text(q + (" WHERE kind = :k" if kind else "") + " ORDER BY id"),
                {"k": kind} if kind else {},
            ).all()
        return [EventRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
