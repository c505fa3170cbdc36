"""``alluse paper step`` (one full paper cycle) and ``alluse paper status`` (the paper ledger)."""

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
    s.add_argument("--date", required=True, type=date.fromisoformat, metavar="D", help="session date (YYYY-MM-DD)")
    s.add_argument("--time", default="10:00", metavar="HH:MM", help="New York time of the cycle (default 10:00)")
    s.add_argument("--synthetic", type=int, required=True, metavar="SEED", help="seeded synthetic market data")
    s.add_argument("--capital", type=float, default=1_000_000.0, help="capital of a new paper portfolio (first step only)")
    s.add_argument("--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)")
    s.set_defaults(func=cmd_step)

    st = verbs.add_parser("status", help="sleeves, positions, cash, levels and mode of the paper ledger")
    st.add_argument("--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)")
    st.set_defaults(func=cmd_status)


def _at(args) -> datetime:
    try:
        t = time.fromisoformat(args.time)
    except ValueError:
        raise InvalidInput([Problem("<args>", 1, 1, "bad-time", "--time", f"expected HH:MM, got {args.time!r}")]) from None
    return datetime.combine(args.date, t, tzinfo=NY)


def cmd_step(args) -> int:
    from adapters.market_data.synthetic import synthetic_market
    from scheduler.compose import open_paper_cycle
    from scheduler.paper_cycle import Portfolio, open_portfolio

    at = _at(args)
    market = synthetic_market(args.synthetic, args.date)
    cycle, broker, store = open_paper_cycle(args.db, market)
    if not store.state.accounts:
        broker.sync(at, market.snapshot(at, cycle.symbols))
        open_portfolio(cycle, Portfolio(args.capital, args.date), at, broker.seed_position)
        print(f"opened a paper portfolio of ${args.capital:,.0f}: GEN/REV/COM 40/30/30")
    report = cycle.run(at)
    _print_step(report, cycle, store)
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
