"""``alluse backtest``: the live system run over the past.

The same ``Runner`` and the same triggers as ``alluse run``, on the replay clock (a
``FixedClock`` moved to each fire time, never sleeping), with the cycle the composition root
builds for paper over history. Everything goes to the backtest's own database (mode
``backtest``), so ``alluse audit verify --db`` checks the whole run afterwards.

The summary's figures come only from what the cycles reported (``CycleReport``):

* decided - cycles that evaluated the rules; the others were quiet ticks, whose inputs were
  those of the cycle before (``engine.quiet``, docs/decisions.md D27);
* CAGR - total equity, first cycle to last, annualised over calendar days;
* max drawdown per account - deepest peak-to-trough fall of its equity over all cycles;
* % positive weeks - weekly reports whose income (equity change) was above zero;
* forks / merges - weeks' fork and merge events; trades / fills - orders submitted / filled;
* hedged / SAFE / kill days - New York dates on which any cycle ran in that market mode (or
  reported that event);
* week types - how many weeks got each label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from adapters.storage.audit_store import AuditStore
from adapters.storage.database import reproducible
from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution
from engine.audit import Mode
from engine.clock import FixedClock
from engine.cycle import CycleReport, WeekEvent
from scheduler.cadence import NEW_YORK
from scheduler.compose import CycleBuilder, CycleContext
from scheduler.journal import MemoryJournal
from scheduler.replay import replay
from scheduler.runner import Runner
from scheduler.weekly import WeekReport

_MODE_EVENTS = {"hedged": {WeekEvent.HEDGED_WEEK, WeekEvent.HEDGE_DEPLOYED}, "safe": {WeekEvent.SAFE}, "kill": {WeekEvent.KILL}}


@dataclass(frozen=True)
class BacktestSummary:
    first: date
    last: date
    sessions: int
    cycles: int
    decided: int  # cycles that evaluated the rules; the rest were quiet (engine.quiet)
    start_equity: float
    end_equity: float
    cagr: float | None
    max_drawdown: dict[str, float]  # account -> fraction (0.12 = 12 %)
    weeks: int
    positive_weeks_pct: float | None
    forks: int
    merges: int
    mode_days: dict[str, tuple[date, ...]]  # hedged | safe | kill -> dates
    trades: int
    fills: int
    rejections: int
    week_types: dict[str, int]
    constitution_version: str
    constitution_digest: str
    db_url: str


def cagr(start: float, end: float, first: datetime, last: datetime) -> float | None:
    years = (last - first).days / 365.25
    if start <= 0 or years <= 0:
        return None
    return (end / start) ** (1 / years) - 1


def max_drawdown(series: Iterable[float]) -> float:
    peak, worst = float("-inf"), 0.0
    for x in series:
        peak = max(peak, x)
        if peak > 0:
            worst = max(worst, (peak - x) / peak)
    return worst


def _mode_days(reports: list[CycleReport]) -> dict[str, tuple[date, ...]]:
    days: dict[str, set[date]] = {m: set() for m in _MODE_EVENTS}
    for r in reports:
        day = r.at.astimezone(NEW_YORK).date()
        for mode, events in _MODE_EVENTS.items():
            if r.market_mode == mode or events.intersection(r.events):
                days[mode].add(day)
    return {m: tuple(sorted(d)) for m, d in days.items()}


def summarise(journal: MemoryJournal, weeks: list[WeekReport], sessions: int, constitution: LoadedConstitution,
              first: date, last: date, db_url: str) -> BacktestSummary:
    reports = journal.reports
    totals = [sum(r.equity.values()) for r in reports if r.equity]
    accounts = sorted({a for r in reports for a in r.equity})
    start_eq, end_eq = (totals[0], totals[-1]) if totals else (0.0, 0.0)
    return BacktestSummary(
        first=first, last=last, sessions=sessions, cycles=len(reports),
        decided=sum(not r.quiet for r in reports), start_equity=start_eq, end_equity=end_eq,
        cagr=cagr(start_eq, end_eq, reports[0].at, reports[-1].at) if reports else None,
        max_drawdown={a: max_drawdown(r.equity[a] for r in reports if a in r.equity) for a in accounts},
        weeks=len(weeks),
        positive_weeks_pct=(100.0 * sum(w.income > 0 for w in weeks) / len(weeks)) if weeks else None,
        forks=sum(w.forks for w in weeks), merges=sum(w.merges for w in weeks),
        mode_days=_mode_days(reports),
        trades=sum(r.orders_submitted for r in reports), fills=sum(r.fills for r in reports),
        rejections=sum(r.rejections for r in reports),
        week_types=dict(sorted(Counter(w.week_type for w in weeks).items())),
        constitution_version=constitution.version, constitution_digest=constitution.digest, db_url=db_url,
    )


def require_fresh_log(db_url: str, clock: FixedClock) -> AuditStore:
    """A backtest writes to its own database: refuse one that already holds records."""
    store = AuditStore.open(db_url, clock)
    if store.count():
        store.close()
        raise InvalidInput([Problem("--db", 1, 1, "not-empty", "", f"{db_url} already holds {store.count()} audit records; a backtest needs its own database")], what="arguments")
    return store


def run_backtest(
    constitution: LoadedConstitution,
    first: date,
    last: date,
    db_url: str,
    factory: Callable[[CycleContext], CycleBuilder],
    data_dir: str | None = None,
    synthetic_seed: int | None = None,
    on_session: Callable[[date], None] | None = None,
) -> BacktestSummary:
    if last < first:
        raise InvalidInput([Problem("--to", 1, 1, "range", "", f"--to {last} is before --from {first}")], what="arguments")
    clock = FixedClock(datetime.combine(first, time(0), tzinfo=NEW_YORK))
    reproducible(db_url)  # a backtest can be run again: commits need not wait for the disk
    store = require_fresh_log(db_url, clock)
    ctx = CycleContext(db_url=db_url, mode=Mode.BACKTEST, clock=clock, data_dir=data_dir, synthetic_seed=synthetic_seed, until=last)
    journal = MemoryJournal()
    notes = _Notes(store)
    runner = Runner(constitution, factory(ctx), journal, notes=notes)
    try:
        result = replay(runner, first, last, clock=clock, on_session=on_session)
    finally:
        store.close()
    return summarise(journal, list(result.weeks), result.sessions, constitution, first, last, db_url)


class _Notes:
    """Weekly reports go into the backtest's audit log as note links, in backtest mode."""

    def __init__(self, store: AuditStore):
        self.store = store

    def link(self, link):
        return self.store.append_link(link, Mode.BACKTEST)
