"""The composition root: the one place that picks concrete adapters for the engine's ports.

Paper is the default everywhere; nothing here reaches a real broker without an explicit,
separate choice (``--live`` in ``alluse run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from adapters.storage.audit_store import open_decision_log
from constitution.errors import InvalidInput, OperationalError, Problem
from constitution.load import LoadedConstitution
from engine.clock import Clock, WallClock
from engine.cycle.report import Cycle
from engine.records.audit import RunMode
from engine.records.decision import Decision
from engine.records.log import DecisionLog, Receipt

if TYPE_CHECKING:  # imported where used: the CLI starts without loading the engine
    from datetime import datetime
    from typing import Protocol

    from adapters.brokers.paper import PaperBroker, PaperCosts
    from adapters.deployment import DeploymentConfig
    from adapters.market_data.files import BarMarketData
    from adapters.storage.audit_store import AuditStore
    from adapters.storage.ledger_store import SqlLedgerStore
    from engine.cycle.approval_gate import ApprovalGate
    from engine.cycle.report import CycleReport
    from engine.cycle.trading import TradingCycle
    from engine.execution.approvals import Policy
    from engine.execution.broker import BrokerPort
    from engine.execution.executor import Executor, LedgerStore
    from engine.market.snapshot import MarketDataPort

    class AuditedLog(DecisionLog, Protocol):
        """A decision log over an ``AuditStore``: ``SqlDecisionLog``, a backtest's
        ``CycleBatchedLog``, ``AlertingDecisionLog`` (what ``people`` takes and returns)."""

        store: AuditStore

        def close(self) -> None: ...


def record_decision(
    decision: Decision, constitution: LoadedConstitution, mode: str, db_url: str | None
) -> Receipt:
    """Append ``decision`` to the audit log (with the constitution's text, stored once per digest)."""
    log = open_decision_log(db_url, RunMode(mode), WallClock())
    try:
        receipt = log.record(decision, constitution.text)
        log.checkpoint(constitution.digest)
    finally:
        log.close()
    return receipt


# --------------------------------------------------------------------------- one writer
# (issue 13) Every command that writes a database holds its single-writer lease while it runs:
# ``alluse run``, ``paper step``, ``paper resume`` and ``backtest``. Readers never take it.


@contextmanager
def writer_lease(db_url: str, *, say: Callable[[str], None] | None = None) -> Iterator[Any]:
    """Hold the writer lease of ``db_url`` for the block (``DatabaseHeld``, exit 3, before
    anything is written when another process holds it). A stale lease a crashed writer left
    is taken over and recorded (``record_takeover``)."""
    from adapters.storage.lease import acquire

    lease = acquire(db_url)
    try:
        if lease.taken_over is not None:
            where = record_takeover(db_url, lease)
            if say is not None:
                say(
                    f"note: took over the writer lease of {lease.taken_over.describe()}, "
                    f"which ended without releasing it (recorded {where})"
                )
        yield lease
    finally:
        lease.release()


def record_takeover(db_url: str, lease: Any) -> str:
    """Record a stale lease taken over: a ``note`` link on the latest decision in the audit
    log (the crashed run's last), or - with no decision to attach it to - a ``Note`` in the
    ledger's operation log. Returns where it went."""
    from adapters.storage import audit_schema
    from adapters.storage.audit_store import AuditQuery, AuditStore
    from adapters.storage.ledger_store import SqlLedgerStore
    from adapters.storage.migrations import migrate
    from engine.execution.ledger import Note
    from engine.records.audit import ExecutionLink

    note = lease.takeover_note()
    clock = WallClock()
    store = SqlLedgerStore.open(db_url)
    try:
        migrate(store.engine, [audit_schema.COMPONENT])
        audit = AuditStore(store.engine, clock)
        latest = audit.query(AuditQuery(limit=1))
        if latest:
            did = latest[-1].decision_id
            link = ExecutionLink(decision_id=did, kind="note", ref=note["event"], data=note)
            audit.append_link(link, RunMode(latest[-1].mode))
            return f"in the audit log on decision {did}"
        data = tuple((k, str(v)) for k, v in sorted(note.items()))
        store.apply([Note(f"lease:{lease.holder.since}", note["event"], data)], clock.now())
        return "in the ledger's operation log (the audit log has no decision yet)"
    finally:
        store.close()


# --------------------------------------------------------------------------- scheduler wiring
# (issue 7) ``alluse run`` and ``alluse backtest`` get their pipeline cycle from here: the same
# cycle on the wall clock and on the replay clock; only the clock and the data differ.


@dataclass(frozen=True)
class CycleContext:
    """What a cycle factory is told: where to record, in which mode, on which clock, and which
    market data (``data_dir`` of daily bars, or a ``synthetic_seed``)."""

    db_url: str
    mode: RunMode
    clock: Clock
    data_dir: str | None = None
    synthetic_seed: int | None = None
    until: date | None = None  # last day market data is needed for (synthetic history)
    deployment: Any = None  # adapters.deployment.DeploymentConfig (None: the defaults)
    approvals: Any = None  # an engine.execution.approvals.Policy overriding the config's
    shadow: bool = False  # a backtest runs durable-rules beside the compiled path too
    # the run's AuditStore, shared by the cycles' log (a backtest: its notes and its batched
    # cycles then write through one store, in order, D211); None: the log opens its own
    audit: Any = None
    # a backtest's chains are made ahead in a second process (adapters.market_data.chain_feed)
    chain_feed: bool = False


class CycleNotAvailable(OperationalError):
    """The pipeline cycle this command needs is not in this build (exit 3)."""


CycleBuilder = Callable[[LoadedConstitution], Cycle]


def paper_cycle_factory(ctx: CycleContext) -> CycleBuilder:
    """The paper pipeline (``engine.cycle.trading.TradingCycle``): paper broker, ledger, venue
    book and audit log in ``ctx.db_url``, market data from ``ctx``. Market, broker, ledger and
    log are built once and shared by every constitution the scheduler swaps in; each
    constitution gets its own ``TradingCycle``. The three sleeves are opened (idempotently) at
    the first cycle."""
    from adapters.brokers.paper import PaperBroker, PaperCosts
    from adapters.storage.audit_store import SqlDecisionLog, open_decision_log
    from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
    from engine.cycle.bootstrap import Portfolio, open_portfolio
    from engine.cycle.trading import TradingCycle
    from engine.market.calendar import new_york_date

    market = paper_market(ctx)
    # a backtest writes its ledger and venue once per cycle (D180); paper writes before acting
    store = SqlLedgerStore.open(ctx.db_url, per_cycle=ctx.mode is RunMode.BACKTEST)
    venue = SqlVenueStore(store.engine, store.writes)
    broker = PaperBroker(market, costs=PaperCosts(), store=venue)
    broker.connect()
    sql_log = (
        open_decision_log(ctx.db_url, ctx.mode, ctx.clock)
        if ctx.audit is None
        else SqlDecisionLog(ctx.audit, ctx.mode)
    )
    log: AuditedLog = sql_log
    if (
        ctx.mode is RunMode.BACKTEST
    ):  # whole cycles per transaction (D93, D211); paper writes before acting
        from scheduler.batched_log import CycleBatchedLog

        log = CycleBatchedLog(sql_log.store, ctx.mode, store.writes)
    log, gate = people(log, ctx.clock, ctx.deployment, ctx.approvals, ctx.db_url)
    shadow = shadow_for(ctx.mode, ctx.shadow)

    def build(constitution: LoadedConstitution) -> Cycle:
        cycle = TradingCycle(
            constitution,
            market,
            broker,
            store,
            log,
            venue_sync=broker.sync,
            approvals=gate(constitution),
            shadow=shadow,
        )
        return _OpeningCycle(
            cycle,
            lambda at: open_portfolio(
                cycle, Portfolio(opened=new_york_date(at)), at, broker.seed_position
            ),
        )

    return _Builder(build, shadow, store, market)


def shadow_for(mode: RunMode, shadow: bool = False) -> Any:
    """The second evaluator a cycle in ``mode`` decides with (D91, D200): paper and live,
    durable-rules in a child process (``adapters.shadow_process.ShadowProcess``: a crash of its
    C core, a hang or an ``EngineFailure`` is a SAFE cycle, never the daemon's end); a backtest,
    durable-rules in this process with ``shadow`` (``--shadow``: a replay has no wall-clock
    bound, so it stays reproducible, and a crash ends a command one runs again), else none.
    A ``ShadowProcess`` is closed by its owner (``close_shadow``)."""
    if mode is RunMode.BACKTEST:
        if not shadow:
            return None
        from engine.rules.evaluate import evaluate

        return evaluate
    from adapters.shadow_process import ShadowProcess

    return ShadowProcess()


def close_shadow(shadow: Any) -> None:
    """End a shadow's child process, if it has one (``shadow_for``)."""
    close = getattr(shadow, "close", None)
    if close is not None:
        close()


class _Builder:
    """A ``CycleBuilder`` that owns the cycles' shadow, ledger store and market: ``close()``
    (the daemon's shutdown, the end of a backtest) ends the shadow's child process, closes the
    store (an SQLite database's last connection folds its write-ahead log into the file) and
    ends the market's chain feed."""

    def __init__(self, build: CycleBuilder, shadow: Any, store: Any = None, market: Any = None):
        self._build, self.shadow, self._store, self._market = build, shadow, store, market

    def __call__(self, constitution: LoadedConstitution) -> Cycle:
        return self._build(constitution)

    def close(self) -> None:
        close_shadow(self.shadow)
        try:
            if self._store is not None:
                self._store.close()
        finally:
            if self._market is not None:
                self._market.close()


def people(
    log: AuditedLog,
    clock: Clock,
    deployment: DeploymentConfig | None = None,
    policy: Policy | None = None,
    db_url: str | None = None,
) -> tuple[AuditedLog, Callable[[LoadedConstitution], ApprovalGate]]:
    """The human in the loop around a SQL decision log (docs/operations.md): paper and live
    decisions write their alerts to the outbox in the same transaction as their record; every
    cycle gets an approval gate whose requests live in the same database, answered by
    ``policy`` (else the deployment config's policy for the mode; live: a person). Without
    ``deployment`` the config file beside the database is read (adapters.deployment).
    Returns (the decision log to use, constitution -> ApprovalGate)."""
    from adapters.deployment import config_path, load_deployment
    from adapters.storage.approvals_store import SqlApprovalStore
    from adapters.storage.migrations import migrate
    from adapters.storage.outbox import COMPONENT, AlertingDecisionLog, SqlOutbox
    from engine.cycle.approval_gate import ApprovalGate

    config = deployment or load_deployment(config_path(db_url))
    mode = log.mode
    outbox = None
    if mode in (RunMode.PAPER, RunMode.LIVE):
        outbox = SqlOutbox(log.store.engine, clock, config.alerts)
        migrate(outbox.engine, [COMPONENT])
        # paper and live: a SqlDecisionLog (only a backtest batches, and it has no outbox)
        log = AlertingDecisionLog(log, outbox)  # type: ignore[arg-type]
    store = SqlApprovalStore(log.store, outbox, exclusive=mode is RunMode.BACKTEST)
    chosen = policy or config.approvals.for_mode(mode.value)

    def gate(constitution: LoadedConstitution) -> ApprovalGate:
        return ApprovalGate(constitution.model, store, mode.value, chosen)

    return log, gate


class _OpeningCycle:
    """Opens the portfolio before the first cycle (a no-op once the ledger has the sleeves)."""

    def __init__(self, cycle: TradingCycle, open_at: Callable):
        self.cycle, self._open_at, self._opened = cycle, open_at, False

    def run(self, at: datetime) -> CycleReport:
        if not self._opened:
            self._open_at(at)
            self._opened = True
        return self.cycle.run(at)

    def period_books(self, at: datetime) -> dict:
        """The quarter's books (``TradingCycle.period_books``) for the quarterly report."""
        return self.cycle.period_books(at)

    def quiet_until(
        self, at: datetime
    ) -> datetime | None:  # scheduler.replay skips the ticks before it
        return self.cycle.quiet_until(at) if self._opened else None

    def quiet_report(self, at: datetime) -> CycleReport:
        return self.cycle.quiet_report(at)


def paper_market(ctx: CycleContext) -> BarMarketData:
    """Daily bars from ``ctx.data_dir`` (``alluse data import``, or bar files in any layout the
    import reads), else seeded synthetic data through ``ctx.until`` (default: a year past the
    clock's today). With ``ctx.chain_feed``, its chains are made ahead in a second process
    (``adapters.market_data.chain_feed``); ``market.close()`` ends it."""
    from adapters.market_data.chain_feed import LaterFeed, replay_market, spawned

    until = _market_until(ctx)
    market = replay_market(ctx.data_dir, ctx.synthetic_seed, until)  # as the child does
    if not ctx.chain_feed:
        return market
    where = (ctx.data_dir, ctx.synthetic_seed, until)
    # bars a chain is priced from: the child starts now, beside the run's own start-up
    feed = spawned(*where) if market.has_bars_beyond_the_indices() else LaterFeed(*where)
    if feed is not None:
        market.feed_chains(feed)
    return market


def _market_until(ctx: CycleContext) -> date:
    from datetime import timedelta

    return ctx.until or (ctx.clock.now().date() + timedelta(days=365))


def live_cycle_factory(
    ctx: CycleContext,
    ib_address: str,
    accounts: Mapping[str, str] | None = None,
    *,
    client_id: int = 1,
    ib_settings: Mapping[str, Any] | None = None,
    market_settings: Mapping[str, Any] | None = None,
) -> CycleBuilder:
    """The live pipeline (``scheduler.live``): the paper pipeline's ``TradingCycle`` with
    ``IBBroker`` and ``IBMarketData`` sharing one connection to the gateway at ``ib_address``
    (``HOST:PORT``), ledger and audit log in ``ctx.db_url`` (mode live), no venue sync.
    ``accounts`` maps ALL-USE sub-accounts to IB account codes (``{"GEN": "U123"...}``).

    Nothing connects here: the returned builder connects when the daemon first builds a cycle
    (after the constitution is validated); it has ``close()`` for the daemon's shutdown. An
    empty live ledger is opened from IB's cash and positions (D25). Invalid arguments raise
    ``InvalidInput`` (exit 2); an unreachable gateway at start ``LiveRefused`` (exit 3)."""
    from pydantic import ValidationError

    from adapters.ib.broker import IBConfig
    from adapters.ib.market_data import IBMarketDataSettings
    from scheduler import live

    address = live.parse_address(ib_address)
    if address is None:
        raise _bad_argument("--ib", "bad-address", f"expected HOST:PORT, got {ib_address!r}")
    if not accounts:
        raise _bad_argument(
            "--account",
            "no-accounts",
            "live trading needs the sub-account mapping: "
            "--account GEN=CODE --account REV=CODE --account COM=CODE (IB account codes)",
        )
    try:
        config = IBConfig(
            host=address[0],
            port=address[1],
            client_id=client_id,
            live=True,
            accounts=dict(accounts),
            **dict(ib_settings or {}),
        )
        settings = IBMarketDataSettings(**dict(market_settings or {}))
    except ValidationError as exc:
        raise _bad_argument(
            "--ib", "bad-ib-config", "; ".join(e["msg"] for e in exc.errors())
        ) from None
    return live.LiveCycleBuilder(ctx, config, settings)


def _bad_argument(option: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(option, 1, 1, code, "", message)], what="arguments")


# Cycle factories by name: a fixed registry, never a module path from the command line (a
# name from user input must not load code). The program registers "paper"; code already
# running in the process (tests, an embedding program) may register more before calling main.
CycleFactory = Callable[[CycleContext], CycleBuilder]
CYCLE_FACTORIES: dict[str, CycleFactory] = {"paper": paper_cycle_factory}


def register_cycle_factory(name: str, factory: CycleFactory) -> None:
    CYCLE_FACTORIES[name] = factory


def named_cycle_factory(name: str, ctx: CycleContext) -> CycleBuilder:
    """The factory registered as ``name`` (``alluse run --cycle-factory NAME``)."""
    factory = CYCLE_FACTORIES.get(name)
    if factory is None:
        known = ", ".join(sorted(CYCLE_FACTORIES))
        raise _bad_argument(
            "--cycle-factory", "unknown-factory", f"no cycle factory {name!r} (known: {known})"
        )
    return factory(ctx)


# --------------------------------------------------------------------------- paper trading


def paper_executor(
    broker: BrokerPort,
    log: DecisionLog,
    store: LedgerStore,
    constitution: LoadedConstitution | None = None,
) -> Executor:
    """An ``Executor`` outside a cycle (resume, an operator's account change) working orders
    by ``constitution``'s order terms (default: the bundled one, as ``open_paper_cycle``)."""
    from constitution.load import bundled_path, load_constitution
    from engine.execution.executor import Executor

    orders = (constitution or load_constitution(bundled_path())).model.orders
    return Executor(
        broker,
        log,
        store,
        cancel_replace_seconds=orders.cancel_replace_seconds,
        retry_smaller=orders.retry_smaller,
    )


def open_paper_cycle(
    db_url: str | None,
    market: MarketDataPort,
    *,
    mode: str = "paper",
    clock: Clock | None = None,
    costs: PaperCosts | None = None,
    constitution: LoadedConstitution | None = None,
    deployment: DeploymentConfig | None = None,
    approvals: Policy | None = None,
) -> tuple[TradingCycle, PaperBroker, SqlLedgerStore]:
    """A ``TradingCycle`` on the paper broker: ledger, venue book and audit log all in the
    database at ``db_url`` (a backtest passes ``mode="backtest"`` and a replay clock), with
    the alert outbox and approval gate of ``people`` (``deployment``: the config; ``approvals``:
    a policy overriding it). Its shadow is durable-rules in this process (tests set their
    own); ``alluse paper step`` gives it the child process of ``shadow_for``.

    Returns (cycle, broker, store). Nothing here can reach a live broker."""
    from adapters.brokers.paper import PaperBroker, PaperCosts
    from adapters.storage.audit_store import AuditStore, SqlDecisionLog
    from adapters.storage.database import resolve_url
    from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
    from constitution.load import bundled_path, load_constitution
    from engine.cycle.trading import TradingCycle

    store = SqlLedgerStore.open(db_url)
    broker = PaperBroker(market, costs=costs or PaperCosts(), store=SqlVenueStore(store.engine))
    broker.connect()
    audit = AuditStore(store.engine, clock or WallClock())
    from adapters.storage import audit_schema
    from adapters.storage.migrations import migrate

    migrate(store.engine, [audit_schema.COMPONENT])
    log, gate = people(
        SqlDecisionLog(audit, RunMode(mode)),
        audit.clock,
        deployment,
        approvals,
        resolve_url(db_url),
    )
    constitution = constitution or load_constitution(bundled_path())
    cycle = TradingCycle(
        constitution,
        market,
        broker,
        store,
        log,
        venue_sync=broker.sync,
        approvals=gate(constitution),
    )
    return cycle, broker, store
