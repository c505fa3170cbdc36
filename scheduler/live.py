"""The live pipeline: the same ``TradingCycle`` as paper and backtest, with Interactive Brokers
as the broker and the market data (docs/scheduler.md, "Live"; decision D25).

* Ledger, audit log (mode ``live``) and the scheduler's tables are in one database of their
  own: a database holding paper or backtest records is refused.
* No venue is simulated: IB owns orders and fills (no ``venue_sync``); the executor's
  cancel-replace ladder waits on the real clock between steps.
* **Opening (D25)**: an empty live ledger is opened from the broker's account - every mapped
  sub-account with the cash and the positions IB reports, nothing else. A ledger that is
  not empty is never re-opened; the resume sequence reconciles it with IB instead.
* **Accounts without an IB sub-account (D28)**: a ledger account with no ``--account`` mapping
  (a fork's new Mini) does not stop the daemon. The fork is bookkeeping between sleeves of the
  same money and proceeds; the executor refuses the account's orders (``no-broker-account``,
  recorded like every rejection) until it is mapped and the daemon restarted.
* A gateway that cannot be reached at start is an ``OperationalError`` (exit 3, a message, no
  traceback). A connection lost while running makes the cycle raise ``IBUnavailable`` (a
  ``RetryError``): the daemon records it and tries again at the next run, while the adapter
  reconnects and reconciles on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from adapters.storage.database import display_url
from constitution.errors import OperationalError
from constitution.load import LoadedConstitution
from engine.cycle.report import CycleReport
from engine.execution.broker import BrokerEvent, BrokerPosition, Fill, OrderSide
from engine.execution.ledger import (
    AccountKind,
    ApplyFill,
    Deposit,
    DepositShares,
    LedgerOp,
    OpenAccount,
    Purpose,
    cents,
    stock,
)
from engine.execution.resume import resume
from engine.market.calendar import new_york_date
from engine.market.instruments import SecType

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from adapters.ib.broker import IBBroker, IBConfig
    from adapters.ib.market_data import IBMarketData, IBMarketDataSettings
    from adapters.storage.audit_store import AuditStore, SqlDecisionLog
    from adapters.storage.ledger_store import SqlLedgerStore
    from engine.cycle.approval_gate import ApprovalGate
    from engine.cycle.trading import TradingCycle
    from engine.execution.ledger import LedgerState
    from scheduler.compose import AuditedLog, CycleContext

log = logging.getLogger("alluse.live")

LEAP_DAYS = 180  # a long equity option this far from expiry is a LEAP rung (LLMS), else a hedge
_KINDS: dict[str, AccountKind] = {"GEN": "gen", "REV": "rev", "COM": "com"}
OPENING_ORDER_ID = "opening"  # client order id of the ledger's opening positions


class LiveRefused(OperationalError):
    """The live pipeline will not start (exit 3): unreachable gateway, foreign records in the
    database, no cash reported."""


# --------------------------------------------------------------------------- opening (pure)


@dataclass(frozen=True)
class BrokerAccount:
    """What the broker reports for one ALL-USE sub-account at the opening."""

    account: str  # GEN, REV, COM, MINI-n
    cash: float
    positions: tuple[BrokerPosition, ...] = ()


def kind_of(account: str) -> AccountKind | None:
    """The kind of an ALL-USE sub-account id; None for any other id."""
    return _KINDS.get(account, "mini" if account.startswith("MINI-") else None)


def opening_purpose(p: BrokerPosition, today: date) -> Purpose:
    """What a position found at the broker is for: stock is stock; a short option is income;
    a long SPX/VIX option is a hedge; a long equity option ``LEAP_DAYS`` or more from expiry is
    a LEAP rung, a nearer one a hedge."""
    c = p.contract
    if c.sec_type is SecType.STOCK:
        return "stock"
    if p.quantity < 0:
        return "income"
    if (
        c.sec_type is SecType.OPTION
        and c.expiry is not None
        and (c.expiry - today).days >= LEAP_DAYS
    ):
        return "leap"
    return "hedge"


def opening_ops(accounts: Sequence[BrokerAccount], at: datetime) -> list[LedgerOp]:
    """Ledger operations that open ``accounts`` as the broker reports them at ``at``.

    Per account: ``OpenAccount``; shares as ``DepositShares`` at IB's average cost; options as
    fills (client order id ``opening``, execution id ``opening:ACCOUNT:KEY``) at IB's average
    premium; and one ``Deposit`` sized so that the ledger's cash equals IB's cash once the
    option fills are booked. The base equity is therefore the cost basis of what IB holds plus
    its cash; the first equity mark moves the high-water mark to market value."""
    day = new_york_date(at)
    names = sorted(a.account for a in accounts)
    ops: list[LedgerOp] = []
    for a in sorted(accounts, key=lambda a: (a.account not in _KINDS, a.account)):
        kind = kind_of(a.account)
        if not kind:
            raise LiveRefused(f"{a.account} is not an ALL-USE sub-account (GEN, REV, COM, MINI-n)")
        parent = "GEN" if kind == "mini" and "GEN" in names else None
        ops.append(OpenAccount(f"open:{a.account}", a.account, kind, day, parent=parent))
        fills = []
        for p in a.positions:
            if p.contract.sec_type is SecType.STOCK or not p.quantity:
                continue
            fills.append(
                ApplyFill(
                    f"opening:{a.account}:{p.contract.key}",
                    _opening_fill(a.account, p, at),
                    purpose=opening_purpose(p, day),
                )
            )
        premium = sum(_cash_flow(f.fill) for f in fills)
        ops.append(Deposit(f"deposit:{a.account}", a.account, cents(a.cash) - premium))
        ops += [
            DepositShares(
                f"opening:{a.account}:{p.contract.key}",
                a.account,
                stock(p.contract.symbol),
                p.quantity,
                p.avg_cost,
            )
            for p in a.positions
            if p.contract.sec_type is SecType.STOCK and p.quantity
        ]
        ops += fills
    return ops


def _opening_fill(account: str, p: BrokerPosition, at: datetime) -> Fill:
    return Fill(
        client_order_id=OPENING_ORDER_ID,
        broker_order_id="",
        execution_id=f"opening:{account}:{p.contract.key}",
        account=account,
        contract=p.contract,
        side=OrderSide.BUY if p.quantity > 0 else OrderSide.SELL,
        quantity=abs(p.quantity),
        price=p.avg_cost,
        commission=0.0,
        at=at,
    )


def _cash_flow(f: Fill) -> int:
    """Cents the ledger books into the account for ``f`` (as ``engine.execution.ledger`` computes it)."""
    value = cents(f.price * f.quantity * f.contract.multiplier)
    return value if f.side is OrderSide.SELL else -value


# --------------------------------------------------------------------------- the cycle


class LiveCycle:
    """``TradingCycle`` on IB, opened from the broker and guarded against a lost connection."""

    def __init__(
        self, cycle: TradingCycle, broker: IBBroker, open_ledger: Callable[[datetime], bool]
    ) -> None:
        self.cycle = cycle
        self.broker = broker
        self._open_ledger = open_ledger

    def resume(self, at: datetime) -> dict:
        """§9 broker state and reconcile, before the scheduler starts (``Runner.resume``)."""
        self._require_connection()
        self._open_ledger(at)
        with _connection_guard(at):
            report = resume(self.cycle.store, self.cycle.executor, at)
        self.cycle.resumed = report
        kinds: dict[str, int] = {}
        for d in report.differences:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        return {
            "differences": kinds,
            "fills_booked": report.fills_booked,
            "mode": report.mode_after,
        }

    def run(self, at: datetime) -> CycleReport:
        self._require_connection()
        self._open_ledger(at)
        with _connection_guard(at):
            return self.cycle.run(at)

    def period_books(self, at: datetime) -> dict:
        """The quarter's books for the quarterly report (``TradingCycle.period_books``)."""
        self._require_connection()
        with _connection_guard(at):
            return self.cycle.period_books(at)

    def _require_connection(self) -> None:
        from adapters.ib.broker import IBUnavailable

        if not self.broker.is_connected():
            raise IBUnavailable(
                "not connected to TWS/IB Gateway (the adapter keeps reconnecting); "
                "no decision without market data and broker state"
            )


@contextmanager
def _connection_guard(at: datetime) -> Iterator[None]:
    """The IB client raises ``ConnectionError`` for a request on a dropped socket: the same
    transient failure as ``IBUnavailable``, so the daemon retries instead of stopping."""
    from adapters.ib.broker import IBUnavailable

    try:
        yield
    except IBUnavailable:
        raise
    except (ConnectionError, TimeoutError) as exc:
        raise IBUnavailable(
            f"connection to IB lost during the cycle at {at.isoformat()}: "
            f"{exc or type(exc).__name__}"
        ) from exc


# --------------------------------------------------------------------------- wiring


class LiveCycleBuilder:
    """The ``CycleBuilder`` for live: connects on first use (after the constitution has been
    validated), then shares broker, market data, ledger and log across constitution swaps."""

    def __init__(
        self, ctx: CycleContext, config: IBConfig, settings: IBMarketDataSettings | None = None
    ) -> None:
        from scheduler.compose import shadow_for

        self.ctx = ctx
        self.config = config
        self.settings = settings
        self._parts: tuple[IBBroker, IBMarketData, SqlLedgerStore, AuditedLog] | None = None
        self._gate: Callable[[LoadedConstitution], ApprovalGate] | None = (
            None  # constitution -> ApprovalGate, once connected (compose.people)
        )
        # durable-rules in a child process (D200); it starts at the first decision
        self.shadow = shadow_for(ctx.mode)

    def __call__(self, constitution: LoadedConstitution) -> LiveCycle:
        from engine.cycle.trading import TradingCycle

        broker, market, store, decisions = self._connect()
        cycle = TradingCycle(
            constitution,
            market,
            broker,
            store,
            decisions,
            wait=time.sleep,
            shadow=self.shadow,
            approvals=self._gate(constitution) if self._gate is not None else None,
        )
        return LiveCycle(cycle, broker, lambda at: open_from_broker(store, broker, at))

    def _connect(self) -> tuple[IBBroker, IBMarketData, SqlLedgerStore, AuditedLog]:
        if self._parts is None:
            from scheduler.compose import people

            decisions: AuditedLog  # people's: alerting around the SQL log
            broker, market, store, decisions = connect_live(self.ctx, self.config, self.settings)
            decisions, self._gate = people(
                decisions, self.ctx.clock, self.ctx.deployment, self.ctx.approvals, self.ctx.db_url
            )
            self._parts = (broker, market, store, decisions)
        return self._parts

    def close(self) -> None:
        from scheduler.compose import close_shadow

        close_shadow(self.shadow)
        if self._parts is not None:
            broker, _market, store, decisions = self._parts
            self._parts = None
            broker.close()
            decisions.close()
            store.close()


def connect_live(
    ctx: CycleContext, config: IBConfig, settings: IBMarketDataSettings | None = None
) -> tuple[IBBroker, IBMarketData, SqlLedgerStore, SqlDecisionLog]:
    """(broker, market data, ledger store, decision log) for ``ctx``; ``LiveRefused`` (exit 3)
    when the database is not a live one or the gateway cannot be reached."""
    from adapters.ib.broker import IBBroker, IBSession, IBUnavailable
    from adapters.ib.market_data import IBMarketData
    from adapters.storage.audit_store import open_decision_log
    from adapters.storage.ledger_store import SqlLedgerStore

    store = SqlLedgerStore.open(ctx.db_url)
    # the IB account codes never enter the log: masked by value wherever a broker value has one
    decisions = open_decision_log(
        ctx.db_url, ctx.mode, ctx.clock, secrets=tuple(config.accounts.values())
    )
    try:
        refuse_foreign_records(store, decisions.store, ctx.db_url)
        session = IBSession(config, ctx.clock)
        try:
            broker = IBBroker(config, ctx.clock, session=session)
            with _quiet_client():  # a refused connection is reported once, below, in our words
                broker.connect()
            market = IBMarketData(config, ctx.clock, session=session, settings=settings)
            market.connect()
        except IBUnavailable as exc:
            session.close()
            raise LiveRefused(
                f"live trading cannot start: {exc}; is TWS/IB Gateway running, logged in, "
                "with the API enabled on that port?"
            ) from None
        except BaseException:
            session.close()
            raise
        for account in unrouted_accounts(store.state, broker):
            log.warning(
                "%s has no broker sub-account: its orders are refused (no-broker-account) until it is "
                "mapped; map it with --account %s=CODE and restart (D28)",
                account,
                account,
            )
    except BaseException:
        decisions.close()
        store.close()
        raise
    broker.subscribe(_log_event)
    log.info(
        "connected to IB %s:%s (accounts %s)", config.host, config.port, ", ".join(session.accounts)
    )
    return broker, market, store, decisions


@contextmanager
def _quiet_client() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("ib_async.client", "ib_insync.client")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def unrouted_accounts(state: LedgerState, broker: IBBroker) -> list[str]:
    """Open ledger accounts the broker cannot route an order for (D28): a fork's new Mini or
    ALL-USE before its IB sub-account is mapped. They are not refused at start: the executor
    refuses their orders (a ``no-broker-account`` rejection in the audit log) and trades the rest."""
    return sorted(
        a.id for a in state.accounts.values() if a.status != "merged" and not broker.routes(a.id)
    )


def refuse_foreign_records(store: SqlLedgerStore, audit: AuditStore, url: str) -> None:
    """A live ledger never shares a database with paper or backtest records: their invented
    positions would be taken for the broker's."""
    from adapters.storage.audit_store import AuditQuery
    from adapters.storage.ledger_store import SqlVenueStore
    from engine.records.audit import RunMode

    found = [
        m.value
        for m in (RunMode.PAPER, RunMode.BACKTEST)
        if audit.query(AuditQuery(mode=m, limit=1))
    ]
    if SqlVenueStore(store.engine).load() is not None:
        found.append("a paper venue book")
    if found:
        raise LiveRefused(
            f"database {display_url(url)} holds {' and '.join(found)} records; live trading needs a database "
            "of its own (--db FILE)"
        )


def open_from_broker(store: SqlLedgerStore, broker: IBBroker, at: datetime) -> bool:
    """D25: open an empty live ledger from IB's cash and positions (nothing is invented).
    Returns whether it opened; a ledger with accounts is left to the resume sequence."""
    if store.state.accounts:
        return False
    accounts = broker_accounts(broker)
    ops = opening_ops(accounts, at)
    store.apply(ops, at)
    log.info(
        "live ledger opened from IB: %s",
        "; ".join(
            f"{a.account} cash {a.cash:,.2f}, {len(a.positions)} position(s)" for a in accounts
        ),
    )
    return True


def broker_accounts(broker: IBBroker) -> list[BrokerAccount]:
    mapped = sorted(broker.accounts.codes)
    cash = broker.cash_balances()
    missing = [a for a in mapped if a not in cash]
    if missing:
        raise LiveRefused(
            f"IB reported no cash (TotalCashValue) for {', '.join(missing)}; the live ledger "
            "is opened from the broker's account and will not guess it"
        )
    held: dict[str, list[BrokerPosition]] = {a: [] for a in mapped}
    for p in broker.positions():
        if p.account in held:
            held[p.account].append(p)
    return [BrokerAccount(a, cash[a], tuple(held[a])) for a in mapped]


def _log_event(event: BrokerEvent) -> None:
    if event.kind in ("disconnected", "reconnected", "error"):
        (log.warning if event.kind != "reconnected" else log.info)(
            "IB %s: %s", event.kind, event.message
        )


def parse_address(text: str | None) -> tuple[str, int] | None:
    """``HOST:PORT`` -> (host, port); None when it is not one."""
    host, sep, port = (text or "").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def accounts_from(pairs: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``SUB=CODE`` pairs -> mapping, and a message per bad pair."""
    out, bad = {}, []
    for pair in pairs:
        sub, sep, code = pair.partition("=")
        sub, code = sub.strip().upper(), code.strip()
        if not sep or not code or not kind_of(sub):
            bad.append(f"expected SUB=CODE with SUB one of GEN, REV, COM, MINI-n, got {pair!r}")
        elif sub in out:
            bad.append(f"{sub} is mapped twice")
        else:
            out[sub] = code
    if len(set(out.values())) != len(out):
        bad.append("two sub-accounts map to the same IB account code")
    return out, bad
