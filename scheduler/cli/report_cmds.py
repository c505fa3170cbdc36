"""``alluse report weekly|monthly|quarterly --db URL``: the §11 reports the scheduler stored.

Each report is a ``note`` link in the audit log (``event``: ``weekly_report``,
``monthly_report``, ``quarterly_report``) written at its cut; this prints them as text
(``scheduler.reports.periodic.render``) or as the stored JSON (``--json``). Readers never create a
database: a ``--db`` that does not exist is an error (exit 3).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from adapters.storage.database import ENV_VAR


def register(sub: Any) -> None:
    from scheduler.cli import report_html_cmds

    p = sub.add_parser(
        "report", help="reports: weekly, monthly, quarterly (§11); backtest, compare"
    )
    verbs = p.add_subparsers(dest="report_verb", metavar="REPORT", parser_class=type(p))
    verbs.required = True
    for kind, text in (
        ("weekly", "the weekly reports: trades, forks, income, week type"),
        ("monthly", "the monthly reports: CAGR YTD, drawdown, Sharpe/Sortino"),
        ("quarterly", "the quarterly reports: tax ledger, reinvestments, hedges, LEAP ladder"),
    ):
        r = verbs.add_parser(kind, help=text)
        r.add_argument(
            "--db",
            metavar="URL",
            help=f"database URL or SQLite path (default: ${ENV_VAR} or the per-user data file)",
        )
        r.add_argument(
            "--period",
            metavar="P",
            help="only this period: a week's Monday (2024-03-25), a month (2024-03), a quarter (2024Q1)",
        )
        r.add_argument("--last", type=int, metavar="N", help="only the N most recent")
        r.add_argument("--json", action="store_true", help="the stored report bodies as JSON lines")
        r.set_defaults(func=cmd_report, kind=kind)
    report_html_cmds.add_verbs(verbs)


_PERIOD_KEY = {"weekly": "week_start", "monthly": "month", "quarterly": "quarter"}


def _period(kind: str, body: dict) -> str:
    return str(body[_PERIOD_KEY[kind]])


def stored_reports(db: str | None, kind: str) -> list[dict]:
    """The stored reports of ``kind``, oldest first; a period reported twice (a restart) keeps
    its latest."""
    from adapters.storage.audit_store import AuditQuery, AuditStore
    from engine.clock import WallClock

    store = AuditStore.open(db, WallClock(), create=False)
    try:
        event = f"{kind}_report"
        found: dict[str, dict] = {}
        for r in store.iter_records(AuditQuery(record_type=None, limit=None)):
            data = r.link.data if r.link is not None and r.link.kind == "note" else None
            if isinstance(data, dict) and data.get("event") == event:
                body = {k: v for k, v in data.items() if k != "event"}
                found[_period(kind, body)] = body
    finally:
        store.close()
    return [found[k] for k in sorted(found)]


def cmd_report(args: argparse.Namespace) -> int:
    from scheduler.reports.periodic import render

    reports = stored_reports(args.db, args.kind)
    if args.period:
        reports = [b for b in reports if _period(args.kind, b) == args.period]
    if args.last:
        reports = reports[-args.last :]
    if not reports:
        print(f"no {args.kind} report stored" + (f" for {args.period}" if args.period else ""))
        return 0
    for body in reports:
        print(json.dumps(body, sort_keys=True) if args.json else render(args.kind, body))
    return 0
