"""``alluse paper step`` (one full paper cycle), ``alluse paper status`` (the paper ledger) and
``alluse paper resume`` (the SAFE -> ACTIVE resume sequence; ``--reset`` clears a latch)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from constitution.errors import InvalidInput, Problem

NY = ZoneInfo("America/New_York")


def register(sub) -> None:
    p = sub.add_parser("paper", help="paper trading: one cycle at a time against the paper broker")
    verbs = p.add_subparsers(dest="paper_verb", metavar="VERB")
    verbs.required = True

    s = verbs.add_parser("step", help="one full cycle: facts -> decision -> audit -> orders -> fills -> ledger")
    market = s.add_mutually_exclusive_group(required=True)
    market.add_argument("--facts", metavar="FILE", help="market state from a facts file (the format `alluse evaluate` reads)")
    market.add_argument("--synthetic", type=int, metavar="SEED", help="seeded synthetic market data (needs --date)")
    s.add_argument("--date", type=date.fromisoformat, metavar="D",
                   help="session date (YYYY-MM-DD); with --facts only when the file has no as_of")
    s.add_argument("--time", metavar="HH:MM", help="New York time of the cycle (default 10:00)")
    s.add_argument("--capital", type=float, default=1_000_000.0, help="capital of a new paper portfolio (first step only)")
    s.add_argument("--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)")
    s.set_defaults(func=cmd_step)

    st = verbs.add_parser("status", help="sleeves, positions, cash, levels and mode of the paper ledger")
    st.add_argument("--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)")
    st.set_defaults(func=cmd_status)

    r = verbs.add_parser("resume", help="the SAFE -> ACTIVE resume sequence; --reset clears a latched SAFE or kill switch")
    r.add_argument("--reset", action="store_true",
                   help="clear a latched SAFE (L3) or kill switch: a human override, recorded in the audit log")
    r.add_argument("--reason", metavar="TEXT", help="why (required with --reset; recorded)")
    r.add_argument("--operator", metavar="NAME", help="who resets (default: the login name; recorded)")
    r.add_argument("--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)")
    r.set_defaults(func=cmd_resume)


def _arg_problem(code: str, path: str, message: str) -> InvalidInput:
    return InvalidInput([Problem("<args>", 1, 1, code, path, message)])


def _time(args) -> time | None:
    if args.time is None:
        return None
    try:
        return time.fromisoformat(args.time)
    except ValueError:
        raise _arg_problem("bad-time", "--time", f"expected HH:MM, got {args.time!r}") from None


def _market(args):
    """(market-data port, cycle time) for ``--synthetic SEED --date D`` or ``--facts FILE``."""
    if args.facts is not None:
        from adapters.market_data.facts_market import FactsMarketData

        market = FactsMarketData.load(args.facts, day=args.date, at_time=_time(args))
        if market.facts.accounts:
            print(f"note: the accounts in {args.facts} are not used: the paper ledger is the portfolio")
        return market, market.as_of
    from adapters.market_data.synthetic import synthetic_market

    if args.date is None:
        raise _arg_problem("missing", "--date", "--synthetic needs --date D (the session of the cycle)")
    return synthetic_market(args.synthetic, args.date), datetime.combine(args.date, _time(args) or time(10, 0), tzinfo=NY)


def cmd_step(args) -> int:
    from adapters.market_data.facts_market import FactsMarketData
    from engine.calendar import new_york_date
    from scheduler.compose import open_paper_cycle
    from scheduler.paper_cycle import Portfolio, open_portfolio

    market, at = _market(args)  # a bad file or argument stops here, before the database is touched
    cycle, broker, store = open_paper_cycle(args.db, market)
    try:
        if isinstance(market, FactsMarketData):  # SPX hedges are priced from SPY, VIX ones from the VIX level
            held = {"SPY" if h.contract.symbol == "SPX" else h.contract.symbol for h in store.state.holdings.values()}
            market.require(held - {"VIX"}, "the paper ledger holds positions on them")
        if not store.state.accounts:
            broker.sync(at, market.snapshot(at, cycle.symbols))
            open_portfolio(cycle, Portfolio(args.capital, new_york_date(at)), at, broker.seed_position)
            print(f"opened a paper portfolio of ${args.capital:,.0f}: GEN/REV/COM 40/30/30")
        report = cycle.run(at)
        _print_step(report, cycle, store)
    finally:
        store.close()
    return 0


def _print_step(report, cycle, store) -> None:
    print(f"cycle {report.at.isoformat()}  decision {report.decision_id}  constitution {report.constitution_version}")
    print(f"market mode {report.market_mode}; levels {report.account_levels or '{}'}; "
          f"actions {report.action_counts or '{}'}")
    orders = [o for o in store.state.orders.values() if o.request.decision_id == report.decision_id]
    for o in sorted(orders, key=lambda o: o.client_order_id):
        r = o.request
        price = f" @ {o.avg_fill_price:.2f}" if o.avg_fill_price is not None else ""
        print(f"  order {r.client_order_id}: {r.account} {r.side.value} {r.quantity} {r.contract.key} "
              f"{r.order_type} {r.limit_price or ''} -> {o.state.value} {o.filled}{price}")
    plan = cycle.last_plan
    for rj in plan.rejections if plan else ():
        print(f"  not placed: action {rj.action_index} {rj.kind} {rj.account or ''} {rj.symbol or ''}: {rj.reason} ({rj.detail})")
    print(f"orders {report.orders_submitted}, fills {report.fills}, rejections {report.rejections}, "
          f"events {[e.value for e in report.events]}")
    for acct, eq in sorted(report.equity.items()):
        print(f"  {acct}: equity ${eq:,.2f}")


def cmd_status(args) -> int:
    from adapters.storage.ledger_store import SqlLedgerStore
    from engine.ledger import LEAP, TAX

    store = SqlLedgerStore.open(args.db)
    s = store.state
    if not s.accounts:
        print("the paper ledger is empty (run `alluse paper step` first)")
        return 0
    print(f"mode {s.mode}{' (latched: needs a reset)' if s.latched else ''}{': ' + s.mode_reason if s.mode_reason else ''}")
    print(f"{'account':<8} {'kind':<5} {'cash':>14} {'tax reserve':>12} {'LEAP fund':>11} {'base':>14} {'high-water':>14} {'forks':>5} status")
    for a in sorted(s.accounts.values(), key=lambda a: a.id):
        print(f"{a.id:<8} {a.kind:<5} {s.balance(a.id) / 100:>14,.2f} {s.balance(a.id, TAX) / 100:>12,.2f} "
              f"{s.balance(a.id, LEAP) / 100:>11,.2f} {a.base_equity / 100:>14,.2f} {a.high_water_mark / 100:>14,.2f} "
              f"{a.forks:>5} {a.status}")
    print("positions:")
    for h in sorted(s.holdings.values(), key=lambda h: (h.account, h.key)):
        print(f"  {h.account:<8} {h.key:<28} {h.quantity:>7} @ {h.avg_price:.2f} ({h.purpose})")
    working = s.open_orders()
    print(f"working orders: {len(working)}")
    for o in working:
        print(f"  {o.client_order_id} {o.request.side.value} {o.request.quantity} {o.request.contract.key} {o.state.value}")
    for a in sorted(s.active_accounts(), key=lambda a: a.id):
        history = store.equity_history(a.id)
        if history:
            at, equity, hwm = history[-1]
            dd = 1 - equity / hwm if hwm else 0.0
            print(f"  {a.id}: equity ${equity / 100:,.2f} at {at}, high-water ${hwm / 100:,.2f}, drawdown {dd:.1%}")
    return 0


# --------------------------------------------------------------------------- resume


def cmd_resume(args) -> int:
    """The constitution's SAFE -> ACTIVE resume sequence on the paper ledger and venue:
    book unbooked fills, reconcile orders and positions (every difference noted), risk check,
    ACTIVE. ``--reset`` also clears a latched SAFE (L3) or kill switch; it is recorded in the
    audit log before (who, why, the mode it clears) and after (what it reconciled, the mode)."""
    reason = (args.reason or "").strip()
    if args.reset and not reason:
        raise _arg_problem("missing", "--reason", "--reset needs --reason TEXT: a reset is a human override and is recorded")
    if reason and not args.reset:
        raise _arg_problem("unused", "--reason", "--reason goes with --reset")
    from adapters.storage.ledger_store import SqlLedgerStore

    store = SqlLedgerStore.open(args.db)
    try:
        if not store.state.accounts:
            print("the paper ledger is empty: nothing to resume (run `alluse paper step` first)")
            return 0
        return _resume(args, store, reason)
    finally:
        store.close()


def _resume(args, store, reason: str) -> int:
    from adapters.brokers.paper import PaperBroker
    from adapters.storage import audit_schema
    from adapters.storage.audit_store import AuditStore, SqlDecisionLog
    from adapters.storage.ledger_store import SqlVenueStore
    from adapters.storage.migrations import migrate
    from engine.audit import Mode
    from engine.clock import WallClock
    from engine.execution import Executor
    from engine.market import MarketSnapshot
    from engine.resume import resume

    at = store.last_at()  # the paper timeline's now: the venue is not moved, nothing trades
    broker = PaperBroker(store=SqlVenueStore(store.engine))
    broker.sync(at, MarketSnapshot(as_of=at))
    migrate(store.engine, [audit_schema.COMPONENT])
    audit = AuditStore(store.engine, WallClock())
    log = SqlDecisionLog(audit, Mode.PAPER)
    before = store.state
    print(f"mode {_mode(before)}")
    note = None
    if args.reset:
        anchor = _reset_anchor(store, audit)
        if anchor is None:
            return _refused("the audit log has no decision to attach the reset to; a reset must be auditable")
        note = {"event": "operator_reset", "operator": args.operator or _login(), "reason": reason,
                "ledger_at": at.isoformat(), "mode_before": before.mode, "latched_before": before.latched,
                "mode_reason_before": before.mode_reason, "mode_op": store.mode_op()}
        _note(log, anchor, {**note, "phase": "requested"})
    who = f"{note['operator']}: {reason}" if note else ""
    report = resume(store, Executor(broker, log, store), at, reset=args.reset, reason=who)
    _print_resume(report, store.state)
    if note is not None:
        _note(log, anchor, {**note, "phase": "refused" if report.problems else "done", "mode_after": report.mode_after,
                            "latched_after": report.latched_after, "fills_booked": report.fills_booked,
                            "differences": [{"kind": d.kind, "ref": d.ref, "detail": d.detail} for d in report.differences],
                            "problems": list(report.problems)})
        print(f"reset recorded in the audit log on decision {anchor}")
    if report.problems:
        return _refused("the risk check failed: " + "; ".join(report.problems) + " (SAFE stays latched)")
    if store.state.latched:
        print(f"still {store.state.mode} (latched): clearing it is a human override: "
              "`alluse paper resume --reset --reason TEXT`")
    return 0


def _mode(state) -> str:
    return f"{state.mode}{' (latched)' if state.latched else ''}{': ' + state.mode_reason if state.mode_reason else ''}"


def _print_resume(report, state) -> None:
    for d in report.differences:
        print(f"  {d.kind}: {d.ref} {d.detail}")
    print(f"reconciled: {len(report.differences)} difference(s), {report.fills_booked} fill(s) booked")
    print(f"mode {report.mode_before} -> {_mode(state)}")


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


def _note(log, decision_id: str, data: dict) -> None:
    from engine.audit import ExecutionLink

    log.link(ExecutionLink(decision_id=decision_id, kind="note", ref="operator-reset", data=data))


def _reset_anchor(store, audit) -> str | None:
    """The decision a reset is recorded on: the one whose plan latched the mode (its
    ``SetMode`` op is ``mode:DECISION_ID:ACTION``), else the latest paper decision."""
    from adapters.storage.audit_store import AuditQuery
    from engine.audit import Mode

    op = store.mode_op() or ""
    parts = op.split(":")
    if len(parts) == 3 and parts[0] == "mode" and parts[1] != "resume":
        if any(r.record_type == "decision" for r in audit.for_decision(parts[1])):
            return parts[1]
    latest = audit.query(AuditQuery(mode=Mode.PAPER, limit=1))
    return latest[-1].decision_id if latest else None
