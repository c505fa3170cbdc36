"""The composition root: the one place that picks concrete adapters for the engine's ports.

Paper is the default everywhere; nothing here reaches a real broker without an explicit,
separate choice (``--live`` in ``alluse run``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import import_module
from typing import Any

from adapters.storage.audit_store import open_decision_log
from constitution.errors import InvalidInput, OperationalError, Problem
from constitution.load import LoadedConstitution
from engine.audit import Mode, Receipt
from engine.clock import Clock, WallClock
from engine.cycle import Cycle
from engine.decision import Decision


def record_decision(decision: Decision, constitution: LoadedConstitution, mode: str, db_url: str | None) -> Receipt:
    """Append ``decision`` to the audit log (with the constitution's text, stored once per digest)."""
    log = open_decision_log(db_url, Mode(mode), WallClock())
    return log.record(decision, constitution.text)


# --------------------------------------------------------------------------- scheduler wiring
# (issue 7) ``alluse run`` and ``alluse backtest`` get their pipeline cycle from here: the same
# cycle on the wall clock and on the replay clock; only the clock and the data differ.


@dataclass(frozen=True)
class CycleContext:
    """What a cycle factory is told: where to record, in which mode, on which clock, and which
    market data (``data_dir`` of daily bars, or a ``synthetic_seed``)."""

    db_url: str
    mode: Mode
    clock: Clock
    data_dir: str | None = None
    synthetic_seed: int | None = None
    until: date | None = None  # last day market data is needed for (synthetic history)


class CycleNotAvailable(OperationalError):
    """The pipeline cycle this command needs is not in this build (exit 3)."""


CycleBuilder = Callable[[LoadedConstitution], Cycle]


def paper_cycle_factory(ctx: CycleContext) -> CycleBuilder:
    """The paper pipeline (``scheduler.paper_cycle.TradingCycle``): paper broker, ledger, venue
    book and audit log in ``ctx.db_url``, market data from ``ctx``. Market, broker, ledger and
    log are built once and shared by every constitution the scheduler swaps in; each
    constitution gets its own ``TradingCycle``. The three sleeves are opened (idempotently) at
    the first cycle."""
    from adapters.brokers.paper import PaperBroker, PaperCosts
    from adapters.storage.audit_store import open_decision_log
    from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
    from engine.calendar import new_york_date
    from scheduler.paper_cycle import Portfolio, TradingCycle, open_portfolio

    market = paper_market(ctx)
    store = SqlLedgerStore.open(ctx.db_url)
    broker = PaperBroker(market, costs=PaperCosts(), store=SqlVenueStore(store.engine))
    broker.connect()
    log = open_decision_log(ctx.db_url, ctx.mode, ctx.clock)

    def build(constitution: LoadedConstitution) -> Cycle:
        cycle = TradingCycle(constitution, market, broker, store, log, venue_sync=broker.sync)
        return _OpeningCycle(cycle, lambda at: open_portfolio(cycle, Portfolio(opened=new_york_date(at)), at, broker.seed_position))

    return build


class _OpeningCycle:
    """Opens the portfolio before the first cycle (a no-op once the ledger has the sleeves)."""

    def __init__(self, cycle: Cycle, open_at: Callable):
        self.cycle, self._open_at, self._opened = cycle, open_at, False

    def run(self, at):
        if not self._opened:
            self._open_at(at)
            self._opened = True
        return self.cycle.run(at)


def paper_market(ctx: CycleContext):
    """Daily bars from ``ctx.data_dir`` (``alluse data import``), else seeded synthetic data
    through ``ctx.until`` (default: a year past the clock's today)."""
    from datetime import timedelta

    from adapters.market_data.files import FileMarketData, load_store
    from adapters.market_data.synthetic import synthetic_market

    if ctx.data_dir:
        symbols = set(load_store(ctx.data_dir))
        index = "SPY" if "SPY" in symbols or "SPX" not in symbols else "SPX"
        return FileMarketData(ctx.data_dir, index_symbol=index)
    until = ctx.until or (ctx.clock.now().date() + timedelta(days=365))
    return synthetic_market(ctx.synthetic_seed if ctx.synthetic_seed is not None else 1, until)


def live_cycle_factory(ctx: CycleContext, ib_address: str, accounts: Mapping[str, str] | None = None, *,
                       client_id: int = 1, ib_settings: Mapping[str, Any] | None = None,
                       market_settings: Mapping[str, Any] | None = None) -> CycleBuilder:
    """The live pipeline (``scheduler.live``): the paper pipeline's ``TradingCycle`` with
    ``IBBroker`` and ``IBMarketData`` sharing one connection to the gateway at ``ib_address``
    (``HOST:PORT``), ledger and audit log in ``ctx.db_url`` (mode live), no venue sync.
    ``accounts`` maps ALL-USE sub-accounts to IB account codes (``{"GEN": "U123"...}``).

    Nothing connects here: the returned builder connects when the daemon first builds a cycle
    (after the constitution is validated); it has ``close()`` for the daemon's shutdown. An
    empty live ledger is opened from IB's cash and positions (D25). Invalid arguments raise
    ``InvalidInput`` (exit 2); an unreachable gateway at start ``LiveRefused`` (exit 3)."""
    from pydantic import ValidationError

    from adapters.brokers.ib import IBConfig
    from adapters.market_data.ib import IBMarketDataSettings
    from scheduler import live

    address = live.parse_address(ib_address)
    if address is None:
        raise _bad_argument("--ib", "bad-address", f"expected HOST:PORT, got {ib_address!r}")
    if not accounts:
        raise _bad_argument("--account", "no-accounts", "live trading needs the sub-account mapping: "
                            "--account GEN=CODE --account REV=CODE --account COM=CODE (IB account codes)")
    try:
        config = IBConfig(host=address[0], port=address[1], client_id=client_id, live=True, accounts=dict(accounts),
                          **dict(ib_settings or {}))
        settings = IBMarketDataSettings(**dict(market_settings or {}))
    except ValidationError as exc:
        raise _bad_argument("--ib", "bad-ib-config", "; ".join(e["msg"] for e in exc.errors())) from None
    return live.LiveCycleBuilder(ctx, config, settings)


def _bad_argument(option: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(option, 1, 1, code, "", message)], what="arguments")


def named_cycle_factory(target: str, ctx: CycleContext) -> CycleBuilder:
    """``module:function`` called as ``function(constitution, ctx)``: demos and the daemon's
    subprocess tests plug in a cycle this way (``alluse run --cycle-factory``)."""
    module_name, _, attr = target.partition(":")
    build = getattr(import_module(module_name), attr)
    return lambda constitution: build(constitution, ctx)


# --------------------------------------------------------------------------- paper trading


def open_paper_cycle(db_url: str | None, market, *, mode: str = "paper", clock=None, costs=None):
    """A ``TradingCycle`` on the paper broker: ledger, venue book and audit log all in the
    database at ``db_url`` (a backtest passes ``mode="backtest"`` and a replay clock).

    Returns (cycle, broker, store). Nothing here can reach a live broker."""
    from adapters.brokers.paper import PaperBroker, PaperCosts
    from adapters.storage.audit_store import AuditStore, SqlDecisionLog
    from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
    from constitution.load import bundled_path, load_constitution
    from scheduler.paper_cycle import TradingCycle

    store = SqlLedgerStore.open(db_url)
    broker = PaperBroker(market, costs=costs or PaperCosts(), store=SqlVenueStore(store.engine))
    broker.connect()
    audit = AuditStore(store.engine, clock or WallClock())
    from adapters.storage import audit_schema
    from adapters.storage.migrations import migrate

    migrate(store.engine, [audit_schema.COMPONENT])
    log = SqlDecisionLog(audit, Mode(mode))
    constitution = load_constitution(bundled_path())
    cycle = TradingCycle(constitution, market, broker, store, log, venue_sync=broker.sync)
    return cycle, broker, store
