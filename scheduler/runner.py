"""The one runtime both clocks drive: cycle boundaries, levels, weeks, swaps, resume.

The daemon (APScheduler on the wall clock) and the replay driver (the same triggers on a
simulated clock) call exactly these methods; nothing here knows which clock is asking.

* ``cycle(at)``   - at the boundary, apply a pending constitution swap (or record a refused
  edit); run the pipeline cycle; journal its report; move the monitoring interval when the
  protocol levels moved it.
* ``weekly(at)``  - one more evaluation at the cut (report-time rules), then the week's label
  and report, recorded once (a restart never labels a week twice).
* ``resume(now)`` - the §9 resume sequence after a (re)start: load snapshot -> broker state
  and reconcile -> rebuild schedule -> risk check -> ACTIVE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from constitution.load import LoadedConstitution
from engine.cycle.report import Cycle, CycleReport
from engine.market import calendar
from engine.records.audit import ExecutionLink
from scheduler.cadence import NEW_YORK, CadenceSpec, WeeklyTrigger, spec_from
from scheduler.journal import Journal
from scheduler.watch import ConstitutionWatcher, Refusal, Swap
from scheduler.weekly import WeekReport, build_report, week_start

if TYPE_CHECKING:
    from engine.records.log import Receipt

CycleFactory = Callable[[LoadedConstitution], Cycle]


class NoteLog(Protocol):
    def link(self, link: ExecutionLink) -> Receipt: ...


@runtime_checkable
class Resumable(Protocol):
    """Optional: a cycle that can fetch broker state and reconcile (cancel orphan orders)
    before trading resumes. Returns a summary for the record."""

    def resume(self, at: datetime) -> dict: ...


@dataclass(frozen=True)
class ResumeReport:
    fresh: bool
    snapshot_at: str | None
    steps: tuple[str, ...]
    monitor_seconds: int  # the interval the schedule was rebuilt with, from the snapshot
    caught_up_week: str | None
    risk_check: CycleReport | None = None


@dataclass
class RunnerState:
    constitution: LoadedConstitution
    spec: CadenceSpec
    monitor_seconds: int
    levels: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        constitution: LoadedConstitution,
        build_cycle: CycleFactory,
        journal: Journal,
        notes: NoteLog | None = None,
        watcher: ConstitutionWatcher | None = None,
        on_schedule: Callable[[CadenceSpec, int], None] | None = None,
    ):
        spec = spec_from(constitution.model)
        self.state = RunnerState(constitution, spec, spec.level_interval(0))
        self.build_cycle = build_cycle
        self.cycle_impl = build_cycle(constitution)
        self.journal = journal
        self.notes = notes
        self.watcher = watcher
        self.on_schedule = on_schedule

    # ---------------------------------------------------------------- cycles

    def cycle(self, at: datetime, reason: str = "schedule") -> CycleReport:
        change = self.watcher.poll() if self.watcher else None
        if isinstance(change, Swap):
            self._swap(change)
        report = self.cycle_impl.run(at)
        self.journal.append(at, reason, report)
        if change is not None:
            self._record_change(at, change, report.decision_id)
        self._follow_levels(report)
        return report

    def _swap(self, swap: Swap) -> None:
        # Only between cycles: the cycle that is running finishes under the version it began with.
        self.state.constitution = swap.new
        self.state.spec = spec_from(swap.new.model)
        self.cycle_impl = self.build_cycle(swap.new)
        self.state.monitor_seconds = self.state.spec.monitor_interval(self.state.levels)
        if self.on_schedule:
            self.on_schedule(self.state.spec, self.state.monitor_seconds)

    def _record_change(self, at: datetime, change: Swap | Refusal, decision_id: str) -> None:
        detail = change.detail()
        self.journal.event(at, detail["event"], detail)
        self.note(decision_id, detail)

    def note(self, decision_id: str, data: dict) -> None:
        """Attach ``data`` to a decision in the audit log (a ``note`` link): swaps, refusals
        and weekly reports sit in the hash chain next to the decision they preceded."""
        if self.notes is not None:
            self.notes.link(
                ExecutionLink(decision_id=decision_id, kind="note", ref=data["event"], data=data)
            )

    def _follow_levels(self, report: CycleReport) -> None:
        self.state.levels = dict(report.account_levels)
        seconds = self.state.spec.monitor_interval(self.state.levels)
        if seconds != self.state.monitor_seconds:
            self.state.monitor_seconds = seconds
            if self.on_schedule:
                self.on_schedule(self.state.spec, seconds)

    # ---------------------------------------------------------------- weeks

    def weekly(self, at: datetime, evaluate: bool = True) -> WeekReport | None:
        """The report cut at ``at``: one evaluation (report-time rules: the quarter's
        reinvestment), then the reports of every period that ends this session (§11): the
        week's (labelled, returned), the month's and the quarter's (stored as note links).
        ``evaluate=False`` (catching up a week missed while down) reports from what was
        journalled, without a new cycle."""
        ends = calendar.period_ends(at.astimezone(NEW_YORK).date())
        if evaluate:
            self.cycle(at, "weekly_report" if "week" in ends or not ends else "report_cut")
        for kind in ("month", "quarter"):
            if kind in ends:
                self._period_report(kind, at)
        if ends and "week" not in ends:
            return None
        return self._week_report(at)

    def _period_report(self, kind: str, at: datetime) -> None:
        from scheduler.reports.periodic import build_month_report

        ny = at.astimezone(NEW_YORK)
        if kind == "month":
            year = datetime(ny.year, 1, 1, tzinfo=NEW_YORK)
            body = build_month_report(
                self.journal.reports_between(year, at + timedelta(microseconds=1)),
                self.journal.last_before(year),
                ny,
            ).model_dump(mode="json")
        else:
            books = getattr(self.cycle_impl, "period_books", None)
            if books is None:
                return
            body = {"cut_at": ny.isoformat(), **books(at)}
        last = self.journal.last()
        event = f"{kind}ly_report"
        self.journal.event(at, event, body)
        if last is not None:
            self.note(last.decision_id, {"event": event, **body})

    def _week_report(self, at: datetime) -> WeekReport | None:
        monday = datetime.combine(
            week_start(at.astimezone(NEW_YORK).date()), time(0), tzinfo=NEW_YORK
        )
        reports = self.journal.reports_between(monday, at + timedelta(microseconds=1))
        if not reports:
            return None
        opening = self.journal.last_before(monday)
        week = build_report(
            reports,
            self.state.constitution.model.week_types,
            at.astimezone(NEW_YORK),
            opening.equity if opening else None,
        )
        if self.journal.put_week(week):
            self.note(
                reports[-1].decision_id, {"event": "weekly_report", **week.model_dump(mode="json")}
            )
            return week
        return None

    # ---------------------------------------------------------------- resume

    def resume(self, now: datetime) -> ResumeReport:
        last = self.journal.last()
        steps = [
            "load snapshot: "
            + (f"last cycle {last.at.isoformat()}" if last else "none (first start)")
        ]
        if last is not None:
            self.state.levels = dict(last.account_levels)
            self.state.monitor_seconds = self.state.spec.monitor_interval(self.state.levels)
        if isinstance(self.cycle_impl, Resumable):
            steps.append(f"broker state and reconcile: {self.cycle_impl.resume(now)}")
        else:
            steps.append(
                "broker state and reconcile: by the cycle (idempotent by decision and client order id)"
            )
        caught = self._catch_up_week(now, last)
        rebuilt = self.state.monitor_seconds
        steps.append(f"rebuild schedule: monitoring every {rebuilt}s")
        if self.on_schedule:
            self.on_schedule(self.state.spec, rebuilt)
        risk = self.cycle(now, "resume")
        steps.append(f"risk check: decision {risk.decision_id}, market {risk.market_mode}")
        steps.append("ACTIVE")
        report = ResumeReport(
            last is None,
            last.at.isoformat() if last else None,
            tuple(steps),
            rebuilt,
            caught.week_start.isoformat() if caught else None,
            risk,
        )
        self.journal.event(
            now,
            "resume",
            {
                "fresh": report.fresh,
                "steps": list(report.steps),
                "caught_up_week": report.caught_up_week,
            },
        )
        return report

    def _catch_up_week(self, now: datetime, last: CycleReport | None) -> WeekReport | None:
        """A weekly report whose cut passed while we were down is written from the journal."""
        if last is None:
            return None
        cut = WeeklyTrigger(self.state.spec).get_next_fire_time(None, last.at)
        if cut is None or cut > now:
            return None
        return self.weekly(cut, evaluate=False)
