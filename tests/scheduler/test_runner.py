"""Runner behaviour shared by the daemon and the replay: constitution swaps at cycle
boundaries, refused edits, and the resume sequence after a crash."""

from __future__ import annotations

import shutil
from datetime import date, datetime, time

import pytest

from adapters.storage.audit_store import AuditStore, open_decision_log
from adapters.storage.scheduler_store import SchedulerStore
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.records.audit import RunMode
from scheduler.cadence import NEW_YORK
from scheduler.journal import SqlJournal
from scheduler.runner import Runner
from scheduler.watch import ConstitutionWatcher
from tests.scheduler.fake_cycle import FakeCycle, decision_for

BUMP = ("version: 1.3.1\n", "version: 1.3.2\n")
CHANGELOG = (
    "  changelog:\n",
    '  changelog:\n    - version: 1.3.2\n      date: 2026-03-01\n      summary: "Kill switch at 85."\n',
)


def _ny(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=NEW_YORK)


def bumped(text: str, kill: int = 85, to: str = "1.3.2") -> str:
    """The bundled constitution as a new version ``to`` with the kill switch at ``kill``."""
    text = text.replace(BUMP[0], f"version: {to}\n", 1)
    text = text.replace(CHANGELOG[0], CHANGELOG[1].replace("1.3.2", to), 1)
    return text.replace("kill_switch: 80\n", f"kill_switch: {kill}\n", 1)


@pytest.fixture
def env(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    path = tmp_path / "constitution.yaml"
    shutil.copy(bundled_path(), path)
    clock = FixedClock(_ny(date(2026, 3, 2), 9, 30))
    log = open_decision_log(url, RunMode.PAPER, clock)
    return url, path, clock, log


def _runner(url, path, log, cycles: list, **kw):
    current = load_constitution(path)

    def build(constitution):
        cycle = FakeCycle(constitution, log=log, **kw)
        cycles.append(cycle)
        return cycle

    journal = SqlJournal(SchedulerStore.open(url), "test")
    return Runner(
        current, build, journal, notes=log, watcher=ConstitutionWatcher(path, current)
    ), journal


def _notes(url, clock, constitution, at):
    store = AuditStore.open(url, clock)
    return [
        r.link.data
        for r in store.for_decision(decision_for(constitution, at).decision_id)
        if r.link is not None
    ]


def test_valid_edit_is_swapped_in_at_the_next_cycle_boundary_and_recorded(env):
    url, path, clock, log = env
    cycles: list = []
    runner, journal = _runner(url, path, log, cycles)
    old = runner.state.constitution
    first = runner.cycle(_ny(date(2026, 3, 2), 9, 30))

    path.write_text(bumped(path.read_text("utf-8")), "utf-8")
    at = _ny(date(2026, 3, 2), 9, 35)
    second = runner.cycle(at)

    new = runner.state.constitution
    assert (first.constitution_digest, second.constitution_digest) == (old.digest, new.digest)
    assert new.version == "1.3.2" and new.model.vix.kill_switch == 85 and len(cycles) == 2
    (note,) = _notes(url, clock, new, at)
    assert note["event"] == "constitution_swapped"
    assert (note["from"]["digest"], note["to"]["digest"]) == (old.digest, new.digest)
    assert journal.store.events("constitution_swapped")[0].detail["to"]["version"] == "1.3.2"
    assert AuditStore.open(url, clock).verify().ok


def test_invalid_edit_is_refused_with_located_problems_and_the_last_good_version_keeps_running(env):
    url, path, clock, log = env
    cycles: list = []
    runner, _ = _runner(url, path, log, cycles)
    good = runner.state.constitution

    path.write_text(bumped(path.read_text("utf-8"), kill=-5), "utf-8")
    at = _ny(date(2026, 3, 2), 9, 35)
    report = runner.cycle(at)
    again = runner.cycle(_ny(date(2026, 3, 2), 9, 40))  # the same broken bytes are refused once

    assert (
        report.constitution_digest
        == good.digest
        == again.constitution_digest
        == runner.state.constitution.digest
    )
    (note,) = _notes(url, clock, good, at)
    assert note["event"] == "constitution_refused" and note["running"]["digest"] == good.digest
    assert note["problems"] and all(p.startswith(f"{path}:") for p in note["problems"])
    assert any("vix.kill_switch" in p for p in note["problems"])
    assert _notes(url, clock, good, _ny(date(2026, 3, 2), 9, 40)) == []


def test_changing_a_running_version_without_a_bump_is_refused(env):
    url, path, clock, log = env
    runner, _ = _runner(url, path, log, [])
    path.write_text(
        path.read_text("utf-8").replace("kill_switch: 80\n", "kill_switch: 85\n", 1), "utf-8"
    )
    at = _ny(date(2026, 3, 2), 9, 35)
    runner.cycle(at)
    (note,) = _notes(url, clock, runner.state.constitution, at)
    assert note["event"] == "constitution_refused"
    line = path.read_text("utf-8").splitlines().index("  version: 1.3.1") + 1
    assert note["problems"][0].startswith(f"{path}:{line}:3: version-not-bumped: meta.version:")


class _Reconciling(FakeCycle):
    def resume(self, at):
        return {"orphans_cancelled": 1}


def test_crash_and_restart_resumes_from_the_snapshot_with_the_resume_sequence(env):
    url, path, clock, log = env
    thursday = date(2026, 3, 5)
    cycles: list = []
    before, _ = _runner(url, path, log, cycles, levels=lambda at: {"GEN": 2, "REV": 0})
    for minute in (0, 5, 10):
        before.cycle(_ny(thursday, 10, minute))
    del before  # the process dies here: the Friday 16:30 report is never cut

    now = _ny(date(2026, 3, 9), 10)
    current = load_constitution(path)
    journal = SqlJournal(SchedulerStore.open(url), "restarted")
    built: list = []
    after = Runner(
        current,
        lambda c: built.append(_Reconciling(c, log=log, levels=lambda at: {"GEN": 2})) or built[-1],
        journal,
        notes=log,
    )
    resumed = after.resume(now)

    assert not resumed.fresh and resumed.snapshot_at == _ny(thursday, 10, 10).isoformat()
    assert resumed.monitor_seconds == 30  # L2 from the snapshot, before any new cycle
    assert [s.split(":")[0] for s in resumed.steps] == [
        "load snapshot",
        "broker state and reconcile",
        "rebuild schedule",
        "risk check",
        "ACTIVE",
    ]
    assert "orphans_cancelled" in resumed.steps[1]
    assert resumed.caught_up_week == "2026-03-02"
    assert built[0].calls == [now]  # the risk check is one real cycle, at restart time
    (week,) = journal.weeks()
    assert (week.cycles, week.week_type) == (3, "Calm-Income")
    assert journal.store.events("resume")[0].detail["caught_up_week"] == "2026-03-02"
    notes = _notes(url, clock, current, _ny(thursday, 10, 10))
    assert [n["event"] for n in notes] == ["weekly_report"]
