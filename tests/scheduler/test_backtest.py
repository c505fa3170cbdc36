"""``alluse backtest``: the replay runtime end to end into its own database, the summary's
figures from the cycles' reports, and kill-switch decisions over the real VIX history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.storage.audit_store import AuditStore
from constitution.errors import InvalidInput
from engine.clock import FixedClock
from engine.execution.events import WeekEvent
from scheduler import compose
from scheduler.backtest import cagr, max_drawdown, run_backtest
from scheduler.cli import main
from tests.conftest import SHARED_DATA
from tests.scheduler.fake_cycle import FakeCycle, register

register()  # the fakes by name, for --cycle-factory

KILL_DAYS = (date(2008, 10, 27), date(2008, 11, 20), date(2020, 3, 16))


def _fake_factory(**kw):
    from adapters.storage.audit_store import open_decision_log

    def factory(ctx):
        log = open_decision_log(ctx.db_url, ctx.mode, ctx.clock)
        return lambda constitution: FakeCycle(constitution, log=log, **kw)

    return factory


def test_metrics_are_plain_arithmetic():
    assert max_drawdown([100, 120, 90, 130, 65]) == pytest.approx(0.5)
    assert max_drawdown([]) == 0.0
    assert cagr(
        100.0, 121.0, datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    ) == pytest.approx(0.1, abs=1e-3)


def test_backtest_summary_counts_days_weeks_and_drawdowns_from_the_cycles(bundled, tmp_path):
    url = f"sqlite:///{tmp_path / 'bt.db'}"

    def events(at):
        day = at.date()
        if day == date(2026, 3, 3):
            return (WeekEvent.KILL, WeekEvent.HEDGED_WEEK)
        if day == date(2026, 3, 11) and (at.hour, at.minute) == (10, 0):
            return (WeekEvent.FORK,)  # a fork is executed once
        return ()

    def equity(at):
        gen = 40000.0 - (4000.0 if at.date() == date(2026, 3, 4) else 0.0) + 100.0 * at.day
        return {"GEN": gen, "COM": 30000.0}

    s = run_backtest(
        bundled,
        date(2026, 3, 2),
        date(2026, 3, 13),
        url,
        _fake_factory(events=events, equity=equity),
    )

    assert (s.sessions, s.weeks, s.forks) == (10, 2, 1)
    assert s.mode_days["kill"] == (date(2026, 3, 3),) == s.mode_days["hedged"]
    assert s.week_types == {"Calm-Income": 1, "Hedged": 1}
    assert s.max_drawdown["GEN"] == pytest.approx(
        3900.0 / 40300.0
    )  # 40 300 on the 3rd -> 36 400 on the 4th and s.max_drawdown["COM"] == 0.0
    assert s.positive_weeks_pct == 100.0
    store = AuditStore.open(url, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    assert (
        store.verify().ok and store.count() == s.cycles + 2
    )  # every cycle's decision + two weekly notes


def test_alluse_backtest_writes_its_own_database_and_refuses_a_used_one(tmp_path, capsys):
    db = tmp_path / "bt.db"
    argv = [
        "backtest",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-27",
        "--synthetic",
        "7",
        "--db",
        str(db),
        "--no-progress",
        "--cycle-factory",
        "test-quiet",
    ]
    assert main(argv) == 0
    assert main(["audit", "verify", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(argv) == 2  # not its own database any more


def test_backtest_arguments_are_checked(tmp_path):
    assert (
        main(
            [
                "backtest",
                "--from",
                "2026-11-27",
                "--to",
                "2026-11-23",
                "--synthetic",
                "7",
                "--db",
                str(tmp_path / "x.db"),
                "--no-progress",
                "--cycle-factory",
                "test-quiet",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "backtest",
                "--from",
                "2026-11-23",
                "--to",
                "2026-11-27",
                "--db",
                str(tmp_path / "y.db"),
            ]
        )
        == 2
    )  # no data
    with pytest.raises(InvalidInput):
        run_backtest(None, date(2026, 1, 2), date(2026, 1, 1), "sqlite://", _fake_factory())


def _history_or_skip():
    if not (SHARED_DATA / "vix-daily.csv").exists():
        pytest.skip(f"real history not present in {SHARED_DATA}")


@pytest.mark.parametrize("day", KILL_DAYS, ids=str)
def test_backtest_over_real_history_records_the_kill_switch_when_vix_closed_above_80(
    bundled, tmp_path, day
):
    _history_or_skip()
    from adapters.market_data.files import import_bars

    store = tmp_path / "bars"
    import_bars(SHARED_DATA / "vix-daily.csv", "VIX", store)
    import_bars(SHARED_DATA / "spx-daily-close.csv", "SPX", store)
    url = f"sqlite:///{tmp_path / 'bt.db'}"

    summary = run_backtest(bundled, day, day, url, compose.paper_cycle_factory, data_dir=str(store))

    assert day in summary.mode_days["kill"]
    log = AuditStore.open(url, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    kinds = {
        a.kind
        for seq in range(1, log.count() + 1)
        if (r := log.get(seq)) and r.decision
        for a in r.decision.actions
    }
    assert "kill_switch" in kinds


def test_a_cycle_factory_is_only_a_registered_name(tmp_path, capsys):
    argv = ["backtest", "--from", "2026-11-23", "--to", "2026-11-27", "--synthetic", "7"]
    argv += ["--db", str(tmp_path / "bt.db"), "--no-progress"]
    assert main([*argv, "--cycle-factory", "tests.scheduler.fake_cycle:build_quiet"]) == 2
    assert "no cycle factory 'tests.scheduler.fake_cycle:build_quiet'" in capsys.readouterr().err
    assert not (tmp_path / "bt.db").exists()
