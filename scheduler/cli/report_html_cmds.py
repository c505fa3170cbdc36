"""``alluse report backtest --db X --html FILE`` (the tearsheet of a run) and ``alluse report
compare A.db B.db --html FILE`` (two runs side by side).

``add_verbs(verbs)`` adds both to an existing ``report`` sub-command (the weekly, monthly and
quarterly reports register theirs beside them); ``register`` makes the ``report`` verb when
this module is the only one that has report verbs.
"""

from __future__ import annotations

import argparse
import sys

from constitution.errors import InvalidInput, Problem


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="reports: a backtest's HTML tearsheet, two runs compared"
    )
    verbs = report.add_subparsers(dest="report_verb", metavar="REPORT", parser_class=type(report))
    verbs.required = True
    add_verbs(verbs)


def add_verbs(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("backtest", help="a backtest's tearsheet: one self-contained HTML file")
    p.add_argument("--db", required=True, metavar="URL", help="the backtest's database")
    p.add_argument("--html", required=True, metavar="FILE", help="write the tearsheet here")
    p.set_defaults(func=cmd_backtest_report)

    c = verbs.add_parser("compare", help="two runs side by side (HTML)")
    c.add_argument("db_a", metavar="A", help="the first run's database (URL or SQLite path)")
    c.add_argument("db_b", metavar="B", help="the second run's database")
    c.add_argument("--html", required=True, metavar="FILE", help="write the comparison here")
    c.add_argument(
        "--labels", nargs=2, metavar=("LABEL_A", "LABEL_B"), help="names of the runs on the page"
    )
    c.set_defaults(func=cmd_compare)


def _html_path(text: str) -> str:
    if not text.lower().endswith((".html", ".htm")):
        raise InvalidInput(
            [
                Problem(
                    "--html",
                    1,
                    1,
                    "extension",
                    "",
                    f"{text!r}: the report is HTML, name it FILE.html",
                )
            ],
            what="arguments",
        )
    return text


def cmd_backtest_report(args: argparse.Namespace) -> int:
    from scheduler.reports.tearsheet import write_tearsheet

    path = _html_path(args.html)
    ts = write_tearsheet(args.db, path)
    print(f"tearsheet {ts.first} .. {ts.last} ({ts.timeline.decisions} decisions) -> {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from scheduler.reports.compare import compare_report
    from scheduler.reports.tearsheet import write_html

    path = _html_path(args.html)
    write_html(
        path, compare_report(args.db_a, args.db_b, tuple(args.labels) if args.labels else None)
    )
    print(f"comparison -> {path}", file=sys.stdout)
    return 0
