"""Where the scheduler keeps what its cycles reported: in the project database for the daemon
(survives a crash: the weekly report and the resume snapshot read it back), in memory for a
backtest (tens of thousands of cycles; the audit log already holds every decision)."""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from typing import Protocol

from adapters.storage.scheduler_store import SchedulerStore
from engine.cycle.report import CycleReport
from engine.records.audit import utc_stamp
from scheduler.weekly import WeekReport


class Journal(Protocol):
    def append(self, at: datetime, reason: str, report: CycleReport) -> None: ...
    def reports_between(self, start: datetime, end: datetime) -> list[CycleReport]: ...
    def last(self) -> CycleReport | None: ...
    def last_before(self, at: datetime) -> CycleReport | None: ...
    def put_week(self, week: WeekReport) -> bool: ...
    def weeks(self) -> list[WeekReport]: ...
    def event(self, at: datetime, kind: str, detail: dict) -> None: ...


class MemoryJournal:
    def __init__(self) -> None:
        self.stamps: list[str] = []
        self.reports: list[CycleReport] = []
        self._weeks: dict[str, WeekReport] = {}
        self.events: list[tuple[datetime, str, dict]] = []

    def append(self, at: datetime, reason: str, report: CycleReport) -> None:
        self.stamps.append(utc_stamp(at))
        self.reports.append(report)

    def reports_between(self, start: datetime, end: datetime) -> list[CycleReport]:
        lo, hi = (
            bisect_left(self.stamps, utc_stamp(start)),
            bisect_left(self.stamps, utc_stamp(end)),
        )
        return self.reports[lo:hi]

    def last(self) -> CycleReport | None:
        return self.reports[-1] if self.reports else None

    def last_before(self, at: datetime) -> CycleReport | None:
        i = bisect_left(self.stamps, utc_stamp(at))
        return self.reports[i - 1] if i else None

    def put_week(self, week: WeekReport) -> bool:
        key = week.week_start.isoformat()
        if key in self._weeks:
            return False
        self._weeks[key] = week
        return True

    def weeks(self) -> list[WeekReport]:
        return [self._weeks[k] for k in sorted(self._weeks)]

    def event(self, at: datetime, kind: str, detail: dict) -> None:
        self.events.append((at, kind, detail))


class SqlJournal:
    def __init__(self, store: SchedulerStore, run_id: str):
        self.store = store
        self.run_id = run_id

    def append(self, at: datetime, reason: str, report: CycleReport) -> None:
        self.store.append_cycle(
            at, self.run_id, reason, report.decision_id, report.model_dump(mode="json")
        )

    def reports_between(self, start: datetime, end: datetime) -> list[CycleReport]:
        return [CycleReport.model_validate(r.report) for r in self.store.cycles_between(start, end)]

    def last(self) -> CycleReport | None:
        row = self.store.last_cycle()
        return None if row is None else CycleReport.model_validate(row.report)

    def last_before(self, at: datetime) -> CycleReport | None:
        rows = self.store.cycles_between(at - timedelta(days=14), at)
        return CycleReport.model_validate(rows[-1].report) if rows else None

    def put_week(self, week: WeekReport) -> bool:
        return self.store.put_week(
            week.week_start.isoformat(), week.cut_at, week.week_type, week.model_dump(mode="json")
        )

    def weeks(self) -> list[WeekReport]:
        return [WeekReport.model_validate(r) for _, _, r in self.store.weeks()]

    def event(self, at: datetime, kind: str, detail: dict) -> None:
        self.store.append_event(at, self.run_id, kind, detail)
