"""The ``engine.cycle.report.Cycle`` implementation: one core for paper, backtest and live.

One ``run(at)``: market snapshot -> (paper venue moves to ``at``) -> ledger books broker
fills and reconciles orders -> facts from market + ledger -> evaluate -> arbitration (one
intent per position, ``engine.execution.arbitration``) -> risk guard ->
decision recorded (write before act) -> plan -> submit and work orders -> fills booked ->
equity marked -> ``CycleReport``. Only the market-data port, the broker and the stores
differ between paper, backtest and live; ``venue_sync`` is the paper broker's ``sync``.

Safe to call again after a crash: the first run of a process performs the resume sequence
(``engine.execution.resume``), decisions are idempotent by decision id, orders by client order id and
ledger operations by op id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime

from constitution.load import LoadedConstitution
from engine.cycle import agreement, pipeline
from engine.cycle.approval_gate import ApprovalGate
from engine.cycle.quiet import QuietTicks, clock_cuts, market_key
from engine.cycle.report import CycleReport
from engine.execution import planner, risk
from engine.execution.broker import BrokerPort
from engine.execution.events import WeekEvent
from engine.execution.executor import ExecutionResult, Executor, LedgerStore
from engine.execution.ledger import (
    Holding,
    LedgerState,
    MarkEquity,
    Realised,
    StartQuarter,
    cents,
    quarter_of,
)
from engine.execution.ledger_view import ledger_facts
from engine.execution.plan import Plan
from engine.execution.resume import ResumeReport, reconcile_orders, resume
from engine.execution.states import state_of
from engine.facts.model import Facts
from engine.market import calendar
from engine.market.facts_builder import build_facts, candidates_for_day
from engine.market.params import market_params
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketDataPort, MarketSnapshot, Quote
from engine.records.decision import Decision
from engine.records.log import DecisionLog, Receipt, end_cycle_of
from engine.rules.evaluate import evaluate
from engine.rules.shadow import Disagreement, Evaluate, decide_both

_DECISION_EVENTS = {
    "hedged_week": WeekEvent.HEDGED_WEEK,
    "enter_safe_mode": WeekEvent.SAFE,
    "kill_switch": WeekEvent.KILL,
}


class TradingCycle:
    def __init__(
        self,
        constitution: LoadedConstitution,
        market: MarketDataPort,
        broker: BrokerPort,
        store: LedgerStore,
        log: DecisionLog,
        *,
        venue_sync: Callable[[datetime, MarketSnapshot], None] | None = None,
        symbols: Sequence[str] | None = None,
        wait: Callable[[float], None] = lambda s: None,
        shadow: Evaluate | None = evaluate,
        approvals: ApprovalGate | None = None,
    ):
        self.constitution = constitution
        self.market = market
        self.broker = broker
        self.store = store
        self.log = log
        self.venue_sync = venue_sync
        self.approvals = approvals  # None: nothing waits for a person (tests, dry runs)
        # The second evaluator every decision must agree with (engine.rules.shadow): durable-
        # rules (in this process by default; paper and live pass a child process,
        # adapters.shadow_process, D200); None decides with the compiled path alone (backtests
        # without --shadow).
        self.shadow = shadow
        self.disagreements = 0
        self._shadow_failed = False  # the last decision's shadow gave no decision
        c = constitution.model
        self.params = market_params(c)  # the constitution's market values, built once
        self.executor = Executor(
            broker,
            log,
            store,
            cancel_replace_seconds=c.orders.cancel_replace_seconds,
            retry_smaller=c.orders.retry_smaller,
            wait=wait,
        )
        tickers = {t for ts in self.params.sleeve_tickers.values() for t in ts}
        self.symbols = tuple(sorted(set(symbols or ()) | tickers))
        self.resumed: ResumeReport | None = None
        self._snapshot_held: frozenset[str] = frozenset()  # held symbols the snapshot covers
        self.last_plan: Plan | None = None
        self.quiet = QuietTicks(
            clock_cuts(constitution.rules),
            c.cadence.early_close_shift_minutes,
            self.params.cadence,
        )
        self._last_report: CycleReport | None = None
        self._content_until: datetime | None = None  # of the last tick's market snapshot
        self._marked: dict[str, int] = {}  # account -> cents of its last equity mark
        self._valued: tuple | None = (
            None  # (ledger state, market key, equity) of the last valuation
        )

    def run(self, at: datetime) -> CycleReport:
        try:
            return self._run(at)
        finally:
            # a backtest's cycle: its ledger writes and its records in one transaction (D180,
            # D93; the store leaves its writes to the log when the log takes them along)
            end_cycle_of(self.store)
            end_cycle_of(self.log)

    def _run(self, at: datetime) -> CycleReport:
        snapshot = self._snapshot(at)
        self._content_until = snapshot.content_until
        if self.venue_sync is not None:
            self.venue_sync(at, snapshot)
        events: list[WeekEvent] = []
        if self.resumed is None:
            self.resumed = resume(self.store, self.executor, at)
        fills = self.executor.sync_fills(at, events)
        reconcile_orders(self.store, self.broker, at)
        snapshot = self._covering(at, snapshot)
        view = MarketView(snapshot)
        self._start_quarters(view)
        market = market_key(snapshot)
        self._mark(
            at, view, market
        )  # the high-water mark includes the present before the rules judge drawdowns
        before = self.store.state
        key = self.quiet.key(at, market, before, self.broker.is_connected())
        approved = self.approvals.tick(at) if self.approvals is not None else False
        if (
            not fills
            and not approved
            and self._last_report is not None
            and self.quiet.is_quiet(key, before)
        ):
            return self.quiet_report(at)
        report = self._decide(at, snapshot, view, events, fills, market)
        acted = bool(report.orders_submitted or report.fills)
        # a shadow that gave no decision (a crash, a timeout: D200) said nothing about these
        # facts, so this SAFE tick is no quiet reference: the next tick is decided again
        self.quiet.settle(key, before, self.store.state, acted or self._shadow_failed)
        self._last_report = report
        return report

    def _decide(
        self,
        at: datetime,
        snapshot: MarketSnapshot,
        view: MarketView,
        events: list[WeekEvent],
        fills: int,
        market: tuple,
    ) -> CycleReport:
        lf = ledger_facts(self.store.state, view)
        day = calendar.new_york_date(at)
        facts = build_facts(
            snapshot,
            lf.accounts,
            params=self.params,
            symbols=self.symbols,
            candidates=candidates_for_day(day, self.params),
            broker_connected=self.broker.is_connected(),
        )
        state = self.store.state
        guard = guard_of(state)
        evaluated, disagreement = self._evaluate(facts)
        decision = pipeline.after_evaluation(self.constitution, evaluated, guard)
        if disagreement is not None:
            decision = agreement.refuse(decision, disagreement)
        limits = pipeline.limits_of(decision)
        receipt = self.executor.record(decision, self.constitution.text)
        if disagreement is not None:
            self.log.link(agreement.note(decision, disagreement))
        planned, held = self._gated(decision, receipt, at)
        plan = planner.plan(
            self.constitution.model, planned, self.store.state, view, limits, lf.by_key
        )
        plan = self._screened(decision, receipt, plan, held, at)
        self.last_plan = plan
        result = self.executor.execute(decision, receipt, plan, at)
        if self.approvals is not None:
            self.approvals.settle(plan, decision.decision_id)
            self._carry(decision, view, limits, lf.by_key, result, at)
        events += (
            result.events + _decision_events(decision) + _ledger_events(state, self.store.state)
        )
        if self.store.state.account_modes:  # an account held (L3, a user's pause): §12 D67
            events.append(WeekEvent.HALT)
        equity = self._mark(at, view, market)
        self.log.checkpoint(self.constitution.digest)  # signed, outside the database
        return _report(at, decision, self.constitution, limits, result, fills, events, equity)

    def period_books(self, at: datetime) -> dict:
        """The quarter's books at ``at`` (§10/§11/§17: tax ledger, reinvestment, hedges, LEAP
        ladder) as JSON data, for the quarterly report the scheduler stores at the cut."""
        from engine.execution.books import quarter_books

        view = MarketView(self._snapshot(at))
        lines: list[Realised] = getattr(self.store, "realised_lines", lambda: [])()
        books = quarter_books(
            self.constitution.model, self.store.state, lines, view, quarter_of(view.today)
        )
        return books.model_dump(mode="json")

    # ------------------------------------------------------------------ approvals

    def _gated(self, decision: Decision, receipt: Receipt, at: datetime) -> tuple[Decision, Plan]:
        """The decision the planner sees: actions waiting for a person held (approval_gate)."""
        if self.approvals is None:
            return decision, Plan()
        return self.approvals.gate(decision, receipt, at)

    def _screened(
        self, decision: Decision, receipt: Receipt, plan: Plan, held: Plan, at: datetime
    ) -> Plan:
        if self.approvals is None:
            return plan
        plan = replace(plan, rejections=held.rejections + plan.rejections)
        return self.approvals.screen(decision, receipt, plan, at)

    def _carry(
        self,
        decision: Decision,
        view: MarketView,
        limits: risk.Limits,
        by_key: dict[str, Holding],
        result: ExecutionResult,
        at: datetime,
    ) -> None:
        """Approved requests carried out from their own decision (approval_gate.carried),
        reviewed against the ledger as this decision left it."""
        assert self.approvals is not None
        guard = guard_of(self.store.state)
        for shell, receipt, request in self.approvals.carried(decision, guard):
            plan = planner.plan(
                self.constitution.model, shell, self.store.state, view, limits, by_key
            )
            done = self.executor.execute(shell, receipt, plan, at)
            self.approvals.finish(request, plan, decision.decision_id)
            result.submitted += done.submitted
            result.fills += done.fills
            result.rejections += done.rejections
            result.events += done.events

    # ------------------------------------------------------------------ two evaluators, quiet ticks

    def _evaluate(self, facts: Facts) -> tuple[Decision, Disagreement | None]:
        """The compiled decision and, when a shadow runs, whether it disagreed."""
        if self.shadow is None:
            return evaluate(self.constitution, facts), None
        decision, disagreement = decide_both(self.constitution, facts, self.shadow)
        self.disagreements += disagreement is not None
        self._shadow_failed = disagreement is not None and disagreement.durable is None
        return decision, disagreement

    def quiet_until(self, at: datetime) -> datetime | None:
        """After ``run(at)``: every tick before the returned instant would be quiet (its
        report ``quiet_report``), so an event-driven replay need not run them; None: the next
        tick must run (``engine.cycle.quiet.QuietTicks.until``; a person may approve at any)."""
        if self._last_report is None:
            return None
        if self.approvals is not None and self.approvals.store.open_approvals():
            return None  # an open request may be answered or expire at any tick
        return self.quiet.until(at, self.store.state, self._content_until)

    def quiet_report(self, at: datetime) -> CycleReport:
        """The decision in force answers this tick too (``engine.cycle.quiet``): nothing new is
        decided, submitted or recorded; one-off events are not repeated."""
        last = self._last_report
        assert last is not None  # a quiet tick follows a decided one
        return last.model_copy(
            update={
                "at": at,
                "orders_submitted": 0,
                "fills": 0,
                "rejections": 0,
                "events": (),
                "quiet": True,
            }
        )

    # ------------------------------------------------------------------ steps

    def _snapshot(self, at: datetime) -> MarketSnapshot:
        held = self._held()
        symbols = sorted(set(self.symbols) | (held - {"SPX", "VIX"}))
        snap = self.market.snapshot(at, symbols, self.params)
        self._snapshot_held = held
        return with_index_quotes(snap, held)

    def _held(self) -> frozenset[str]:
        return frozenset(h.contract.symbol for h in self.store.state.holdings.values())

    def _covering(self, at: datetime, snapshot: MarketSnapshot) -> MarketSnapshot:
        """The snapshot again when the fills just booked (a restart's, or a working order's)
        hold a symbol it was not taken for: a hedge filled while the process was down must be
        priced in the facts this cycle states (issue 13)."""
        if self._held() <= self._snapshot_held:
            return snapshot
        return self._snapshot(at)

    def _start_quarters(self, view: MarketView) -> None:
        q = quarter_of(view.today)
        state = self.store.state
        todo = [a for a in state.active_accounts() if a.quarter != q]
        if todo:
            from engine.execution.ledger_view import equity_of

            ops = [
                StartQuarter(f"quarter:{a.id}:{q}", a.id, q, cents(equity_of(state, a.id, view)))
                for a in todo
            ]
            self.store.apply(ops, view.as_of)

    def _mark(self, at: datetime, view: MarketView, market: tuple) -> dict[str, float]:
        """Equity per active account; a mark is written only when it moved since the last one
        (the equity series is a step function, and an unchanged tick leaves the ledger as is).
        The same holdings at the same market content are worth the same: not revalued."""
        from engine.execution.ledger_view import equity_of

        state = self.store.state
        if self._valued is not None and self._valued[0] is state and self._valued[1] == market:
            return self._valued[2]
        equity = {a.id: round(equity_of(state, a.id, view), 2) for a in state.active_accounts()}
        moved = {a: cents(e) for a, e in equity.items() if self._marked.get(a) != cents(e)}
        self.store.apply(
            [MarkEquity(f"mark:{a}:{at.isoformat()}", a, c) for a, c in moved.items()], at
        )
        self._marked.update(moved)
        self._valued = (self.store.state, market, equity)
        return equity


def guard_of(state: LedgerState) -> risk.GuardState:
    """The risk guard's input from the ledger: its mode and latch, the active accounts, the
    accounts held (an L3 SAFE, a user's pause) and the §9 state (MAINTENANCE / AUDIT)."""
    holds = {a: m.mode for a, m in state.account_modes.items()}
    return risk.GuardState(
        state.mode, state.latched, len(state.active_accounts()), holds, state_of(state).value
    )


def with_index_quotes(snap: MarketSnapshot, held: AbstractSet[str]) -> MarketSnapshot:
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


def _decision_events(decision: Decision) -> list[WeekEvent]:
    out = []
    for a in decision.actions:
        if a.kind == "enter_safe_mode" and a.params.get("why") != "vix_safe":
            out.append(WeekEvent.HALT)  # L3, broker down: not the VIX tier (§12, D67)
        elif a.kind in _DECISION_EVENTS:
            out.append(_DECISION_EVENTS[a.kind])
        elif a.kind == "skip_entry" and a.params.get("why") == "earnings":
            out.append(WeekEvent.EARNINGS_SKIP)
    return out


def _ledger_events(before: LedgerState, after: LedgerState) -> list[WeekEvent]:
    """Forks and merges are counted when the ledger made them, not when a rule asked: a fork
    the planner defers (collateral still tied up) is asked for again every cycle."""
    forks = sum(a.forks for a in after.accounts.values()) - sum(
        a.forks for a in before.accounts.values()
    )
    merged = sum(a.status == "merged" for a in after.accounts.values()) - sum(
        a.status == "merged" for a in before.accounts.values()
    )
    return [WeekEvent.FORK] * forks + [WeekEvent.MERGE] * merged


def _report(
    at: datetime,
    decision: Decision,
    constitution: LoadedConstitution,
    limits: risk.Limits,
    result: ExecutionResult,
    fills: int,
    events: list[WeekEvent],
    equity: dict[str, float],
) -> CycleReport:
    derived = decision.derived.get("accounts", {})
    denied = sum(1 for v in decision.verdicts if not v.approved)
    return CycleReport(
        at=at,
        decision_id=decision.decision_id,
        constitution_version=constitution.version,
        constitution_digest=constitution.digest,
        market_mode=limits.market_mode,
        account_levels={k: int(v.get("level", 0)) for k, v in derived.items()},
        account_modes={k: str(v.get("mode", "active")) for k, v in derived.items()},
        action_counts=dict(Counter(a.kind for a in decision.actions)),
        orders_submitted=result.submitted,
        fills=fills + result.fills,
        rejections=result.rejections + denied,
        events=tuple(dict.fromkeys(events)),
        equity=equity,
    )
