"""Readiness and the journal's figures on a daemon's database: the scheduler's last start or
stop, a live daemon's broker, cycles by reason; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.storage.audit_store import AuditStore
from adapters.storage.readers import DecisionFilter, ReadOnlyDatabase
from adapters.storage.scheduler_store import SchedulerStore
from adapters.web.audit_glue import verify
from adapters.web.ops import readiness
from engine.clock import FixedClock
from engine.records.audit import RunMode
from tests import postgres
from tests.audit.conftest import make_decision

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'daemon.db'}"
        return
    schemas = postgres.fresh_schema("visible_ready")
    yield next(schemas)
    schemas.close()


def _daemon_db(
    url: str, mode: RunMode, broker_connected: bool
) -> tuple[AuditStore, SchedulerStore]:
    clock = FixedClock(T0)
    audit = AuditStore.open(url, clock)
    facts = {"market": {"vix": 18.5, "broker_connected": broker_connected, "underlyings": {}}}
    audit.append_decision(make_decision(1, extra_facts=facts), mode, "text")
    journal = SchedulerStore.open(url)
    journal.append_event(T0, "run-1", "start", {"mode": mode.value, "every": None})
    for reason in ("monitor", "monitor", "entry"):
        journal.append_cycle(T0 + timedelta(minutes=1), "run-1", reason, "d-1", {})
    return audit, journal


def _ready(url: str) -> dict[str, bool]:
    db = ReadOnlyDatabase.open(url)
    try:
        result = readiness(db, verify(db, FixedClock(T0)))
        assert result.ready == all(c.ok for c in result.checks)
        return {c.name: c.ok for c in result.checks}
    finally:
        db.close()


def test_a_running_paper_daemon_is_ready_and_a_stopped_one_is_not(url):
    audit, journal = _daemon_db(url, RunMode.PAPER, broker_connected=True)
    assert _ready(url) == {"database": True, "chain": True, "scheduler": True}
    journal.append_event(
        T0 + timedelta(hours=1), "run-1", "stop", {"reason": "SIGTERM", "exit_code": 0}
    )
    assert _ready(url)["scheduler"] is False
    audit.close()
    journal.close()


def test_a_live_daemon_is_ready_only_while_its_broker_is_connected(url):
    audit, journal = _daemon_db(url, RunMode.LIVE, broker_connected=False)
    assert _ready(url) == {"database": True, "chain": True, "scheduler": True, "broker": False}
    facts = {"market": {"vix": 18.5, "broker_connected": True, "underlyings": {}}}
    audit.append_decision(make_decision(2, extra_facts=facts), RunMode.LIVE, "text")
    assert _ready(url)["broker"] is True
    audit.close()
    journal.close()


def test_the_reader_counts_cycles_and_searches_decisions_on_either_backend(url):
    audit, journal = _daemon_db(url, RunMode.PAPER, broker_connected=True)
    audit.append_decision(
        make_decision(2, account="REV", kind="roll", approved=False), RunMode.PAPER, "text"
    )
    db = ReadOnlyDatabase.open(url)
    try:
        assert db.cycle_counts() == {"monitor": 2, "entry": 1}
        assert [
            d.decision["actions"][0]["kind"]
            for d in db.search_decisions(DecisionFilter(verdict="denied"))
        ] == ["roll"]
        assert [
            d.seq for d in db.search_decisions(DecisionFilter(account="GEN", kind="open_put"))
        ] == [1]
        assert [
            d.seq for d in db.search_decisions(DecisionFilter(text="weekly income entry 2"))
        ] == [2]
        assert db.search_decisions(DecisionFilter(account="GE")) == []  # facets match whole tokens
        assert db.action_verdicts("roll") == {"denied": 1}
        assert db.action_verdicts("open_put") == {"approved": 1}
    finally:
        db.close()
        audit.close()
        journal.close()
