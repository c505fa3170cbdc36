"""The replay clock drives the runner through the live triggers; weeks are labelled by the
constitution's precedence and reported into the audit log; a level change moves the interval."""

from __future__ import annotations

import time as _time
from datetime import date, datetime, time, timedelta

import pytest

from adapters.storage.audit_store import AuditStore, open_decision_log
from constitution.models import WeekType
from engine.clock import FixedClock
from engine.execution.events import WeekEvent
from engine.records.audit import RunMode
from scheduler.cadence import NEW_YORK, CycleTrigger, WeeklyTrigger, fire_times
from scheduler.journal import MemoryJournal
from scheduler.replay import replay
from scheduler.runner import Runner
from scheduler.weekly import label_week
from tests.scheduler.fake_cycle import FakeCycle

E = WeekEvent


def _ny(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("events", "label"),
    [
        ((), "Calm-Income"),
        ((E.EARNINGS_SKIP,), "Earnings-Filter"),
        ((E.EARNINGS_SKIP, E.ASSIGNMENT), "Assignment"),
        ((E.ASSIGNMENT, E.L2_EXECUTED), "Roll"),
        ((E.L2_EXECUTED, E.HEDGED_WEEK), "Hedged"),
        ((E.HEDGE_DEPLOYED, E.L3_EXECUTED, E.EARNINGS_SKIP), "Preservation"),
        ((E.FORK, E.MERGE, E.SAFE), "Hedged"),  # a SAFE week is never Calm-Income (D67)
    ],
)
def test_week_label_follows_v13_precedence(bundled, events, label):
    assert label_week(events, bundled.model.week_types) == label


def test_week_label_precedence_is_read_from_the_constitution(bundled):
    reordered = [
        w.model_copy(update={"precedence": 7 - w.precedence}) for w in bundled.model.week_types
    ]
    assert label_week((E.L3_EXECUTED, E.EARNINGS_SKIP), reordered) == "Earnings-Filter"
    assert (
        label_week(
            (),
            [WeekType(name=w.name, trigger=w.trigger, precedence=w.precedence) for w in reordered],
        )
        == "Calm-Income"
    )
    assert label_week((E.L2_EXECUTED, E.HEDGED_WEEK), reordered) == "Roll"


def test_replay_fires_exactly_the_live_trigger_times_without_sleeping(bundled, spec):
    cycle = FakeCycle(bundled)
    runner = Runner(bundled, lambda c: cycle, MemoryJournal())
    clock = FixedClock(_ny(date(2026, 11, 23), 0))
    first, last = date(2026, 11, 23), date(2026, 12, 4)

    began = _time.monotonic()
    result = replay(runner, first, last, clock=clock)
    elapsed = _time.monotonic() - began

    start, end = _ny(first, 0), _ny(last + timedelta(days=1), 0)
    weekly = fire_times(WeeklyTrigger(spec), start, end)
    assert cycle.calls == sorted(fire_times(CycleTrigger(spec, 300), start, end) + weekly)
    month_end = _ny(date(2026, 11, 30), 16, 30)  # a Monday: the month's report cut (§11)
    assert weekly == [_ny(date(2026, 11, 27), 14, 30), month_end, _ny(date(2026, 12, 4), 16, 30)]
    assert [w.cut_at for w in result.weeks] == [weekly[0], weekly[2]]
    assert result.sessions == 9 and clock.at == weekly[-1]
    assert elapsed < 5  # nine sessions of 5-minute ticks: no sleeping anywhere


def test_a_protocol_level_change_moves_the_monitoring_interval(bundled):
    day = date(2026, 3, 3)

    def levels(at):
        return {
            "GEN": 2 if _ny(day, 10) <= at < _ny(day, 10, 10) else 0,
            "REV": 1 if at >= _ny(day, 15) else 0,
        }

    cycle = FakeCycle(bundled, levels=levels)
    replay(Runner(bundled, lambda c: cycle, MemoryJournal()), day, day)

    gaps = {
        at: (b - at).total_seconds() for at, b in zip(cycle.calls, cycle.calls[1:], strict=False)
    }
    assert gaps[_ny(day, 9, 55)] == 300  # L0 before
    assert (
        gaps[_ny(day, 10)] == 30
        and gaps[
            _ny(
                day,
                10,
                9,
            )
            + timedelta(seconds=30)
        ]
        == 30
    )  # L2 at 10:00..10:10
    assert gaps[_ny(day, 10, 10)] == 300  # back to L0: the next 5-minute grid time, 10:15
    assert gaps[_ny(day, 15)] == 60  # REV at L1 from 15:00
    assert cycle.calls[-2:] == [_ny(day, 15, 59), _ny(day, 16)]  # the last L1 tick, then the close


def test_weekly_report_is_labelled_once_and_linked_in_the_audit_log(bundled, tmp_path):
    url = f"sqlite:///{tmp_path / 'week.db'}"
    clock = FixedClock(_ny(date(2026, 3, 2), 0))
    log = open_decision_log(url, RunMode.BACKTEST, clock)
    wednesday = date(2026, 3, 4)

    def events(at):
        if at.date() == wednesday and at.time() == time(11):
            return (E.L2_EXECUTED, E.EARNINGS_SKIP)
        return ()

    def equity(at):
        return {"GEN": 40000.0 + (500 if at.date() >= wednesday else 0), "COM": 30000.0}

    cycle = FakeCycle(bundled, log=log, events=events, equity=equity)
    journal = MemoryJournal()
    runner = Runner(bundled, lambda c: cycle, journal, notes=log)
    result = replay(runner, date(2026, 3, 2), date(2026, 3, 6), clock=clock)

    (week,) = result.weeks
    assert (week.week_type, week.income, week.events) == (
        "Roll",
        500.0,
        {"earnings_skip": 1, "l2_executed": 1},
    )
    assert (
        runner.weekly(week.cut_at, evaluate=False) is None
    )  # a second cut of the same week is refused
    store = AuditStore.open(url, clock)
    linked = [
        r for r in store.for_decision(cycle_decision_at(bundled, week.cut_at)) if r.link is not None
    ]
    assert [(r.link.kind, r.link.data["event"], r.link.data["week_type"]) for r in linked] == [
        ("note", "weekly_report", "Roll")
    ]
    assert store.verify().ok


def cycle_decision_at(constitution, at):
    from tests.scheduler.fake_cycle import decision_for

    return decision_for(constitution, at).decision_id


@pytest.mark.parametrize(
    ("events", "label"),
    [
        ((E.KILL,), "Hedged"),  # VIX > 80 is VIX > 50 (§12, D67)
        ((E.SAFE,), "Hedged"),  # VIX > 65 likewise
        ((E.HALT,), "Preservation"),  # an L3 hold, the broker down, a user's pause
        ((E.KILL, E.L3_EXECUTED), "Preservation"),  # precedence 1 beats 2
        ((E.KILL, E.L2_EXECUTED, E.ASSIGNMENT), "Hedged"),
        ((E.FORK, E.MERGE), "Calm-Income"),
    ],
)
def test_halted_weeks_are_labelled_by_the_text_with_the_precedence(bundled, events, label):
    assert label_week(events, bundled.model.week_types) == label
