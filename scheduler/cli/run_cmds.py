"""``alluse run`` (the daemon) and ``alluse backtest`` (the same runtime over history)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.storage.database import display_url, resolve_url
from constitution.errors import InvalidInput, Problem
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock, WallClock
from engine.market import calendar
from engine.records.audit import RunMode
from scheduler import compose

if TYPE_CHECKING:
    from constitution.load import LoadedConstitution
    from scheduler.backtest import BacktestSummary
    from scheduler.cli import SubParsers
    from scheduler.coverage import Coverage
    from scheduler.daemon import StartupSummary
    from scheduler.reports.figures import BookFigures


def register(subparsers: SubParsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="the scheduler daemon: evaluate at the constitution's cadence (paper by default)",
    )
    side = run.add_mutually_exclusive_group()
    side.add_argument("--paper", action="store_true", help="paper broker (the default)")
    side.add_argument(
        "--live", action="store_true", help="real money: also needs a configured broker (--ib)"
    )
    run.add_argument("--ib", metavar="HOST:PORT", help="the Interactive Brokers gateway for --live")
    run.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SUB=CODE",
        help="with --live: ALL-USE sub-account -> IB account code, e.g. GEN=U1234567 (repeatable)",
    )
    run.add_argument(
        "--client-id",
        type=int,
        default=1,
        metavar="N",
        help="with --live: the IB API client id (1)",
    )
    _common(run)
    run.add_argument(
        "--misfire-grace",
        type=int,
        default=60,
        metavar="SECONDS",
        help="run a missed evaluation this late at most (60)",
    )
    run.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="demo/test schedule: evaluate every N seconds around the clock instead of the constitution's cadence (paper only)",
    )
    run.add_argument(
        "--unapproved",
        action="store_true",
        help="paper only: run a constitution version no person has approved (alluse propose)",
    )
    run.set_defaults(func=cmd_run)

    bt = subparsers.add_parser(
        "backtest", help="replay history through the same scheduler and pipeline; print a summary"
    )
    bt.add_argument("--from", dest="first", required=True, type=_date, metavar="YYYY-MM-DD")
    bt.add_argument("--to", dest="last", required=True, type=_date, metavar="YYYY-MM-DD")
    _common(bt)
    bt.add_argument("--no-progress", action="store_true", help="no progress bar")
    bt.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write the run's tearsheet (one self-contained HTML file; needs alluse[reports])",
    )
    bt.add_argument(
        "--shadow",
        action="store_true",
        help="decide every decision with durable-rules too (slower); a disagreement is recorded",
    )
    bt.add_argument(
        "--one-process",
        action="store_true",
        help="make the option chains in this process too (by default a second core makes them"
        " ahead; the records are the same either way)",
    )
    bt.add_argument(
        "--require-data",
        action="store_true",
        help="refuse to start unless every sleeve ticker and VIX has bars for the whole range",
    )
    bt.set_defaults(func=cmd_backtest)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--constitution",
        type=Path,
        default=None,
        metavar="FILE",
        help="constitution file (default: the bundled v1.3)",
    )
    p.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="DIR", help="daily bars imported with alluse data import")
    data.add_argument(
        "--synthetic",
        type=_seed,
        metavar="SEED",
        help="seeded synthetic market data (no files needed)",
    )
    p.add_argument(
        "--cycle-factory", metavar="NAME", help=argparse.SUPPRESS
    )  # a name from compose.CYCLE_FACTORIES (tests register theirs in-process), never code
    p.add_argument(
        "--config",
        metavar="FILE",
        help="deployment config: alert routing, approval policies (default: alluse.yaml beside the db)",
    )
    p.add_argument(
        "--approvals",
        metavar="POLICY",
        help="who answers approval requests when not live: person, auto-approve, auto-deny, "
        "approve-after:MINUTES (default: the deployment config's, else auto-approve)",
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"a seed is 0 or more, got {seed}")
    return seed


def _history_range(args: argparse.Namespace) -> None:
    """--from/--to inside the calendar (and the synthetic market's history): a located
    exit 2, never a traceback."""
    from adapters.market_data.synthetic import EPOCH

    first = EPOCH if args.synthetic is not None else calendar.CALENDAR_FIRST
    for option, day in (("--from", args.first), ("--to", args.last)):
        if not first <= day <= calendar.CALENDAR_LAST:
            what = "the synthetic market" if args.synthetic is not None else "the NYSE calendar"
            raise _bad(
                option,
                "range",
                f"{day} is outside {what} ({first}..{calendar.CALENDAR_LAST})",
            )


def _bad(option: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(option, 1, 1, code, "", message)], what="arguments")


def _check_factory(args: argparse.Namespace) -> None:
    """An unknown ``--cycle-factory`` name is refused before anything is opened."""
    name = getattr(args, "cycle_factory", None)
    if name and name not in compose.CYCLE_FACTORIES:
        known = ", ".join(sorted(compose.CYCLE_FACTORIES))
        raise _bad(
            "--cycle-factory", "unknown-factory", f"no cycle factory {name!r} (known: {known})"
        )


def _people(args: argparse.Namespace, url: str, ctx: compose.CycleContext) -> compose.CycleContext:
    """The deployment config and the approval policy of this run, in its cycle context."""
    from dataclasses import replace

    from engine.execution.approvals import parse_policy
    from scheduler.alerting import deployment_for

    policy = None
    if args.approvals:
        try:
            policy = parse_policy(args.approvals)
        except ValueError as exc:
            raise _bad("--approvals", "bad-policy", str(exc)) from None
    return replace(ctx, deployment=deployment_for(url, args.config), approvals=policy)


def _factory(args: argparse.Namespace, ctx: compose.CycleContext) -> compose.CycleBuilder:
    if args.cycle_factory:
        return compose.named_cycle_factory(args.cycle_factory, ctx)
    if getattr(args, "live", False):
        from scheduler.live import accounts_from

        return compose.live_cycle_factory(
            ctx, args.ib, accounts_from(args.account)[0], client_id=args.client_id
        )
    return compose.paper_cycle_factory(ctx)


def _check_live_arguments(args: argparse.Namespace) -> None:
    """Every problem with the live choice at once, before anything connects (exit 2)."""
    problems = _live_problems(args) if args.live else _paper_problems(args)
    if problems:
        raise InvalidInput(problems, what="arguments")


def _argument_problem(option: str, code: str, message: str) -> Problem:
    return Problem(option, 1, 1, code, "", message)


def _paper_problems(args: argparse.Namespace) -> list[Problem]:
    return [
        _argument_problem(
            option,
            "live-only",
            f"{option} configures the live broker; it needs --live (paper is the default)",
        )
        for option, given in (("--ib", args.ib), ("--account", args.account))
        if given
    ]


def _live_problems(args: argparse.Namespace) -> list[Problem]:
    return _broker_problems(args) + _paper_option_problems(args)


def _broker_problems(args: argparse.Namespace) -> list[Problem]:
    from scheduler.live import accounts_from, parse_address

    out = []
    if not args.ib:
        out.append(
            _argument_problem(
                "--live",
                "no-broker",
                "live trading needs a configured broker: --live --ib HOST:PORT",
            )
        )
    elif parse_address(args.ib) is None:
        out.append(_argument_problem("--ib", "bad-address", f"expected HOST:PORT, got {args.ib!r}"))
    mapping, wrong = accounts_from(args.account)
    out += [_argument_problem("--account", "bad-account", message) for message in wrong]
    if not mapping and not wrong:
        out.append(
            _argument_problem(
                "--account",
                "no-accounts",
                "live trading needs the sub-account mapping: --account GEN=CODE "
                "--account REV=CODE --account COM=CODE (IB account codes)",
            )
        )
    return out


def _paper_option_problems(args: argparse.Namespace) -> list[Problem]:
    """Options that only make sense on paper, given to a live run."""
    out = []
    if args.every:
        out.append(_argument_problem("--every", "live", "the demo/test schedule is paper only"))
    if args.approvals and args.approvals.strip() != "person":
        out.append(
            _argument_problem(
                "--approvals", "live", "a live run asks a person; policies are for paper"
            )
        )
    if args.unapproved:
        out.append(
            _argument_problem(
                "--unapproved", "live", "a live run loads only an approved constitution"
            )
        )
    for option, given in (("--data", args.data), ("--synthetic", args.synthetic)):
        if given is not None:
            out.append(
                _argument_problem(
                    option, "live", f"live market data comes from IB; {option} is for paper"
                )
            )
    return out


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from scheduler.daemon import Daemon, DaemonConfig

    _check_live_arguments(args)
    _check_factory(args)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.live:  # the client library's chatter; its warnings and errors stay in the log
        for name in ("ib_async", "ib_insync"):
            logging.getLogger(name).setLevel(logging.WARNING)
    mode = RunMode.LIVE if args.live else RunMode.PAPER
    constitution = args.constitution or bundled_path()
    load_constitution(constitution)  # an invalid file is refused before anything is opened
    url = resolve_url(args.db)
    clock = WallClock()
    ctx = compose.CycleContext(
        db_url=url, mode=mode, clock=clock, data_dir=args.data, synthetic_seed=args.synthetic
    )
    ctx = _people(args, url, ctx)
    config = DaemonConfig(
        constitution=constitution,
        db_url=url,
        mode=mode,
        misfire_grace_seconds=args.misfire_grace,
        every=args.every,
        deployment=ctx.deployment,
        allow_unapproved=args.unapproved,
    )
    with compose.writer_lease(url, say=_say):  # one daemon per database; a second exits 3
        daemon = Daemon(config, _factory(args, ctx), clock)
        return daemon.serve(on_started=_print_summary)


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _print_summary(summary: StartupSummary) -> None:
    out = Console(highlight=False)
    out.print(
        f"[bold]alluse run[/bold] - {summary.mode}, constitution {summary.constitution_version} "
        f"({summary.constitution_digest[:19]}...) from {summary.constitution_source}"
    )
    out.print(f"database {display_url(summary.db_url)}; schedule: {summary.schedule}")
    levels = ", ".join(
        f"L{i} {s or 'real time'}{'s' if s else ''}" for i, s in enumerate(summary.level_seconds)
    )
    out.print(f"monitoring every {summary.monitor_seconds}s now ({levels})")
    out.print("resume: " + " -> ".join(summary.resume.steps))
    table = Table("next (New York)", "event", title="constitution events")
    at: datetime | None  # an event's time, then a job's next run (None: none)
    for at, kinds in summary.next_events:
        table.add_row(f"{at:%a %Y-%m-%d %H:%M}", ", ".join(kinds))
    out.print(table)
    for job, at in sorted(summary.next_runs.items()):
        out.print(
            f"job {job}: next run {at:%a %Y-%m-%d %H:%M:%S %Z}" if at else f"job {job}: no next run"
        )
    sys.stdout.flush()


# --------------------------------------------------------------------------- backtest


def cmd_backtest(args: argparse.Namespace) -> int:
    if args.db is None:
        raise _bad(
            "--db",
            "required",
            "a backtest writes to its own database: pass --db FILE (e.g. --db backtest.db)",
        )
    if args.data is None and args.synthetic is None:
        raise _bad("--data", "no-data", "choose the market data: --data DIR or --synthetic SEED")
    _history_range(args)
    report = _report_path(args.report)
    _check_factory(args)
    constitution = load_constitution(args.constitution or bundled_path())
    url = resolve_url(args.db)
    start = FixedClock(datetime.combine(args.first, time(0), tzinfo=calendar.NEW_YORK))
    # only the deployment and the approvals are read from it: the replay has its own clock
    people = _people(
        args, url, compose.CycleContext(db_url=url, mode=RunMode.BACKTEST, clock=start)
    )
    covered = _coverage(args, constitution, url)
    sessions = len(calendar.sessions_between(args.first, args.last))
    with compose.writer_lease(url, say=_say):
        summary = _replay(args, constitution, url, sessions, people, covered)
    _print_backtest(summary)
    if report is not None:  # the tearsheet only reads the run's database: no lease needed
        from scheduler.reports.tearsheet import write_tearsheet

        write_tearsheet(url, report)
        print(f"tearsheet -> {report}")
    return 1 if summary.disagreements else 0


def _replay(
    args: argparse.Namespace,
    constitution: LoadedConstitution,
    url: str,
    sessions: int,
    people: compose.CycleContext,
    covered: Coverage | None = None,
) -> BacktestSummary:
    from dataclasses import replace

    from scheduler.backtest import run_backtest

    with Progress(
        TextColumn("backtest {task.fields[day]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=args.no_progress,
    ) as progress:
        task = progress.add_task("sessions", total=sessions, day="")
        summary = run_backtest(
            constitution,
            args.first,
            args.last,
            url,
            lambda ctx: _factory(
                args, replace(ctx, deployment=people.deployment, approvals=people.approvals)
            ),
            data_dir=args.data,
            synthetic_seed=args.synthetic,
            on_session=lambda d: progress.update(task, advance=1, day=d.isoformat()),
            shadow=args.shadow,
            coverage=covered,
            chain_feed=False if args.one_process else None,
        )
    return summary


def _coverage(
    args: argparse.Namespace, constitution: LoadedConstitution, url: str
) -> Coverage | None:
    """What the data let the backtest trade, printed before it starts (scheduler.coverage)."""
    from engine.clock import FixedClock
    from scheduler.cadence import NEW_YORK
    from scheduler.coverage import coverage_of, require_data

    if args.cycle_factory:
        return None  # a plugged-in cycle brings its own market
    ctx = compose.CycleContext(
        db_url=url,
        mode=RunMode.BACKTEST,
        clock=FixedClock(datetime.combine(args.first, time(0), tzinfo=NEW_YORK)),
        data_dir=args.data,
        synthetic_seed=args.synthetic,
        until=args.last,
    )
    covered = coverage_of(constitution.model, compose.paper_market(ctx), args.first, args.last)
    for line in covered.lines():
        print(line)
    sys.stdout.flush()
    if args.require_data:
        require_data(covered, args.data or f"--synthetic {args.synthetic}")
    return covered


def _report_path(text: str | None) -> str | None:
    """Checked before the run, so a mistake does not cost a whole backtest."""
    if text is None:
        return None
    if not text.lower().endswith((".html", ".htm")):
        raise _bad("--report", "extension", f"{text!r}: the tearsheet is HTML, name it FILE.html")
    from importlib.util import find_spec

    if find_spec("plotly") is None or find_spec("empyrical") is None:
        raise _bad("--report", "missing-extra", "the tearsheet needs pip install 'alluse[reports]'")
    return text


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _print_backtest(s: BacktestSummary) -> None:
    out = Console(highlight=False)
    t = Table(
        title=f"backtest {s.first} .. {s.last} (constitution {s.constitution_version})",
        show_header=False,
    )
    t.add_row(
        "sessions / cycles",
        f"{s.sessions} / {s.cycles} ({s.decided} decided, the rest unchanged; {s.run} run)",
    )
    if s.shadow:
        t.add_row("evaluators", f"compiled + durable-rules: {s.disagreements} disagreements")
    t.add_row("equity", f"{s.start_equity:,.2f} -> {s.end_equity:,.2f}")
    t.add_row("CAGR", _pct(s.cagr))
    for acct, dd in s.max_drawdown.items():
        t.add_row(f"max drawdown {acct}", _pct(dd))
    t.add_row(
        "weeks / positive",
        f"{s.weeks} / "
        + ("n/a" if s.positive_weeks_pct is None else f"{s.positive_weeks_pct:.1f} %"),
    )
    t.add_row("forks / merges (executed)", f"{s.forks} / {s.merges}")
    for mode in ("hedged", "safe", "kill"):
        days = s.mode_days[mode]
        shown = ", ".join(d.isoformat() for d in days[:5]) + (" ..." if len(days) > 5 else "")
        t.add_row(f"{mode} days", f"{len(days)}" + (f" ({shown})" if days else ""))
    if s.book is None:
        t.add_row("orders placed / fills / rejections", f"{s.trades} / {s.fills} / {s.rejections}")
    else:
        _book_rows(t, s.book, s.rejections)
    t.add_row("week types", ", ".join(f"{k} {v}" for k, v in s.week_types.items()) or "none")
    not_traded = s.coverage.not_traded() if s.coverage is not None else {}
    for sleeve, tickers in not_traded.items():
        t.add_row(f"{sleeve} sleeve", f"not traded: no data for {', '.join(tickers)}")
    t.add_row("audit log", f"{display_url(s.db_url)} (alluse audit verify --db ...)")
    out.print(t)
    if s.book is not None:
        out.print(_sleeve_table(s.book))


def _book_rows(t: Table, book: BookFigures, rejections: int) -> None:
    t.add_row("orders placed / filled", f"{book.orders_placed} / {book.orders_filled}")
    t.add_row(
        "fills by origin",
        ", ".join(f"{k} {v}" for k, v in book.fills_by_origin.items()) or "none",
    )
    t.add_row("trades closed", f"{book.trades_closed}")
    if book.fork_actions:
        t.add_row(
            "fork actions in decisions",
            ", ".join(f"{k} {v}" for k, v in sorted(book.fork_actions.items()))
            + (
                f" (not placed: {book.rejections_by_kind['fork_account']})"
                if "fork_account" in book.rejections_by_kind
                else ""
            ),
        )
    reasons = ", ".join(f"{k} {v}" for k, v in list(book.rejections.items())[:4])
    t.add_row(
        "actions not placed (rejections)", f"{rejections}" + (f" ({reasons})" if reasons else "")
    )
    kinds = ", ".join(f"{k} {v}" for k, v in list(book.rejections_by_kind.items())[:4])
    if kinds:
        t.add_row("not placed, by action", kinds)


def _sleeve_table(book: BookFigures) -> Table:
    t = Table("sleeve", "P&L", "premium collected", "trades closed", "win rate", title="per sleeve")
    for name, f in book.sleeves.items():
        t.add_row(
            name,
            f"{f.pnl:,.2f}",
            f"{f.premium:,.2f}",
            str(f.trades_closed),
            _pct(f.win_rate),
        )
    return t
