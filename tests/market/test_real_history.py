"""Real history (../shared/data; skipped with a reason when absent): the VIX tiers of 2008 and
2020 session by session, the kill-switch days, and a backtest from the first bar (1990-01-02).

VIX closed above 80 on exactly three days: 2008-10-27 (80.06), 2008-11-20 (80.86) and
2020-03-16 (82.69). During a session the replay knows VIX's open, after the close its close
(D26), so every decision's market mode must be the tier of the VIX it saw, and the decisions
at the close of exactly those three days are the kill switch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime

import numpy as np
import pytest

from adapters.market_data.files import FileMarketData
from adapters.storage.audit_store import AuditStore
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.market import calendar
from engine.market.facts_builder import build_facts
from engine.rules.evaluate import evaluate
from scheduler.cli import main
from tests.bundled_params import PARAMS
from tests.market.conftest import SHARED_DATA, ny, shared_file

KILL_DAYS = {date(2008, 10, 27), date(2008, 11, 20), date(2020, 3, 16)}


@pytest.fixture(scope="module")
def constitution():
    return load_constitution(bundled_path())


@pytest.fixture(scope="module")
def market():
    shared_file("vix-daily.csv")
    shared_file("spx-daily-close.csv")
    return FileMarketData(SHARED_DATA)


def tier(vix: float, c) -> str:
    """The market mode the constitution's VIX tiers give (D1: exclusive bands, strict bounds)."""
    v = c.model.vix
    if vix > v.kill_switch:
        return "kill"
    if vix > v.safe:
        return "safe"
    if vix > v.hedged_week:
        return "hedged"
    return "active"


def _mode_at(constitution, market, at: datetime) -> tuple[float, str]:
    facts = build_facts(market.snapshot(at, [], PARAMS), [], params=PARAMS)
    decision = evaluate(constitution, facts)
    return facts.market.vix, decision.derived["market"]["mode"]


def test_the_facts_see_vix_above_80_at_the_close_on_exactly_the_three_days(market, constitution):
    vix = market.history("VIX", date(1990, 1, 2), date(2026, 7, 23))
    above = {d.astype(date) for d, c in zip(vix.days, vix.close, strict=True) if c > 80}
    assert above == KILL_DAYS  # the data, as the shared README states it

    for day in sorted(KILL_DAYS):  # and through the pipeline: facts, then the rules
        close = calendar.session_close(day)
        before = calendar.previous_session(day)
        seen = {d: _mode_at(constitution, market, calendar.session_close(d)) for d in (before, day)}
        assert seen[day][1] == "kill" and seen[day][0] == float(vix.close[vix.days == day][0])
        assert seen[before][1] != "kill"
        assert _mode_at(constitution, market, close.replace(minute=0, hour=15))[1] != "kill"


@pytest.mark.parametrize(
    ("day", "vix_close", "mode"),
    [
        (date(2008, 10, 24), 79.13, "safe"),  # just under the kill switch
        (date(2008, 10, 27), 80.06, "kill"),  # just over it
        (date(2008, 10, 14), 55.13, "hedged"),
        (date(2020, 3, 13), 57.83, "hedged"),
        (date(2020, 3, 17), 75.91, "safe"),
        (date(2020, 3, 10), 47.30, "active"),
    ],
)
def test_the_tier_at_each_close_is_the_constitutions(market, constitution, day, vix_close, mode):
    vix, seen = _mode_at(constitution, market, calendar.session_close(day))

    assert (vix, seen) == (vix_close, mode) and tier(vix, constitution) == mode


def _decisions(db) -> list[tuple[datetime, float, str]]:
    store = AuditStore.open(f"sqlite:///{db}", FixedClock(ny(date(2020, 1, 2))))
    out = []
    for row in store.rows():
        if row.record_type != "decision":
            continue
        d = json.loads(row.body)["decision"]
        at = datetime.fromisoformat(d["as_of"]).astimezone(calendar.NEW_YORK)
        out.append((at, d["facts"]["market"]["vix"], d["derived"]["market"]["mode"]))
    store.close()
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "last"),
    [(date(2008, 10, 20), date(2008, 11, 28)), (date(2020, 3, 2), date(2020, 3, 31))],
    ids=["2008", "2020"],
)
def test_a_crash_backtest_follows_the_vix_tiers_session_by_session(
    tmp_path, capsys, market, constitution, first, last
):
    db = tmp_path / "crash.db"
    code = main(
        ["backtest", "--data", str(SHARED_DATA), "--from", str(first), "--to", str(last)]
        + ["--db", str(db), "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err

    vix = market.history("VIX", first, last)
    opens = dict(zip(vix.days.astype(date), vix.open, strict=True))
    closes = dict(zip(vix.days.astype(date), vix.close, strict=True))
    by_day: dict[date, list] = defaultdict(list)
    for at, seen_vix, mode in _decisions(db):
        assert mode == tier(seen_vix, constitution), f"{at}: VIX {seen_vix} but mode {mode}"
        by_day[at.date()].append((at, seen_vix, mode))

    sessions = [d.astype(date) for d in calendar.sessions_between(first, last)]
    assert sorted(by_day) == sessions  # a decision every session
    for day in sessions:
        during = [v for at, v, _ in by_day[day] if at < calendar.session_close(day)]
        after = [v for at, v, _ in by_day[day] if at >= calendar.session_close(day)]
        assert set(during) <= {opens[day]} and after == [closes[day]] * len(after) and after
    kill_at_close = {
        day for day, rows in by_day.items() if rows[-1][2] == "kill" and rows[-1][0].hour >= 13
    }
    assert kill_at_close == {d for d in KILL_DAYS if first <= d <= last}
    safe_at_close = {day for day, rows in by_day.items() if rows[-1][2] == "safe"}
    assert safe_at_close == {d for d in sessions if 65 < closes[d] <= 80}


@pytest.mark.slow
def test_a_backtest_from_the_first_bar_starts_and_says_what_it_cannot_trade(tmp_path, capsys):
    shared_file("vix-daily.csv")
    db = tmp_path / "from1990.db"

    code = main(
        ["backtest", "--data", str(SHARED_DATA), "--from", "1990-01-02", "--to", "1990-01-05"]
        + ["--db", str(db), "--no-progress"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "data 1990-01-02..1990-01-05 (4 sessions):" in out
    assert "market: VIX full; index SPX full" in out
    assert "gen: not traded: no data for AAPL, MSFT, AMZN, GOOG, SPY, QQQ, IWM" in out
    assert len({at.date() for at, _, _ in _decisions(db)}) == 4


def test_the_index_drawdown_at_the_2020_low_comes_from_the_index(market):
    snap = market.snapshot(ny(date(2020, 3, 24), 10, 0), [], PARAMS)

    # S&P 500: 3,386.15 on 2020-02-19, 2,237.40 on 2020-03-23 - a 33.9 % fall
    assert snap.spx_drawdown == pytest.approx(1 - 2237.40 / 3386.15, abs=1e-4)
    assert not np.isnan(snap.spx_drawdown)
