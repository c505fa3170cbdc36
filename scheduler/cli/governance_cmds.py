"""``alluse propose`` and ``alluse constitution approve | history`` (§15, docs/operations.md).

``propose`` exits 0 when the proposal passes its gate, 2 when it fails (the verdict and the
report are recorded either way)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from scheduler.cli import SubParsers
    from scheduler.governance import VersionHistory


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "propose", help="a new constitution version: diff, A/B backtest, the governance gate"
    )
    p.add_argument("new", metavar="NEW.yaml", help="the proposed constitution file")
    p.add_argument(
        "--against", metavar="CURRENT", help="the version in force (default: the bundled v1.3)"
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", metavar="DIR", help="daily bars imported with alluse data import")
    data.add_argument("--synthetic", type=int, metavar="SEED", help="seeded synthetic history")
    p.add_argument("--from", dest="first", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="last", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="where the backtests and report go "
        "(default: ./proposal-VERSION)",
    )  # fmt: skip
    p.add_argument("--db", metavar="URL", help="where the proposal is recorded (the daemon's db)")
    p.add_argument("--by", metavar="NAME", help="who proposes (default: your login)")
    p.set_defaults(func=cmd_propose)

    c = sub.add_parser("constitution", help="constitution versions: approve a proposal, history")
    verbs = c.add_subparsers(dest="constitution_verb", metavar="VERB")
    verbs.required = True
    a = verbs.add_parser("approve", help="record a person's approval of a proposed version")
    a.add_argument("version", metavar="VERSION")
    a.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
    a.add_argument("--override", action="store_true",
                   help="approve a proposal that FAILED its gate (recorded as an override)")  # fmt: skip
    a.add_argument("--digest", metavar="SHA256", help="which content, if proposed more than once")
    a.add_argument("--by", metavar="NAME", help="who approves (default: your login)")
    a.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    a.set_defaults(func=cmd_approve)
    h = verbs.add_parser("history", help="versions run, proposals, verdicts, approvals")
    h.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    h.add_argument("--json", action="store_true", help="one JSON document")
    h.set_defaults(func=cmd_history)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_propose(args: argparse.Namespace) -> int:
    from adapters.storage.database import resolve_url
    from constitution.diff import diff
    from engine.clock import WallClock
    from scheduler import governance
    from scheduler.cli import render

    new, current = governance.load_pair(args.new, args.against)
    render.diff_text(diff(current.model, new.model), current, new)
    history = governance.History(args.first, args.last, args.data, args.synthetic)
    out = args.out or Path(f"proposal-{new.version}")
    p = governance.propose(new, current, history, out, resolve_url(args.db), WallClock(), args.by)
    table = Table("check", "current", "new", "result", title=f"governance gate ({p.data})")
    for c in p.checks:
        table.add_row(c.name, _shown(c.current, c.unit), _shown(c.new, c.unit),
                      f"{'pass' if c.passed else 'FAIL'}: {c.detail}")  # fmt: skip
    console = Console(highlight=False)
    console.print(table)
    console.print(f"proposal {p.id}: {p.verdict.upper()}; report {p.report} ({p.report_digest})")
    if p.verdict == "pass":
        console.print(f"next: alluse constitution approve {p.version} --reason TEXT")
        return 0
    console.print(
        f"a live daemon will not load {p.version}; only an override can approve it: "
        f"alluse constitution approve {p.version} --override --reason TEXT"
    )
    return 2


def _shown(x: float | None, unit: str) -> str:
    if x is None:
        return "n/a"
    return f"{100 * x:.2f} %" if unit == "fraction" else f"{x:g}"


def cmd_approve(args: argparse.Namespace) -> int:
    from adapters.storage.database import resolve_url
    from engine.clock import WallClock
    from scheduler import governance

    proposal, recorded = governance.approve(
        args.version,
        args.reason,
        resolve_url(args.db),
        WallClock(),
        digest=args.digest,
        override=args.override,
        by=args.by,
    )
    if not recorded:
        print(f"{proposal.version} ({proposal.digest[:19]}...) is already approved")
        return 0
    kind = "OVERRIDE of a failed gate" if proposal.verdict == "fail" else "approval"
    print(f"{proposal.version}: {kind} of proposal {proposal.id} recorded; a daemon may load it")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from adapters.storage.database import resolve_url
    from scheduler import governance

    rows = governance.history(resolve_url(args.db))
    if args.json:
        print(json.dumps([_as_json(r) for r in rows], indent=2, sort_keys=True, default=str))
        return 0
    table = Table("version", "digest", "first run", "proposals", "approvals", "standing")
    for r in rows:
        table.add_row(
            r.version,
            r.digest[:19] + "...",
            (r.first_run or "never")[:19],
            "\n".join(
                f"{p.id} {p.verdict} vs {p.against_version} ({p.created_at:%Y-%m-%d})"
                for p in r.proposals
            )
            or "-",  # fmt: skip
            "\n".join(
                f"{'override' if a['override'] else 'approved'} by {a['approved_by']}: {a['reason']}"
                for a in r.approvals
            )
            or "-",
            r.standing,
        )
    Console(highlight=False).print(table)
    if not rows:
        print("no versions, proposals or approvals in this database")
    return 0


def _as_json(r: VersionHistory) -> dict:
    return {
        "version": r.version,
        "digest": r.digest,
        "first_run": r.first_run,
        "standing": r.standing,
        "proposals": [p.model_dump(mode="json") for p in r.proposals],
        "approvals": list(r.approvals),
    }
