"""``alluse run``: APScheduler with its jobs in the project database, no overlapping cycles,
resume on restart; and the real daemon in a subprocess (schedule, reload, refusal, SIGTERM)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from adapters.storage.audit_store import AuditStore
from adapters.storage.scheduler_store import SchedulerStore
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from scheduler.cadence import CycleTrigger, WeeklyTrigger
from scheduler.daemon import CYCLE_JOB, WEEKLY_JOB, Daemon, DaemonConfig
from tests.scheduler.fake_cycle import FakeCycle
from tests.scheduler.test_runner import bumped
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_a_cycle_that_outlives_its_interval_does_not_overlap_the_next(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    cycles: list[FakeCycle] = []

    def build(c):
        cycles.append(FakeCycle(c, duration=0.4))
        return cycles[-1]

    daemon = Daemon(DaemonConfig(constitution=bundled_path(), db_url=url, every=0.1), build)
    daemon.start()
    try:
        wait_until(lambda: len(cycles[0].calls) >= 4, 15, "four cycles")
    finally:
        daemon.request_stop()
        daemon.shutdown()
    calls = cycles[0].calls
    assert cycles[0].max_active == 1  # the interval is 0.1 s, every cycle takes 0.4 s
    assert all((b - a).total_seconds() >= 0.39 for a, b in zip(calls, calls[1:], strict=False))


def test_jobs_are_rebuilt_from_the_constitution_at_every_start(tmp_path, bundled):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    config = DaemonConfig(constitution=bundled_path(), db_url=url)
    first = Daemon(config, lambda c: FakeCycle(c, levels=lambda at: {"GEN": 1}))
    summary = first.start()
    stored = {j.id: j.trigger for j in first.scheduler.get_jobs()}
    first.request_stop()
    first.shutdown()

    spec = first.runner.state.spec
    assert stored[CYCLE_JOB] == CycleTrigger(spec, 60)  # L1 from the start-up risk check
    assert stored[WEEKLY_JOB] == WeeklyTrigger(spec)
    assert summary.resume.fresh and summary.monitor_seconds == 60

    second = Daemon(config, lambda c: FakeCycle(c, levels=lambda at: {"GEN": 1}))
    resumed = second.start()
    # the same jobs, from the constitution and the journalled level, not from the database
    assert {j.id: j.trigger for j in second.scheduler.get_jobs()} == stored
    second.request_stop()
    second.shutdown()
    assert not resumed.resume.fresh and resumed.resume.monitor_seconds == 60
    kinds = [e.kind for e in SchedulerStore.open(url).events()]
    assert kinds == ["start", "resume", "stop", "start", "resume", "stop"]
    engine = create_engine(url)
    assert "apscheduler_jobs" not in inspect(engine).get_table_names()
    engine.dispose()


class _Payload:
    """Unpickling this creates ``path``: proof that a stored job state was loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_crafted_job_row_in_the_database_is_never_loaded(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    marker = tmp_path / "pwned"
    engine = create_engine(url)
    with engine.begin() as conn:  # the table APScheduler's SQL job store would read
        conn.exec_driver_sql(
            "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, job_state BLOB NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO apscheduler_jobs VALUES (?, ?, ?)",
            (CYCLE_JOB, 0.0, pickle.dumps(_Payload(marker))),
        )
    engine.dispose()

    daemon = Daemon(DaemonConfig(constitution=bundled_path(), db_url=url), FakeCycle)
    daemon.start()
    daemon.request_stop()
    daemon.shutdown()

    assert not marker.exists()


# --------------------------------------------------------------------------- the real daemon


@pytest.fixture
def daemon_env(tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    constitution = tmp_path / "constitution.yaml"
    shutil.copy(bundled_path(), constitution)
    db = tmp_path / "run.db"
    env = {**os.environ, "ALLUSE_FAKE_CYCLE_DIR": str(control), "PYTHONPATH": str(ROOT)}
    return control, constitution, db, env


def _trace(control: Path) -> list[dict]:
    path = control / "trace.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _notes(db: Path, event: str) -> list[dict]:
    store = AuditStore.open(f"sqlite:///{db}", FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    try:
        records = (store.get(seq) for seq in range(1, store.count() + 1))
        return [
            r.link.data
            for r in records
            if r is not None and r.link is not None and r.link.data.get("event") == event
        ]
    finally:
        store.close()


def test_alluse_run_evaluates_on_schedule_reloads_refuses_and_stops_on_sigterm(daemon_env):
    control, constitution, db, env = daemon_env
    cmd = [
        sys.executable,
        "-m",
        "tests.scheduler.fake_alluse",
        "run",
        "--every",
        "0.25",
        "--constitution",
        str(constitution),
        "--db",
        str(db),
        "--cycle-factory",
        "test-dir",
        "--unapproved",  # it swaps in edited versions nobody approved (paper only)
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        original = load_constitution(constitution)
        # 1. it evaluates on schedule
        wait_until(
            lambda: sum("end" in t for t in _trace(control)) >= 3, 30, "three scheduled cycles"
        )

        # 2. a valid edit is swapped in at a cycle boundary
        constitution.write_text(bumped(constitution.read_text("utf-8")), "utf-8")
        new = load_constitution(constitution)
        wait_until(
            lambda: any(t.get("digest") == new.digest for t in _trace(control)),
            20,
            "the new constitution in use",
        )
        swapped = wait_until(
            lambda: _notes(db, "constitution_swapped"), 10, "the swap in the audit log"
        )
        assert (
            swapped[0]["from"]["digest"] == original.digest
            and swapped[0]["to"]["digest"] == new.digest
        )

        # 3. a broken edit is refused, with located problems, and the last good version runs on
        constitution.write_text(
            constitution.read_text("utf-8").replace("hedged_week: 50", "hedged_week: [50"), "utf-8"
        )
        refused = wait_until(
            lambda: _notes(db, "constitution_refused"), 20, "the refusal in the audit log"
        )
        assert refused[0]["running"]["digest"] == new.digest
        assert refused[0]["problems"] and refused[0]["problems"][0].startswith(f"{constitution}:")
        seen = len(_trace(control))
        wait_until(lambda: len(_trace(control)) >= seen + 2, 10, "cycles after the refusal")
        assert {t["digest"] for t in _trace(control)[seen:] if "digest" in t} == {new.digest}

        # 4. SIGTERM while a cycle is running: it finishes and is recorded, then exit 0
        (control / "duration").write_text("1.0")
        constitution.write_text(
            bumped(bundled_path().read_text("utf-8"), kill=90, to="1.3.3"), "utf-8"
        )
        wait_until(
            lambda: (t := _trace(control)) and "start" in t[-1] and t[-1]["digest"] != new.digest,
            20,
            "a slow cycle running",
        )
        running = _trace(control)[-1]["start"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    trace = _trace(control)
    # the cycle running at SIGTERM finished, and so did any that had started (on a loaded
    # machine the next one may start between reading the trace and sending the signal)
    started = [t["start"] for t in trace if "start" in t]
    ended = [t["end"] for t in trace if "end" in t]
    assert running in ended and sorted(started) == sorted(ended) and "end" in trace[-1]
    store = SchedulerStore.open(f"sqlite:///{db}")
    rows = store.cycles_between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert rows[-1].decision_id == trace[-1]["decision_id"]  # ... and was journalled before exit
    assert [r.reason for r in rows][:2] == ["resume", "schedule"]
    assert [e.kind for e in store.events()][-1] == "stop"
    assert (
        AuditStore.open(f"sqlite:///{db}", FixedClock(datetime(2026, 1, 1, tzinfo=UTC))).verify().ok
    )
