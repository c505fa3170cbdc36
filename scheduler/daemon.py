"""``alluse run``: the runner on the wall clock, driven by APScheduler 3.

* Jobs ``cycle`` (``CycleTrigger``) and ``weekly`` (``WeeklyTrigger``) are rebuilt from the
  constitution at every start, in APScheduler's memory job store: nothing executable is ever
  stored in (or loaded from) the database - APScheduler's SQL job store pickles job state, and
  a crafted row would run code as the daemon's user. A run missed while the daemon was down is
  covered by the resume sequence, which runs a risk-check cycle at start and writes a weekly
  report whose cut passed meanwhile (``Runner.resume``).
* One worker thread and ``max_instances=1``: no two cycles ever overlap, of the same job or of
  two jobs; a cycle that outlives its interval makes the next run wait, and runs that were
  missed meanwhile are coalesced into one if within ``misfire_grace_time``.
* Start-up: the resume sequence (``Runner.resume``) runs before the scheduler is unpaused.
* SIGINT/SIGTERM: the scheduler stops taking new runs and waits for the running cycle, which
  finishes and is journalled; then the process exits 0.
* The constitution file is polled at every cycle boundary (``ConstitutionWatcher``). A live
  daemon (and a paper one, unless ``allow_unapproved``) loads and hot-swaps only an approved
  version (scheduler.governance): an unapproved one is refused at start (exit 2) and by the
  watcher, and swapped in once it is approved.
* Alerts: a delivery job (own worker thread, never in the cycles' way) sends the outbox every
  ``DELIVER_EVERY_SECONDS`` when the deployment config routes alerts anywhere; its first run
  is at start, so a restart resends what was not acknowledged.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from adapters.storage.audit_store import open_decision_log
from adapters.storage.scheduler_store import SchedulerStore
from constitution.errors import AllUseError, RetryError
from constitution.load import load_constitution
from engine.clock import Clock, WallClock
from engine.records.audit import RunMode
from scheduler.alerting import DELIVER_EVERY_SECONDS
from scheduler.cadence import (
    NEW_YORK,
    CadenceSpec,
    CycleTrigger,
    EventKind,
    WeeklyTrigger,
    next_fire_times,
)
from scheduler.journal import SqlJournal
from scheduler.runner import CycleFactory, ResumeReport, Runner
from scheduler.watch import ConstitutionWatcher

if TYPE_CHECKING:
    from collections.abc import Callable

    from scheduler.alerting import Deliverer
    from scheduler.watch import Gate

log = logging.getLogger("alluse.daemon")

CYCLE_JOB, WEEKLY_JOB, ALERTS_JOB = "alluse-cycle", "alluse-weekly", "alluse-alerts"
_ACTIVE: Daemon | None = None  # the daemon the job functions call


@dataclass(frozen=True)
class DaemonConfig:
    constitution: Path
    db_url: str
    mode: RunMode = RunMode.PAPER
    misfire_grace_seconds: int = 60
    every: float | None = None  # demo/test schedule: a cycle every N seconds, around the clock
    run_id: str = "run"
    deployment: Any = None  # adapters.deployment.DeploymentConfig (None: beside the database)
    allow_unapproved: bool = False  # paper only: run a version no person approved


@dataclass(frozen=True)
class StartupSummary:
    mode: str
    constitution_version: str
    constitution_digest: str
    constitution_source: str
    db_url: str
    monitor_seconds: int
    level_seconds: tuple[int, int, int, int]
    next_events: tuple[tuple[datetime, tuple[EventKind, ...]], ...]
    next_runs: dict[str, datetime | None]
    resume: ResumeReport
    schedule: str = "constitution"


@dataclass
class _Outcome:
    exit_code: int = 0
    reason: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


def _cycle_job() -> None:
    if _ACTIVE is not None:
        _ACTIVE.fire("schedule")


def _weekly_job() -> None:
    if _ACTIVE is not None:
        _ACTIVE.fire("weekly_report")


def _alerts_job() -> None:
    if _ACTIVE is not None:
        _ACTIVE.deliver_alerts()


class Daemon:
    def __init__(self, config: DaemonConfig, build_cycle: CycleFactory, clock: Clock | None = None):
        self.config = config
        self.clock = clock or WallClock()
        constitution = load_constitution(config.constitution)  # InvalidInput: refuse to start
        gate = _approval_gate(config)
        refused = gate(constitution) if gate is not None else None
        if refused is not None:
            from scheduler.governance import NotApproved

            raise NotApproved([refused], what="constitution")
        self.alerts = _deliverer(config, self.clock)  # an unset secret refuses the start
        self.store = SchedulerStore.open(config.db_url)
        self.notes = open_decision_log(config.db_url, config.mode, self.clock)
        try:  # building the first cycle connects a live broker: LiveRefused (exit 3) if it cannot
            self.runner = Runner(
                constitution,
                build_cycle,
                SqlJournal(self.store, config.run_id),
                notes=self.notes,
                watcher=ConstitutionWatcher(config.constitution, constitution, gate),
                on_schedule=self._reschedule,
            )
        except BaseException:
            self.notes.close()
            self.store.close()
            if self.alerts is not None:
                self.alerts.close()
            raise
        self.outcome = _Outcome()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={
                "default": ThreadPoolExecutor(max_workers=1),
                "notify": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": config.misfire_grace_seconds,
            },
            timezone=NEW_YORK,
        )

    # ------------------------------------------------------------------ jobs

    def _cycle_trigger(self, spec: CadenceSpec, seconds: int) -> IntervalTrigger | CycleTrigger:
        if self.config.every:
            return IntervalTrigger(seconds=self.config.every, timezone=NEW_YORK)
        return CycleTrigger(spec, seconds)

    def _install_jobs(self) -> None:
        spec, seconds = self.runner.state.spec, self.runner.state.monitor_seconds
        wanted = {CYCLE_JOB: (_cycle_job, self._cycle_trigger(spec, seconds))}
        if not self.config.every:
            wanted[WEEKLY_JOB] = (_weekly_job, WeeklyTrigger(spec))
        if self.alerts is not None:
            wanted[ALERTS_JOB] = (_alerts_job, None)
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for job_id, (func, trigger) in wanted.items():
            if job_id == ALERTS_JOB:
                continue
            existing = self.scheduler.get_job(job_id)
            if existing is not None and existing.trigger == trigger:
                continue  # installed before the resume cycle, and the level did not move
            self.scheduler.add_job(func, trigger, id=job_id, name=job_id, replace_existing=True)
        if ALERTS_JOB in wanted:  # first run now: what a previous run left goes first
            self.scheduler.add_job(
                _alerts_job,
                IntervalTrigger(seconds=DELIVER_EVERY_SECONDS, timezone=NEW_YORK),
                id=ALERTS_JOB,
                name=ALERTS_JOB,
                replace_existing=True,
                executor="notify",
                next_run_time=self.clock.now(),
            )

    def _reschedule(self, spec: CadenceSpec, seconds: int) -> None:
        """A level change or a swapped constitution: new triggers from now on."""
        if not self.scheduler.running or self.config.every:
            return
        for job_id, trigger in (
            (CYCLE_JOB, CycleTrigger(spec, seconds)),
            (WEEKLY_JOB, WeeklyTrigger(spec)),
        ):
            job = self.scheduler.get_job(job_id)
            if job is not None and job.trigger != trigger:
                self.scheduler.reschedule_job(job_id, trigger=trigger)
        log.info(
            "monitoring every %ss (constitution %s)",
            seconds,
            self.runner.state.constitution.version,
        )

    def fire(self, reason: str) -> None:
        """Called by APScheduler's single worker thread. Failures are recorded; a transient
        one waits for the next run, anything else stops the daemon (exit 3 / 1)."""
        at = self.clock.now()
        try:
            if reason == "weekly_report":
                self.runner.weekly(at)
            else:
                self.runner.cycle(at, reason)
        except RetryError as exc:
            self.runner.journal.event(at, "cycle_retry", {"error": str(exc), "reason": reason})
            log.warning("cycle at %s failed, will retry at the next run: %s", at.isoformat(), exc)
        except Exception as exc:  # noqa: BLE001 - recorded, then the daemon stops
            code = exc.exit_code if isinstance(exc, AllUseError) else 1
            self.runner.journal.event(
                at, "cycle_failed", {"error": repr(exc), "reason": reason, "exit_code": code}
            )
            log.error("cycle at %s failed; stopping: %r", at.isoformat(), exc)
            self.request_stop(code, f"cycle failed: {exc}")

    def deliver_alerts(self) -> None:
        """The delivery job: failures are the outbox's to retry; nothing here stops the daemon."""
        if self.alerts is None:
            return
        try:
            report = self.alerts.deliver()
        except Exception as exc:  # noqa: BLE001 - the database may be busy: next run
            log.warning("alert delivery failed, will retry: %s", type(exc).__name__)
            return
        if report.failed:
            log.warning("%d alert deliveries failed; they are retried", len(report.failed))

    # ------------------------------------------------------------------ life cycle

    def start(self) -> StartupSummary:
        global _ACTIVE
        _ACTIVE = self
        now = self.clock.now()
        self.runner.journal.event(
            now, "start", {"mode": self.config.mode.value, "every": self.config.every}
        )
        self.scheduler.start(paused=True)
        self._install_jobs()
        resumed = self.runner.resume(
            now
        )  # in this thread: the scheduler is paused, nothing overlaps
        self._install_jobs()
        self.scheduler.resume()
        return self.summary(now, resumed)

    def summary(self, now: datetime, resumed: ResumeReport) -> StartupSummary:
        c, spec = self.runner.state.constitution, self.runner.state.spec
        return StartupSummary(
            mode=self.config.mode.value,
            constitution_version=c.version,
            constitution_digest=c.digest,
            constitution_source=c.source,
            db_url=self.config.db_url,
            monitor_seconds=self.runner.state.monitor_seconds,
            level_seconds=spec.level_seconds,
            next_events=tuple(next_fire_times(spec, now, 8)),
            next_runs={j.id: j.next_run_time for j in self.scheduler.get_jobs()},
            resume=resumed,
            schedule=f"every {self.config.every}s (demo/test)"
            if self.config.every
            else "constitution",
        )

    def request_stop(self, exit_code: int = 0, reason: str = "signal") -> None:
        if not self.outcome.stop.is_set():
            self.outcome.exit_code, self.outcome.reason = exit_code, reason
            self.outcome.stop.set()

    def shutdown(self) -> int:
        """Stop taking runs, let the running cycle finish (it is journalled), then close."""
        global _ACTIVE
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.runner.journal.event(
            self.clock.now(),
            "stop",
            {"reason": self.outcome.reason, "exit_code": self.outcome.exit_code},
        )
        _ACTIVE = None
        try:  # the last word, signed; a failure is logged, and the shutdown goes on
            self.notes.checkpoint(self.runner.state.constitution.digest)
        except AllUseError as exc:
            log.error("no checkpoint at shutdown: %s", exc)
        close = getattr(self.runner.build_cycle, "close", None)
        if close is not None:  # the live builder holds the broker connection
            close()
        self.notes.close()
        self.store.close()
        if self.alerts is not None:
            self.alerts.close()
        return self.outcome.exit_code

    def serve(self, on_started: Callable[[StartupSummary], None] | None = None) -> int:
        """Run until SIGINT/SIGTERM (or a fatal cycle error); the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(
                sig, lambda signum, _frame: self.request_stop(0, signal.Signals(signum).name)
            )
        try:
            summary = self.start()
        except BaseException as exc:  # e.g. the resume cycle could not reach the broker
            self.request_stop(
                exc.exit_code if isinstance(exc, AllUseError) else 1, f"start failed: {exc}"
            )
            self.shutdown()
            raise
        if on_started:
            on_started(summary)
        while not self.outcome.stop.wait(0.5):
            pass
        return self.shutdown()


def _approval_gate(config: DaemonConfig) -> Gate | None:
    """Live always, paper unless ``allow_unapproved``: constitution -> refusal or None."""
    if config.mode is not RunMode.LIVE and config.allow_unapproved:
        return None
    from scheduler.governance import unapproved_problem

    return lambda constitution: unapproved_problem(constitution, config.db_url)


def _deliverer(config: DaemonConfig, clock: Clock) -> Deliverer | None:
    from scheduler.alerting import deliverer_for

    return deliverer_for(config.db_url, clock, config.deployment)
