"""Shared builders for the execution tests: the synthetic market (its paths pass through the
real prices of 2024-01-02; ``scale`` multiplies them), a cycle on a real SQLite database, and a
week's schedule."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.market_data.files import BarMarketData
from adapters.market_data.synthetic import generate
from engine.market.snapshot import DailyHistory
from engine.records.decision import Action, ConstitutionRef, Decision

NY = ZoneInfo("America/New_York")
SEED = 7
WEEK = date(2024, 1, 8)  # Monday of the scripted week (an assignment happens on Friday)
CAPITAL = 3_000_000.0


def _scaled(h: DailyHistory, f: float) -> DailyHistory:
    return DailyHistory(h.symbol, h.days, h.open * f, h.high * f, h.low * f, h.close * f, h.volume)


@lru_cache(maxsize=2)
def market(last: date = date(2024, 3, 29), scale: float = 1.0) -> BarMarketData:
    bars = generate(SEED, last).bars
    return BarMarketData(
        {k: v if k == "VIX" else _scaled(v, scale) for k, v in bars.items()}, earnings={}
    )


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=NY)


def week_times(monday: date = WEEK) -> list[datetime]:
    """10:00 (entry windows) and 16:45 (after the close: expiries settle) each day. There is
    deliberately no Friday 14:30-15:45 tick: the pin-risk rule would buy back the in-the-money
    put there, and this week must carry one into expiry to be assigned."""
    return [
        at(monday + timedelta(days=d), hh, mm) for d in range(5) for hh, mm in ((10, 0), (16, 45))
    ]


def open_cycle(db_url: str, m=None, monday: date = WEEK):
    """(cycle, broker, store) on a fresh database with GEN/REV/COM opened on ``monday``."""
    from engine.cycle.bootstrap import Portfolio, open_portfolio
    from scheduler.compose import open_paper_cycle

    m = m or market()
    cycle, broker, store = open_paper_cycle(db_url, m)
    t0 = at(monday, 9, 40)
    broker.sync(t0, m.snapshot(t0, cycle.symbols, cycle.params))
    open_portfolio(cycle, Portfolio(CAPITAL, monday), t0, broker.seed_position)
    return cycle, broker, store


EXAMPLE_FACTS = Path(__file__).resolve().parents[2] / "examples" / "facts-calm-thursday.yaml"


def facts_file(directory: Path, name: str, *edits: tuple[str, str]) -> Path:
    """The example facts file (a calm Thursday, 2026-11-19 10:15) with textual edits (old,
    new), each of which must apply, written to ``directory / name``."""
    text = EXAMPLE_FACTS.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = directory / name
    path.write_text(text)
    return path


def one_action_decision(action: Action, as_of: str, decision_id: str) -> Decision:
    """A decision holding ``action`` alone, for planner tests that start from one intent."""
    return Decision(
        decision_id=decision_id,
        as_of=as_of,
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={},
        fired=(),
        actions=(action,),
    )
