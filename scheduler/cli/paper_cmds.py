"""``alluse paper step`` (one full paper cycle), ``alluse paper status`` (the paper ledger) and
``alluse paper resume`` (the SAFE -> ACTIVE resume sequence; ``--reset`` clears a latch)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from constitution.errors import InvalidInput, Problem

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from adapters.market_data.facts_market import FactsMarketData
    from adapters.market_data.files import BarMarketData
    from adapters.storage.audit_store import AuditStore
    from adapters.storage.ledger_store import SqlLedgerStore
    from adapters.storage.readers import MarkedPosition
    from engine.cycle.report import CycleReport
    from engine.cycle.trading import TradingCycle
    from engine.execution.ledger import LedgerState
    from engine.execution.resume import ResumeReport
    from engine.records.log import DecisionLog
    from scheduler.alerting import Deliverer
    from scheduler.cli import SubParsers

NY = ZoneInfo("America/New_York")


def register(sub: SubParsers) -> None:
    p = sub.add_parser("paper", help="paper trading: one cycle at a time against the paper broker")
    verbs = p.add_subparsers(dest="paper_verb", metavar="VERB")
    verbs.required = True

    s = verbs.add_parser(
        "step", help="one full cycle: facts -> decision -> audit -> orders -> fills -> ledger"
    )
    market = s.add_mutually_exclusive_group(required=True)
    market.add_argument(
        "--facts",
        metavar="FILE",
        help="market state from a facts file (the format `alluse evaluate` reads)",
    )
    market.add_argument(
        "--synthetic", type=int, metavar="SEED", help="seeded synthetic market data (needs --date)"
    )
    s.add_argument(
        "--date",
        type=date.fromisoformat,
        metavar="D",
        help="session date (YYYY-MM-DD); with --facts only when the file has no as_of",
    )
    s.add_argument("--time", metavar="HH:MM", help="New York time of the cycle (default 10:00)")
    s.add_argument(
        "--capital",
        type=float,
        default=1_000_000.0,
        help="capital of a new paper portfolio (first step only)",
    )
    s.add_argument(
        "--new-market",
        action="store_true",
        help="switch the paper ledger to this step's market source (a facts file vs a synthetic "
        "seed): every holding is repriced by it; recorded in the ledger",
    )
    s.add_argument(
        "--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)"
    )
    s.set_defaults(func=cmd_step)

    st = verbs.add_parser(
        "status", help="sleeves, positions, cash, levels and mode of the paper ledger"
    )
    st.add_argument(
        "--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)"
    )
    st.set_defaults(func=cmd_status)

    r = verbs.add_parser(
        "resume",
        help="the SAFE -> ACTIVE resume sequence; --reset clears a latched SAFE or kill switch",
    )
    r.add_argument(
        "--reset",
        action="store_true",
        help="clear a latched SAFE (L3) or kill switch: a human override, recorded in the audit log",
    )
    r.add_argument("--reason", metavar="TEXT", help="why (required with --reset; recorded)")
    r.add_argument(
        "--operator", metavar="NAME", help="who resets (default: the login name; recorded)"
    )
    r.add_argument(
        "--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)"
    )
    r.set_defaults(func=cmd_resume)


def _arg_problem(code: str, path: str, message: str) -> InvalidInput:
    return InvalidInput([Problem("<args>", 1, 1, code, path, message)])


def _time(args: argparse.Namespace) -> time | None:
    if args.time is None:
        return None
    try:
        return time.fromisoformat(args.time)
    except ValueError:
        raise _arg_problem("bad-time", "--time", f"expected HH:MM, got {args.time!r}") from None


def _market(args: argparse.Namespace) -> tuple[FactsMarketData | BarMarketData, datetime]:
    """(market-data port, cycle time) for ``--synthetic SEED --date D`` or ``--facts FILE``."""
    if args.facts is not None:
        from adapters.market_data.facts_market import FactsMarketData

        market = FactsMarketData.load(args.facts, day=args.date, at_time=_time(args))
        market.require_session()
        if market.facts.accounts:
            print(
                f"note: the accounts in {args.facts} are not used: the paper ledger is the portfolio"
            )
        return market, market.as_of
    from adapters.market_data.synthetic import EPOCH, synthetic_market

    if args.date is None:
        raise _arg_problem(
            "missing", "--date", "--synthetic needs --date D (the session of the cycle)"
        )
    if args.synthetic < 0:
        raise _arg_problem("range", "--synthetic", f"a seed is 0 or more, got {args.synthetic}")
    _session(args.date, EPOCH)
    return synthetic_market(args.synthetic, args.date), datetime.combine(
        args.date, _time(args) or time(10, 0), tzinfo=NY
    )


def _session(day: date, first: date) -> None:
    """``day`` is an NYSE session the synthetic market covers (as ``alluse data facts``)."""
    from engine.market import calendar

    if day < first:
        raise _arg_problem("range", "--date", f"the synthetic market starts on {first}")
    try:
        session = calendar.is_session(day)
    except calendar.CalendarRangeError as exc:
        raise _arg_problem("range", "--date", str(exc)) from None
    if not session:
        before, after = calendar.previous_session(day), calendar.next_session(day)
        raise _arg_problem(
            "not-a-session", "--date", f"{day} is not an NYSE session (try {before} or {after})"
        )


def _capital(args: argparse.Namespace) -> float:
    """A new portfolio's capital: positive, finite and within what the ledger can hold."""
    import math

    from engine.facts.model import MAX_CAPITAL

    x = args.capital
    if not math.isfinite(x) or x <= 0 or x > MAX_CAPITAL:
        raise _arg_problem(
            "range", "--capital", f"capital is a positive amount up to {MAX_CAPITAL:,.0f}, got {x}"
        )
    return x


def _source_of(args: argparse.Namespace) -> str:
    return f"synthetic seed {args.synthetic}" if args.facts is None else "a facts file"


def cmd_step(args: argparse.Namespace) -> int:
    from adapters.storage.database import resolve_url
    from scheduler.compose import writer_lease

    _capital(args)
    market, at = _market(args)  # a bad file or argument stops here, before the database is touched
    url = resolve_url(args.db)
    with writer_lease(url, say=_say):  # one writer: a second one exits 3 here, writing nothing
        return _step(args, url, market, at)


def _step(
    args: argparse.Namespace, url: str, market: FactsMarketData | BarMarketData, at: datetime
) -> int:
    from adapters.market_data.facts_market import FactsMarketData
    from engine.cycle.bootstrap import Portfolio, open_portfolio
    from engine.market.calendar import new_york_date
    from engine.records.audit import RunMode
    from scheduler.compose import close_shadow, open_paper_cycle, shadow_for

    alerts = _deliverer(url)  # an unset secret stops here, before the database is touched
    cycle, broker, store = open_paper_cycle(url, market)
    cycle.shadow = shadow_for(RunMode.PAPER)  # durable-rules in a child process (D200)
    try:
        if isinstance(
            market, FactsMarketData
        ):  # SPX hedges are priced from SPY, VIX ones from the VIX level
            held = {
                "SPY" if h.contract.symbol == "SPX" else h.contract.symbol
                for h in store.state.holdings.values()
            }
            market.require(held - {"VIX"}, "the paper ledger holds positions on them")
        _one_market(args, store, at)  # the last check: it records the source it accepts
        if not store.state.accounts:
            broker.sync(at, market.snapshot(at, cycle.symbols, cycle.params))
            open_portfolio(
                cycle, Portfolio(_capital(args), new_york_date(at)), at, broker.seed_position
            )
            print(f"opened a paper portfolio of ${args.capital:,.0f}: GEN/REV/COM 40/30/30")
        report = cycle.run(at)
        _print_step(report, cycle, store)
        if alerts is not None:  # delivered after the step; what fails is retried later
            from scheduler.alerting import summary

            print(summary(alerts.deliver()))
    finally:
        close_shadow(cycle.shadow)
        store.close()
        if alerts is not None:
            alerts.close()
    return 0


def _deliverer(url: str) -> Deliverer | None:
    from engine.clock import WallClock
    from scheduler.alerting import deliverer_for

    return deliverer_for(url, WallClock())


MARKET_SOURCE = "market-source"


def _one_market(args: argparse.Namespace, store: SqlLedgerStore, at: datetime) -> None:
    """A paper ledger stays on the market source it was opened with: another one would reprice
    every holding (a facts file after a synthetic run took AAPL from 228 to about 90 and
    showed a 39 % drawdown). Refused before anything is written, unless ``--new-market``;
    the source and every switch are kept in the ledger's operation log."""
    from engine.execution.ledger import Note

    notes = store.notes_of(MARKET_SOURCE)
    current = notes[-1]["source"] if notes else None
    source = _source_of(args)
    if current == source:
        return
    if current is not None and store.state.accounts and not args.new_market:
        raise _arg_problem(
            "market-source",
            "--facts" if args.facts is not None else "--synthetic",
            f"the paper ledger's market is {current}, this step's is {source}: its prices would "
            "reprice every holding; pass --new-market to switch (it is recorded)",
        )
    data = (("source", source), ("previous", current or ""))
    store.apply([Note(f"{MARKET_SOURCE}:{len(notes)}", MARKET_SOURCE, data)], at)


def _print_step(report: CycleReport, cycle: TradingCycle, store: SqlLedgerStore) -> None:
    if cycle.resumed is not None and cycle.resumed.differences:
        print(f"resumed: {len(cycle.resumed.differences)} difference(s) reconciled")
        _print_differences(cycle.resumed)
    print(
        f"cycle {report.at.isoformat()}  decision {report.decision_id}  constitution {report.constitution_version}"
    )
    print(
        f"market mode {report.market_mode}; levels {report.account_levels or '{}'}; "
        f"actions {report.action_counts or '{}'}"
    )
    orders = [o for o in store.state.orders.values() if o.request.decision_id == report.decision_id]
    for o in sorted(orders, key=lambda o: o.client_order_id):
        r = o.request
        price = f" @ {o.avg_fill_price:.2f}" if o.avg_fill_price is not None else ""
        print(
            f"  order {r.client_order_id}: {r.account} {r.side.value} {r.quantity} {r.contract.key} "
            f"{r.order_type} {r.limit_price or ''} -> {o.state.value} {o.filled}{price}"
        )
    plan = cycle.last_plan
    for rj in plan.rejections if plan else ():
        print(
            f"  not placed: action {rj.action_index} {rj.kind} {rj.account or ''} {rj.symbol or ''}: {rj.reason} ({rj.detail})"
        )
    print(
        f"orders {report.orders_submitted}, fills {report.fills}, rejections {report.rejections}, "
        f"events {[e.value for e in report.events]}"
    )
    for acct, eq in sorted(report.equity.items()):
        print(f"  {acct}: equity ${eq:,.2f}")


EMPTY_LEDGER = "the paper ledger is empty (run `alluse paper step` first)"


def no_ledger_yet(db: str | None) -> bool:
    """True (and says so) when ``db`` names a SQLite file that is not there: a command that
    reads the paper ledger must not leave an empty database behind, which the audit commands
    would then take for a log that is not ALL-USE's."""
    from adapters.storage.database import resolve_url, sqlite_file_missing

    missing = sqlite_file_missing(resolve_url(db))
    if missing is not None:
        print(f"{EMPTY_LEDGER}: no database at {missing} yet")
    return missing is not None


def cmd_status(args: argparse.Namespace) -> int:
    from adapters.storage.ledger_store import SqlLedgerStore
    from engine.execution.ledger import LEAP, TAX

    if no_ledger_yet(args.db):
        return 0
    store = SqlLedgerStore.open(args.db)
    s = store.state
    if not s.accounts:
        print(EMPTY_LEDGER)
        return 0
    print(
        f"mode {s.mode}{' (latched: needs a reset)' if s.latched else ''}{': ' + s.mode_reason if s.mode_reason else ''}"
    )
    _print_states(s)
    from adapters.storage.database import resolve_url
    from scheduler.cli.positions_view import marked_positions, position_lines

    marked = marked_positions(resolve_url(args.db))
    print(
        f"{'account':<8} {'kind':<5} {'equity':>14} {'cash':>14} {'tax reserve':>12} {'LEAP fund':>11} {'base':>14} {'high-water':>14} {'forks':>5} status"
    )
    for a in sorted(s.accounts.values(), key=lambda a: a.id):
        now = _equity_at_marks(s, a.id, marked)
        history = store.equity_history(a.id)
        last_mark = history[-1][1] / 100 if history else None
        shown = now if now is not None else last_mark
        equity = f"{shown:>14,.2f}" if shown is not None else f"{'n/a':>14}"
        print(
            f"{a.id:<8} {a.kind:<5} {equity} {s.balance(a.id) / 100:>14,.2f} {s.balance(a.id, TAX) / 100:>12,.2f} "
            f"{s.balance(a.id, LEAP) / 100:>11,.2f} {a.base_equity / 100:>14,.2f} {a.high_water_mark / 100:>14,.2f} "
            f"{a.forks:>5} {a.status}"
        )
    print("  equity: cash + LEAP fund + the positions below at their marks (the ledger's last mark")
    print(
        "  when a position has none); the ledger's own marks, which drawdowns use, follow the orders"
    )
    print("positions:")
    for line in position_lines(marked):
        print(line)
    working = s.open_orders()
    print(f"working orders: {len(working)}")
    for o in working:
        print(
            f"  {o.client_order_id} {o.request.side.value} {o.request.quantity} {o.request.contract.key} {o.state.value}"
        )
    for a in sorted(s.active_accounts(), key=lambda a: a.id):
        history = store.equity_history(a.id)
        if history:
            marked_at, marked_equity, hwm = history[-1]
            dd = 1 - marked_equity / hwm if hwm else 0.0
            print(
                f"  {a.id}: marked equity ${marked_equity / 100:,.2f} at {marked_at}, high-water ${hwm / 100:,.2f}, drawdown {dd:.1%}"
            )
    return 0


def _equity_at_marks(
    state: LedgerState, account: str, marked: Sequence[MarkedPosition]
) -> float | None:
    """The account's equity as the positions table shows it (ledger_view.equity_of's sum:
    cash + LEAP fund + holdings at their marks); None when a holding has no mark."""
    from engine.execution.ledger import CASH, LEAP

    values = [m.market_value for m in marked if m.position.account == account]
    if any(v is None for v in values):
        return None
    # every value is a float here (the None check above); mypy cannot narrow the list
    return (state.balance(account, CASH) + state.balance(account, LEAP)) / 100 + sum(values)  # type: ignore[arg-type]


def _print_states(s: LedgerState) -> None:
    """§9 state, account holds (L3, a user's pause) and §2 stress-test mode."""
    from engine.execution import states

    line = states.status(s)
    since = f" since {line.since}" if line.since else ""
    print(f"state {line.state.value}{since}{': ' + line.reason if line.reason else ''}")
    for acct, m in sorted(s.account_modes.items()):
        release = "until `alluse account resume`" if m.release == "operator" else "until its reset"
        print(f"  {acct} held {m.mode.upper()} since {m.since} ({m.reason}), {release}")
    stress = s.flags.get("stress_test")
    print(
        f"stress-test mode {'on since ' + str(stress.since) + ': ' + stress.reason if stress else 'off'}"
    )


# --------------------------------------------------------------------------- resume


def cmd_resume(args: argparse.Namespace) -> int:
    """The constitution's SAFE -> ACTIVE resume sequence on the paper ledger and venue:
    book unbooked fills, reconcile orders and positions (every difference noted), risk check,
    ACTIVE. ``--reset`` also clears a latched SAFE (L3) or kill switch; it is recorded in the
    audit log before (who, why, the mode it clears) and after (what it reconciled, the mode)."""
    reason = (args.reason or "").strip()
    if args.reset and not reason:
        raise _arg_problem(
            "missing",
            "--reason",
            "--reset needs --reason TEXT: a reset is a human override and is recorded",
        )
    if reason and not args.reset:
        raise _arg_problem("unused", "--reason", "--reason goes with --reset")
    from adapters.storage.database import resolve_url
    from adapters.storage.ledger_store import SqlLedgerStore
    from scheduler.compose import writer_lease

    url = resolve_url(args.db)
    if no_ledger_yet(url):
        return 0
    with writer_lease(url, say=_say):  # resume writes: one writer at a time
        store = SqlLedgerStore.open(url)
        try:
            if not store.state.accounts:
                print(
                    "the paper ledger is empty: nothing to resume (run `alluse paper step` first)"
                )
                return 0
            return _resume(args, store, reason)
        finally:
            store.close()


def _resume(args: argparse.Namespace, store: SqlLedgerStore, reason: str) -> int:
    from adapters.brokers.paper import PaperBroker
    from adapters.storage import audit_schema
    from adapters.storage.audit_store import AuditStore, SqlDecisionLog
    from adapters.storage.ledger_store import SqlVenueStore
    from adapters.storage.migrations import migrate
    from engine.clock import WallClock
    from engine.execution.resume import resume
    from engine.market.snapshot import MarketSnapshot
    from engine.records.audit import RunMode
    from scheduler.compose import paper_executor

    # the paper timeline's now: the venue is not moved, nothing trades (not None: the caller
    # checked the ledger has accounts, so it has operations)
    at: datetime = store.last_at()  # type: ignore[assignment]
    broker = PaperBroker(store=SqlVenueStore(store.engine))
    broker.sync(at, MarketSnapshot(as_of=at))
    migrate(store.engine, [audit_schema.COMPONENT])
    audit = AuditStore(store.engine, WallClock())
    log = SqlDecisionLog(audit, RunMode.PAPER)
    before = store.state
    print(f"mode {_mode(before)}")
    note = None
    if args.reset:
        anchor = _reset_anchor(store, audit)
        if anchor is None:
            return _refused(
                "the audit log has no decision to attach the reset to; a reset must be auditable"
            )
        note = {
            "event": "operator_reset",
            "operator": args.operator or _login(),
            "reason": reason,
            "ledger_at": at.isoformat(),
            "mode_before": before.mode,
            "latched_before": before.latched,
            "mode_reason_before": before.mode_reason,
            "mode_op": store.mode_op(),
        }
        _note(log, anchor, {**note, "phase": "requested"})
    who = f"{note['operator']}: {reason}" if note else ""
    report = resume(store, paper_executor(broker, log, store), at, reset=args.reset, reason=who)
    _print_resume(report, store.state)
    if note is not None and anchor is not None:
        _note(
            log,
            anchor,
            {
                **note,
                "phase": "refused" if report.problems else "done",
                "mode_after": report.mode_after,
                "latched_after": report.latched_after,
                "fills_booked": report.fills_booked,
                "differences": [
                    {"kind": d.kind, "ref": d.ref, "detail": d.detail} for d in report.differences
                ],
                "problems": list(report.problems),
            },
        )
        print(f"reset recorded in the audit log on decision {anchor}")
    if report.problems:
        return _refused(
            "the risk check failed: " + "; ".join(report.problems) + " (SAFE stays latched)"
        )
    if store.state.latched:
        print(
            f"still {store.state.mode} (latched): clearing it is a human override: "
            "`alluse paper resume --reset --reason TEXT`"
        )
    return 0


def _print_differences(report: ResumeReport) -> None:
    """What reconciliation found, and what it did about it."""
    for d in report.differences:
        did = f"; did: {d.did}" if d.did else ""
        print(f"  {d.kind}: {d.ref} found: {d.detail}{did}")


def _mode(state: LedgerState) -> str:
    return f"{state.mode}{' (latched)' if state.latched else ''}{': ' + state.mode_reason if state.mode_reason else ''}"


def _print_resume(report: ResumeReport, state: LedgerState) -> None:
    _print_differences(report)
    print(
        f"reconciled: {len(report.differences)} difference(s), {report.fills_booked} fill(s) booked"
    )
    print(f"mode {report.mode_before} -> {_mode(state)}")


def _say(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def _refused(message: str) -> int:
    import sys

    print(f"alluse: refused: {message}", file=sys.stderr)
    return 2


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _note(log: DecisionLog, decision_id: str, data: dict) -> None:
    from engine.records.audit import ExecutionLink

    log.link(ExecutionLink(decision_id=decision_id, kind="note", ref="operator-reset", data=data))


def _reset_anchor(store: SqlLedgerStore, audit: AuditStore) -> str | None:
    """The decision a reset is recorded on: the one whose plan latched the mode (its
    ``SetMode`` op is ``mode:DECISION_ID:ACTION``), else the latest paper decision."""
    from adapters.storage.audit_store import AuditQuery
    from engine.records.audit import RunMode

    op = store.mode_op() or ""
    parts = op.split(":")
    if len(parts) == 3 and parts[0] == "mode" and parts[1] != "resume":
        if any(r.record_type == "decision" for r in audit.for_decision(parts[1])):
            return parts[1]
    latest = audit.query(AuditQuery(mode=RunMode.PAPER, limit=1))
    return latest[-1].decision_id if latest else None
