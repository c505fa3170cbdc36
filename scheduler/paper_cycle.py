"""The ``engine.cycle.Cycle`` implementation: one core for paper, backtest and live.

One ``run(at)``: market snapshot -> (paper venue moves to ``at``) -> ledger books broker
fills and reconciles orders -> facts from market + ledger -> evaluate -> risk guard ->
decision recorded (write before act) -> plan -> submit and work orders -> fills booked ->
equity marked -> ``CycleReport``. Only the market-data port, the broker and the stores
differ between paper, backtest and live; ``venue_sync`` is the paper broker's ``sync``.

Safe to call again after a crash: the first run of a process performs the resume sequence
(``engine.resume``), decisions are idempotent by decision id, orders by client order id and
ledger operations by op id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from constitution.load import LoadedConstitution
from engine import calendar, planner, risk
from engine.audit import DecisionLog
from engine.broker import BrokerPort
from engine.cycle import CycleReport, WeekEvent
from engine.execution import Executor, LedgerStore
from engine.facts_builder import build_facts, candidates_for_day
from engine.ledger import (
    Deposit,
    DepositShares,
    LedgerState,
    MarkEquity,
    OpenAccount,
    StartQuarter,
    cents,
    quarter_of,
    stock,
)
from engine.ledger_view import ledger_facts
from engine.market import MarketDataPort, MarketSnapshot, Quote
from engine.pipeline import evaluate
from engine.quiet import QuietTicks, clock_cuts, market_key
from engine.quotes import MarketView
from engine.resume import ResumeReport, reconcile_orders, resume

_DECISION_EVENTS = {"hedged_week": WeekEvent.HEDGED_WEEK, "enter_safe_mode": WeekEvent.SAFE, "kill_switch": WeekEvent.KILL}


class TradingCycle:
    def __init__(self, constitution: LoadedConstitution, market: MarketDataPort, broker: BrokerPort,
                 store: LedgerStore, log: DecisionLog, *, venue_sync: Callable[[datetime, MarketSnapshot], None] | None = None,
                 symbols: Sequence[str] | None = None, wait: Callable[[float], None] = lambda s: None):
        self.constitution = constitution
        self.market = market
        self.broker = broker
        self.store = store
        self.log = log
        self.venue_sync = venue_sync
        c = constitution.model
        self.executor = Executor(broker, log, store, cancel_replace_seconds=c.orders.cancel_replace_seconds,
                                 retry_smaller=c.orders.retry_smaller, wait=wait)
        self.sleeve_tickers = {"gen": c.sleeves.gen.tickers, "rev": c.sleeves.rev.tickers, "com": c.sleeves.com.tickers}
        self.symbols = tuple(sorted(set(symbols or ()) | {t for ts in self.sleeve_tickers.values() for t in ts}))
        self.resumed: ResumeReport | None = None
        self.last_plan = None
        self.quiet = QuietTicks(clock_cuts(constitution.rules), c.cadence.early_close_shift_minutes, calendar.cadence_of(c))
        self._last_report: CycleReport | None = None
        self._marked: dict[str, int] = {}  # account -> cents of its last equity mark
        self._valued: tuple | None = None  # (ledger state, market key, equity) of the last valuation

    def run(self, at: datetime) -> CycleReport:
        snapshot = self._snapshot(at)
        if self.venue_sync is not None:
            self.venue_sync(at, snapshot)
        events: list[WeekEvent] = []
        if self.resumed is None:
            self.resumed = resume(self.store, self.executor, at)
        fills = self.executor.sync_fills(at, events)
        reconcile_orders(self.store, self.broker, at)
        view = MarketView(snapshot)
        self._start_quarters(view)
        market = market_key(snapshot)
        self._mark(at, view, market)  # the high-water mark includes the present before the rules judge drawdowns
        before = self.store.state
        key = self.quiet.key(at, market, before, self.broker.is_connected())
        if not fills and self._last_report is not None and self.quiet.is_quiet(key, before):
            return self._quiet_report(at)
        report = self._decide(at, snapshot, view, events, fills, market)
        acted = bool(report.orders_submitted or report.fills)
        self.quiet.settle(key, before, self.store.state, acted)
        self._last_report = report
        return report

    def _decide(self, at: datetime, snapshot: MarketSnapshot, view: MarketView, events: list[WeekEvent], fills: int,
                market: tuple) -> CycleReport:
        lf = ledger_facts(self.store.state, view)
        day = calendar.new_york_date(at)
        facts = build_facts(snapshot, lf.accounts, symbols=self.symbols,
                            candidates=candidates_for_day(day, self.sleeve_tickers),
                            broker_connected=self.broker.is_connected())
        state = self.store.state
        guard = risk.GuardState(state.mode, state.latched, len(state.active_accounts()))
        decision, limits = risk.review(self.constitution.model, evaluate(self.constitution, facts), guard)
        receipt = self.executor.record(decision, self.constitution.text)
        plan = planner.plan(self.constitution.model, decision, self.store.state, view, limits, lf.by_key)
        self.last_plan = plan
        result = self.executor.execute(decision, receipt, plan, at)
        events += result.events + _decision_events(decision) + _ledger_events(state, self.store.state)
        equity = self._mark(at, view, market)
        return _report(at, decision, self.constitution, limits, result, fills, events, equity)

    def _quiet_report(self, at: datetime) -> CycleReport:
        """The decision in force answers this tick too (``engine.quiet``): nothing new is
        decided, submitted or recorded; one-off events are not repeated."""
        last = self._last_report
        return last.model_copy(update={"at": at, "orders_submitted": 0, "fills": 0, "rejections": 0,
                                       "events": (), "quiet": True})

    # ------------------------------------------------------------------ steps

    def _snapshot(self, at: datetime) -> MarketSnapshot:
        held = {h.contract.symbol for h in self.store.state.holdings.values()}
        snap = self.market.snapshot(at, sorted(set(self.symbols) | (held - {"SPX", "VIX"})))
        return with_index_quotes(snap, held)

    def _start_quarters(self, view: MarketView) -> None:
        q = quarter_of(view.today)
        state = self.store.state
        todo = [a for a in state.active_accounts() if a.quarter != q]
        if todo:
            from engine.ledger_view import equity_of

            ops = [StartQuarter(f"quarter:{a.id}:{q}", a.id, q, cents(equity_of(state, a.id, view))) for a in todo]
            self.store.apply(ops, view.as_of)

    def _mark(self, at: datetime, view: MarketView, market: tuple) -> dict[str, float]:
        """Equity per active account; a mark is written only when it moved since the last one
        (the equity series is a step function, and an unchanged tick leaves the ledger as is).
        The same holdings at the same market content are worth the same: not revalued."""
        from engine.ledger_view import equity_of

        state = self.store.state
        if self._valued is not None and self._valued[0] is state and self._valued[1] == market:
            return self._valued[2]
        equity = {a.id: round(equity_of(state, a.id, view), 2) for a in state.active_accounts()}
        moved = {a: cents(e) for a, e in equity.items() if self._marked.get(a) != cents(e)}
        self.store.apply([MarkEquity(f"mark:{a}:{at.isoformat()}", a, c) for a, c in moved.items()], at)
        self._marked.update(moved)
        self._valued = (self.store.state, market, equity)
        return equity


def with_index_quotes(snap: MarketSnapshot, held: set[str]) -> MarketSnapshot:
    """Held SPX/VIX hedges need an underlying price in the facts: SPX from 10 x SPY, VIX from
    the VIX quote (docs/execution.md)."""
    extra: dict[str, Quote] = {}
    if "VIX" in held and snap.vix is not None:
        extra["VIX"] = snap.vix
    if "SPX" in held and "SPX" not in snap.quotes and "SPY" in snap.quotes:
        spy = snap.quotes["SPY"]
        extra["SPX"] = Quote("SPX", spy.last * 10, spy.at)
    if not extra:
        return snap
    return replace(snap, quotes={**snap.quotes, **extra})


def _decision_events(decision) -> list[WeekEvent]:
    out = []
    for a in decision.actions:
        if a.kind in _DECISION_EVENTS:
            out.append(_DECISION_EVENTS[a.kind])
        elif a.kind == "skip_entry" and a.params.get("why") == "earnings":
            out.append(WeekEvent.EARNINGS_SKIP)
    return out


def _ledger_events(before: LedgerState, after: LedgerState) -> list[WeekEvent]:
    """Forks and merges are counted when the ledger made them, not when a rule asked: a fork
    the planner defers (collateral still tied up) is asked for again every cycle."""
    forks = sum(a.forks for a in after.accounts.values()) - sum(a.forks for a in before.accounts.values())
    merged = sum(a.status == "merged" for a in after.accounts.values()) - sum(a.status == "merged" for a in before.accounts.values())
    return [WeekEvent.FORK] * forks + [WeekEvent.MERGE] * merged


def _report(at, decision, constitution, limits, result, fills, events, equity) -> CycleReport:
    derived = decision.derived.get("accounts", {})
    denied = sum(1 for v in decision.verdicts if not v.approved)
    return CycleReport(
        at=at, decision_id=decision.decision_id, constitution_version=constitution.version,
        constitution_digest=constitution.digest, market_mode=limits.market_mode,
        account_levels={k: int(v.get("level", 0)) for k, v in derived.items()},
        account_modes={k: str(v.get("mode", "active")) for k, v in derived.items()},
        action_counts=dict(Counter(a.kind for a in decision.actions)),
        orders_submitted=result.submitted, fills=fills + result.fills, rejections=result.rejections + denied,
        events=tuple(dict.fromkeys(events)), equity=equity,
    )


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Portfolio:
    """A new ALL-USE: capital split 40/30/30; Com-Acc's share arrives as Mag-7 shares (in
    100-share lots, equal dollars per ticker, the remainder in cash) so it can sell calls."""

    capital: float = 1_000_000.0
    opened: date = date(2024, 1, 2)


def bootstrap_ops(constitution: LoadedConstitution, portfolio: Portfolio, view: MarketView):
    """(ledger ops, venue seeds) opening GEN/REV/COM; idempotent by op id."""
    c = constitution.model
    split = c.capital.split
    ops: list = []
    seeds: list = []
    for acct, kind, share in (("GEN", "gen", split.gen), ("REV", "rev", split.rev), ("COM", "com", split.com)):
        ops.append(OpenAccount(f"open:{acct}", acct, kind, portfolio.opened))
        amount = portfolio.capital * share
        if kind == "com":
            per = amount / len(c.sleeves.com.tickers)
            for t in c.sleeves.com.tickers:
                price = view.spot(t)
                lots = int(per // (price * 100)) if price else 0
                if lots:
                    ops.append(DepositShares(f"seed:{acct}:{t}", acct, stock(t), lots * 100, round(price, 2)))
                    seeds.append((f"seed:{acct}:{t}", acct, stock(t), lots * 100, round(price, 2)))
                    amount -= lots * 100 * round(price, 2)
        ops.append(Deposit(f"deposit:{acct}", acct, cents(amount)))
    return ops, seeds


def is_empty(state: LedgerState) -> bool:
    return not state.accounts


def open_portfolio(cycle: TradingCycle, portfolio: Portfolio, at: datetime, seed_venue: Callable | None = None) -> None:
    """Open the three sleeves at ``at`` if the ledger is empty (venue first: its seeds are
    idempotent, so a crash between the two is repaired by running this again)."""
    if not is_empty(cycle.store.state) and all(a in cycle.store.state.accounts for a in ("GEN", "REV", "COM")):
        return
    view = MarketView(cycle._snapshot(at))
    ops, seeds = bootstrap_ops(cycle.constitution, portfolio, view)
    if seed_venue is not None:
        for s in seeds:
            seed_venue(*s)
    cycle.store.apply([op for op in ops if op.op_id not in cycle.store.state.applied], at)

