"""``alluse run`` (the daemon) and ``alluse backtest`` (the same runtime over history)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.storage.database import resolve_url
from constitution.errors import InvalidInput, Problem
from constitution.load import bundled_path, load_constitution
from engine import calendar
from engine.audit import Mode
from engine.clock import WallClock
from scheduler import compose


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="the scheduler daemon: evaluate at the constitution's cadence (paper by default)")
    side = run.add_mutually_exclusive_group()
    side.add_argument("--paper", action="store_true", help="paper broker (the default)")
    side.add_argument("--live", action="store_true", help="real money: also needs a configured broker (--ib)")
    run.add_argument("--ib", metavar="HOST:PORT", help="the Interactive Brokers gateway for --live")
    run.add_argument("--account", action="append", default=[], metavar="SUB=CODE",
                     help="with --live: ALL-USE sub-account -> IB account code, e.g. GEN=U1234567 (repeatable)")
    run.add_argument("--client-id", type=int, default=1, metavar="N", help="with --live: the IB API client id (1)")
    _common(run)
    run.add_argument("--misfire-grace", type=int, default=60, metavar="SECONDS", help="run a missed evaluation this late at most (60)")
    run.add_argument("--every", type=float, metavar="SECONDS",
                     help="demo/test schedule: evaluate every N seconds around the clock instead of the constitution's cadence (paper only)")
    run.set_defaults(func=cmd_run)

    bt = subparsers.add_parser("backtest", help="replay history through the same scheduler and pipeline; print a summary")
    bt.add_argument("--from", dest="first", required=True, type=_date, metavar="YYYY-MM-DD")
    bt.add_argument("--to", dest="last", required=True, type=_date, metavar="YYYY-MM-DD")
    _common(bt)
    bt.add_argument("--no-progress", action="store_true", help="no progress bar")
    bt.set_defaults(func=cmd_backtest)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--constitution", type=Path, default=None, metavar="FILE", help="constitution file (default: the bundled v1.3)")
    p.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="DIR", help="daily bars imported with alluse data import")
    data.add_argument("--synthetic", type=int, metavar="SEED", help="seeded synthetic market data (no files needed)")
    p.add_argument("--cycle-factory", metavar="MODULE:FUNCTION", help=argparse.SUPPRESS)  # tests and demos


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _bad(option: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(option, 1, 1, code, "", message)], what="arguments")


def _factory(args, ctx: compose.CycleContext) -> compose.CycleBuilder:
    if args.cycle_factory:
        return compose.named_cycle_factory(args.cycle_factory, ctx)
    if getattr(args, "live", False):
        from scheduler.live import accounts_from

        return compose.live_cycle_factory(ctx, args.ib, accounts_from(args.account)[0], client_id=args.client_id)
    return compose.paper_cycle_factory(ctx)


def _check_live_arguments(args) -> None:
    """Every problem with the live choice at once, before anything connects (exit 2)."""
    from scheduler.live import accounts_from, parse_address

    problems = []

    def bad(option: str, code: str, message: str) -> None:
        problems.append(Problem(option, 1, 1, code, "", message))

    if not args.live:
        for option, given in (("--ib", args.ib), ("--account", args.account)):
            if given:
                bad(option, "live-only", f"{option} configures the live broker; it needs --live (paper is the default)")
    else:
        if not args.ib:
            bad("--live", "no-broker", "live trading needs a configured broker: --live --ib HOST:PORT")
        elif parse_address(args.ib) is None:
            bad("--ib", "bad-address", f"expected HOST:PORT, got {args.ib!r}")
        mapping, wrong = accounts_from(args.account)
        for message in wrong:
            bad("--account", "bad-account", message)
        if not mapping and not wrong:
            bad("--account", "no-accounts", "live trading needs the sub-account mapping: --account GEN=CODE "
                "--account REV=CODE --account COM=CODE (IB account codes)")
        if args.every:
            bad("--every", "live", "the demo/test schedule is paper only")
        for option, given in (("--data", args.data), ("--synthetic", args.synthetic)):
            if given is not None:
                bad(option, "live", f"live market data comes from IB; {option} is for paper")
    if problems:
        raise InvalidInput(problems, what="arguments")


# --------------------------------------------------------------------------- run


def cmd_run(args) -> int:
    from scheduler.daemon import Daemon, DaemonConfig

    _check_live_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.live:  # the client library's chatter; its warnings and errors stay in the log
        for name in ("ib_async", "ib_insync"):
            logging.getLogger(name).setLevel(logging.WARNING)
    mode = Mode.LIVE if args.live else Mode.PAPER
    url = resolve_url(args.db)
    clock = WallClock()
    ctx = compose.CycleContext(db_url=url, mode=mode, clock=clock, data_dir=args.data, synthetic_seed=args.synthetic)
    config = DaemonConfig(constitution=args.constitution or bundled_path(), db_url=url, mode=mode,
                          misfire_grace_seconds=args.misfire_grace, every=args.every)
    daemon = Daemon(config, _factory(args, ctx), clock)
    return daemon.serve(on_started=_print_summary)


def _print_summary(summary) -> None:
    out = Console(highlight=False)
    out.print(f"[bold]alluse run[/bold] - {summary.mode}, constitution {summary.constitution_version} "
              f"({summary.constitution_digest[:19]}...) from {summary.constitution_source}")
    out.print(f"database {summary.db_url}; schedule: {summary.schedule}")
    levels = ", ".join(f"L{i} {s or 'real time'}{'s' if s else ''}" for i, s in enumerate(summary.level_seconds))
    out.print(f"monitoring every {summary.monitor_seconds}s now ({levels})")
    out.print("resume: " + " -> ".join(summary.resume.steps))
    table = Table("next (New York)", "event", title="constitution events")
    for at, kinds in summary.next_events:
        table.add_row(f"{at:%a %Y-%m-%d %H:%M}", ", ".join(kinds))
    out.print(table)
    for job, at in sorted(summary.next_runs.items()):
        out.print(f"job {job}: next run {at:%a %Y-%m-%d %H:%M:%S %Z}" if at else f"job {job}: no next run")
    sys.stdout.flush()


# --------------------------------------------------------------------------- backtest


def cmd_backtest(args) -> int:
    from scheduler.backtest import run_backtest

    if args.db is None:
        raise _bad("--db", "required", "a backtest writes to its own database: pass --db FILE (e.g. --db backtest.db)")
    if args.data is None and args.synthetic is None:
        raise _bad("--data", "no-data", "choose the market data: --data DIR or --synthetic SEED")
    constitution = load_constitution(args.constitution or bundled_path())
    url = resolve_url(args.db)
    sessions = len(calendar.sessions_between(args.first, args.last))
    with Progress(TextColumn("backtest {task.fields[day]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True, disable=args.no_progress) as progress:
        task = progress.add_task("sessions", total=sessions, day="")
        summary = run_backtest(
            constitution, args.first, args.last, url,
            lambda ctx: _factory(args, ctx), data_dir=args.data, synthetic_seed=args.synthetic,
            on_session=lambda d: progress.update(task, advance=1, day=d.isoformat()),
        )
    _print_backtest(summary)
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _print_backtest(s) -> None:
    out = Console(highlight=False)
    t = Table(title=f"backtest {s.first} .. {s.last} (constitution {s.constitution_version})", show_header=False)
    t.add_row("sessions / cycles", f"{s.sessions} / {s.cycles} ({s.decided} decided, the rest unchanged)")
    t.add_row("equity", f"{s.start_equity:,.2f} -> {s.end_equity:,.2f}")
    t.add_row("CAGR", _pct(s.cagr))
    for acct, dd in s.max_drawdown.items():
        t.add_row(f"max drawdown {acct}", _pct(dd))
    t.add_row("weeks / positive", f"{s.weeks} / " + ("n/a" if s.positive_weeks_pct is None else f"{s.positive_weeks_pct:.1f} %"))
    t.add_row("forks / merges", f"{s.forks} / {s.merges}")
    for mode in ("hedged", "safe", "kill"):
        days = s.mode_days[mode]
        shown = ", ".join(d.isoformat() for d in days[:5]) + (" ..." if len(days) > 5 else "")
        t.add_row(f"{mode} days", f"{len(days)}" + (f" ({shown})" if days else ""))
    t.add_row("trades / fills / rejections", f"{s.trades} / {s.fills} / {s.rejections}")
    t.add_row("week types", ", ".join(f"{k} {v}" for k, v in s.week_types.items()) or "none")
    t.add_row("audit log", f"{s.db_url} (alluse audit verify --db ...)")
    out.print(t)
