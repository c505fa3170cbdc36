"""``alluse backtest``: the live system run over the past.

The same ``Runner`` and the same triggers as ``alluse run``, on the replay clock (a
``FixedClock`` moved to each fire time, never sleeping), with the cycle the composition root
builds for paper over history. Everything goes to the backtest's own database (mode
``backtest``), so ``alluse audit verify --db`` checks the whole run afterwards.

The summary's figures come only from what the cycles reported (``CycleReport``):

* decided - cycles that evaluated the rules; the others were quiet ticks, whose inputs were
  those of the cycle before (``engine.cycle.quiet``, docs/decisions.md D27);
* CAGR - total equity, first cycle to last, annualised over calendar days;
* max drawdown per account - deepest peak-to-trough fall of its equity over all cycles;
* % positive weeks - weekly reports whose income (equity change) was above zero;
* forks / merges - weeks' fork and merge events; trades / fills - orders submitted / filled;
* hedged / SAFE / kill days - New York dates on which any cycle ran in that market mode (or
  reported that event);
* week types - how many weeks got each label.

After the run, ``book`` adds what the database holds and the cycle reports do not (read once,
no per-tick cost): P&L, premium and win rate per sleeve, orders placed and filled, trades
closed and fills by origin (``scheduler.reports.figures.book_figures``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from adapters.market_data.chain_feed import available as chain_feeds
from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.database import display_url, reproducible
from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution
from engine.clock import FixedClock
from engine.records.audit import RunMode
from scheduler.cadence import NEW_YORK
from scheduler.compose import CycleBuilder, CycleContext
from scheduler.coverage import Coverage
from scheduler.replay import replay
from scheduler.reports.figures import BookFigures, read_book_figures
from scheduler.runner import Runner
from scheduler.tally import RunningJournal, Totals
from scheduler.weekly import WeekReport

if TYPE_CHECKING:
    from engine.records.audit import ExecutionLink
    from engine.records.log import Receipt

DISAGREEMENT_RULE = "engine.evaluators_disagree"  # engine.rules.shadow.alert_action


@dataclass(frozen=True)
class BacktestSummary:
    first: date
    last: date
    sessions: int
    cycles: int
    decided: int  # cycles that evaluated the rules; the rest were quiet (engine.cycle.quiet)
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
    book: BookFigures | None = None  # from the database after the run (see the docstring)
    run: int = 0  # cycles actually run; the other ``cycles - run`` were quiet ticks skipped
    shadow: bool = False  # durable-rules also decided every decision
    disagreements: int = 0  # decisions the two evaluators disagreed on (with ``shadow``)
    coverage: Coverage | None = None  # what the data let it trade (scheduler.coverage)


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


def summarise(
    totals: Totals,
    weeks: list[WeekReport],
    sessions: int,
    constitution: LoadedConstitution,
    first: date,
    last: date,
    db_url: str,
) -> BacktestSummary:
    """The summary from the running totals (``scheduler.tally``) and the week reports."""
    t = totals
    start_eq, end_eq = t.start_equity or 0.0, t.end_equity or 0.0
    return BacktestSummary(
        first=first,
        last=last,
        sessions=sessions,
        cycles=t.cycles,
        decided=t.decided,
        start_equity=start_eq,
        end_equity=end_eq,
        cagr=cagr(start_eq, end_eq, t.first_at, t.last_at) if t.first_at and t.last_at else None,
        max_drawdown=dict(sorted(t.drawdowns.items())),
        weeks=len(weeks),
        positive_weeks_pct=(100.0 * sum(w.income > 0 for w in weeks) / len(weeks))
        if weeks
        else None,
        forks=sum(w.forks for w in weeks),
        merges=sum(w.merges for w in weeks),
        mode_days={m: tuple(sorted(d)) for m, d in t.mode_days.items()},
        trades=t.trades,
        fills=t.fills,
        rejections=t.rejections,
        week_types=dict(sorted(Counter(w.week_type for w in weeks).items())),
        constitution_version=constitution.version,
        constitution_digest=constitution.digest,
        db_url=db_url,
    )


def require_fresh_log(db_url: str, clock: FixedClock) -> AuditStore:
    """A backtest writes to its own database: refuse one that already holds records."""
    store = AuditStore.open(db_url, clock)
    if store.count():
        store.close()
        raise InvalidInput(
            [
                Problem(
                    "--db",
                    1,
                    1,
                    "not-empty",
                    "",
                    f"{display_url(db_url)} already holds {store.count()} audit records; a backtest needs its own database",
                )
            ],
            what="arguments",
        )
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
    *,
    shadow: bool = False,
    skip_quiet: bool = True,
    coverage: Coverage | None = None,
    chain_feed: bool | None = None,
) -> BacktestSummary:
    """Replay first..last through ``factory``'s cycles. ``shadow``: durable-rules decides every
    decision beside the compiled path (a disagreement is recorded and counted);
    ``skip_quiet=False``: every tick is run (the event-driven replay's reference);
    ``chain_feed``: option chains are made ahead in a second process (default: when this
    machine has a second core; the records are the same either way)."""
    if last < first:
        raise InvalidInput(
            [Problem("--to", 1, 1, "range", "", f"--to {last} is before --from {first}")],
            what="arguments",
        )
    clock = FixedClock(datetime.combine(first, time(0), tzinfo=NEW_YORK))
    reproducible(db_url)  # a backtest can be run again: commits need not wait for the disk
    store = require_fresh_log(db_url, clock)
    ctx = CycleContext(
        db_url=db_url,
        mode=RunMode.BACKTEST,
        clock=clock,
        data_dir=data_dir,
        synthetic_seed=synthetic_seed,
        until=last,
        shadow=shadow,
        audit=store,  # the notes and the cycles' batched records go through one store (D211)
        chain_feed=chain_feeds() if chain_feed is None else chain_feed,
    )
    journal = RunningJournal()
    notes = _Notes(store)
    build = factory(ctx)
    runner = Runner(constitution, build, journal, notes=notes)
    try:
        result = replay(runner, first, last, clock, on_session, skip_quiet=skip_quiet)
        store.checkpoint(runner.state.constitution.digest, final=True)  # after the last note too
        disagreements = _disagreements(store) if shadow else 0
    finally:
        try:
            store.close()  # writes the cycles' kept records with their ledger's writes (D211)
        finally:
            close = getattr(build, "close", None)  # its shadow and its ledger store
            if close is not None:
                close()
    summary = summarise(
        journal.totals, list(result.weeks), result.sessions, constitution, first, last, db_url
    )
    return replace(
        summary,
        book=read_book_figures(db_url),
        run=result.cycles - result.skipped,
        shadow=shadow,
        disagreements=disagreements,
        coverage=coverage,
    )


def _disagreements(store: AuditStore) -> int:
    """Decisions recorded with the evaluators' disagreement alert (engine.cycle.agreement)."""
    return sum(1 for _ in store.iter_records(AuditQuery(rule=DISAGREEMENT_RULE, limit=None)))


class _Notes:
    """Weekly reports go into the backtest's audit log as note links, in backtest mode."""

    def __init__(self, store: AuditStore):
        self.store = store

    def link(self, link: ExecutionLink) -> Receipt:
        return self.store.append_link(link, RunMode.BACKTEST)
