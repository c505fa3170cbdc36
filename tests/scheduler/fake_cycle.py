"""A hand-written Cycle for scheduler tests (no pipeline, no market data).

It records a minimal real decision in the audit log (so note links attach to it), reports
protocol levels and events from a script (in process) or from a control directory (for the
daemon subprocess: ``levels.json``, ``duration``), and traces every start and end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from constitution.canonical import digest
from constitution.load import LoadedConstitution
from engine.cycle.report import CycleReport
from engine.execution.events import WeekEvent
from engine.records.decision import ConstitutionRef, Decision, decision_id_for


def decision_for(constitution: LoadedConstitution, at: datetime) -> Decision:
    facts = {"as_of": at.isoformat(), "fake": True}
    facts_digest = digest(facts)
    return Decision(
        decision_id=decision_id_for(constitution.digest, facts_digest),
        as_of=at.isoformat(),
        constitution=ConstitutionRef(version=constitution.version, digest=constitution.digest),
        facts_digest=facts_digest,
        facts=facts,
        derived={},
        fired=(),
        actions=(),
    )


class FakeCycle:
    def __init__(
        self,
        constitution: LoadedConstitution,
        log=None,
        levels: Callable[[datetime], dict[str, int]] | None = None,
        events: Callable[[datetime], tuple[WeekEvent, ...]] | None = None,
        equity: Callable[[datetime], dict[str, float]] | None = None,
        duration: float = 0.0,
    ):
        self.constitution = constitution
        self.log = log
        self.levels = levels or (lambda at: {"GEN": 0, "REV": 0, "COM": 0})
        self.events = events or (lambda at: ())
        self.equity = equity or (lambda at: {"GEN": 40000.0, "REV": 30000.0, "COM": 30000.0})
        self.duration = duration
        self.calls: list[datetime] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def run(self, at: datetime) -> CycleReport:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.duration:
                time.sleep(self.duration)  # a slow broker/market-data round trip
            if self.log is not None:
                decision_id = decision_for(self.constitution, at).decision_id
                self.log.record(decision_for(self.constitution, at), self.constitution.text)
            else:
                decision_id = f"d-unrecorded-{at.isoformat()}"
            self.calls.append(at)
            events = tuple(self.events(at))
            mode = (
                "kill"
                if WeekEvent.KILL in events
                else "safe"
                if WeekEvent.SAFE in events
                else "active"
            )
            return CycleReport(
                at=at,
                decision_id=decision_id,
                constitution_version=self.constitution.version,
                constitution_digest=self.constitution.digest,
                market_mode=mode,
                account_levels=self.levels(at),
                events=events,
                equity=self.equity(at),
            )
        finally:
            with self._lock:
                self.active -= 1


class DirCycle(FakeCycle):
    """Controlled through files, for ``alluse run`` in a subprocess."""

    def __init__(self, constitution: LoadedConstitution, log, control: Path):
        super().__init__(constitution, log, levels=self._levels)
        self.control = control
        duration = control / "duration"
        self.duration = float(duration.read_text()) if duration.exists() else 0.0

    def _levels(self, at: datetime) -> dict[str, int]:
        path = self.control / "levels.json"
        return json.loads(path.read_text()) if path.exists() else {"GEN": 0}

    def run(self, at: datetime) -> CycleReport:
        with (self.control / "trace.jsonl").open("a") as f:
            f.write(
                json.dumps({"start": at.isoformat(), "digest": self.constitution.digest}) + "\n"
            )
        report = super().run(at)
        with (self.control / "trace.jsonl").open("a") as f:
            f.write(json.dumps({"end": at.isoformat(), "decision_id": report.decision_id}) + "\n")
        return report


def build(constitution: LoadedConstitution, ctx) -> DirCycle:
    """The factory ``alluse run --cycle-factory tests.scheduler.fake_cycle:build`` uses."""
    from adapters.storage.audit_store import open_decision_log

    log = open_decision_log(ctx.db_url, ctx.mode, ctx.clock)
    return DirCycle(constitution, log, Path(os.environ["ALLUSE_FAKE_CYCLE_DIR"]))


def build_quiet(constitution: LoadedConstitution, ctx) -> FakeCycle:
    """A fake cycle recording into the context's audit log (backtest CLI tests)."""
    from adapters.storage.audit_store import open_decision_log

    return FakeCycle(constitution, log=open_decision_log(ctx.db_url, ctx.mode, ctx.clock))


def register() -> None:
    """Register the fakes by name (the CLI takes only names from a fixed registry)."""
    from scheduler import compose

    compose.register_cycle_factory("test-dir", lambda ctx: lambda c: build(c, ctx))
    compose.register_cycle_factory("test-quiet", lambda ctx: lambda c: build_quiet(c, ctx))
