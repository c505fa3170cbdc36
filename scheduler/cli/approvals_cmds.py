"""``alluse approvals list | show | approve | deny``: the requests waiting for a person.

An answer is recorded with who gave it (``--by``, default the login) and why (``--reason``,
required), in one transaction with its audit-log record and its notification. The running
system carries an approved action out at its next cycle (docs/operations.md); whether a
request is still in time is judged on the run's clock, at that cycle.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import argparse

    from adapters.storage.approvals_store import SqlApprovalStore
    from constitution.errors import InvalidInput
    from engine.clock import WallClock
    from engine.execution.approvals import Approval
    from scheduler.cli import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser("approvals", help="actions waiting for a person: list, show, approve, deny")
    verbs = p.add_subparsers(dest="approvals_verb", metavar="VERB")
    verbs.required = True

    ls = verbs.add_parser("list", help="requests (open ones unless --all)")
    _db(ls)
    ls.add_argument("--all", action="store_true", help="answered and closed ones too")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="most recent N (50)")
    ls.add_argument("--json", action="store_true", help="one JSON document")
    ls.set_defaults(func=cmd_list)

    show = verbs.add_parser("show", help="one request in full")
    show.add_argument("id", metavar="ID")
    _db(show)
    show.set_defaults(func=cmd_show)

    for verb, helptext in (
        ("approve", "approve a pending request: it is carried out at the next cycle"),
        ("deny", "decline a pending request: it is not carried out"),
    ):
        v = verbs.add_parser(verb, help=helptext)
        v.add_argument("id", metavar="ID")
        v.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
        v.add_argument("--by", metavar="NAME", help="who answers (default: your login)")
        _db(v)
        v.set_defaults(func=cmd_answer, approve=verb == "approve")


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    p.add_argument(
        "--config", metavar="FILE", help="deployment config (default: alluse.yaml beside the db)"
    )


def _store(args: argparse.Namespace) -> tuple[SqlApprovalStore, WallClock]:
    from adapters.storage.approvals_store import SqlApprovalStore
    from adapters.storage.audit_store import AuditStore
    from adapters.storage.database import resolve_url
    from adapters.storage.outbox import SqlOutbox
    from engine.clock import WallClock
    from scheduler.alerting import deployment_for

    url = resolve_url(args.db)
    clock = WallClock()
    audit = AuditStore.open(url, clock, create=False)
    outbox = SqlOutbox.open(url, clock, deployment_for(url, args.config).alerts)
    return SqlApprovalStore(audit, outbox), clock


def _close(store: SqlApprovalStore) -> None:
    store.audit.close()
    if store.outbox is not None:
        store.outbox.close()


def _row(a: Approval) -> list[str]:
    what = " ".join(x for x in (a.action.kind, a.action.account, a.action.symbol) if x)
    answered = f"{a.by}: {a.reason}" if a.by else ""
    return [a.id, a.state, what, a.requested_at.isoformat(), a.expires_at.isoformat(), answered]


def cmd_list(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    try:
        found = store.listed(() if args.all else ("pending", "approved"), args.limit)
    finally:
        _close(store)
    if args.json:
        print(json.dumps([a.model_dump(mode="json") for a in found], indent=2, sort_keys=True))
        return 0
    if not found:
        print("no approvals" if args.all else "nothing waits for a person")
        return 0
    table = Table("id", "state", "action", "requested", "expires", "answered")
    for a in found:
        table.add_row(*_row(a))
    Console(highlight=False).print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    try:
        found = store.get(args.id)
    finally:
        _close(store)
    if found is None:
        raise _unknown(args.id)
    print(json.dumps(found.model_dump(mode="json"), indent=2, sort_keys=True))
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    from engine.execution.approvals import alert_of, answer, link_of

    reason = args.reason.strip()
    if not reason:
        raise _bad("--reason", "empty", "say why: --reason TEXT is recorded with the answer")
    store, clock = _store(args)
    try:
        found = store.get(args.id)
        if found is None:
            raise _unknown(args.id)
        done = answer(found, args.approve, args.by or _login(), reason, clock.now())
        store.save(done, "pending", link_of(done), (alert_of(done),))
    finally:
        _close(store)
    what = " ".join(x for x in (done.action.kind, done.action.account, done.action.symbol) if x)
    then = "carried out at the next cycle" if args.approve else "it will not be carried out"
    print(f"{done.state} {done.id} ({what}) by {done.by}: {then}")
    return 0


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _bad(option: str, code: str, message: str) -> InvalidInput:
    from constitution.errors import InvalidInput, Problem

    return InvalidInput([Problem(option, 1, 1, code, "", message)], what="arguments")


def _unknown(approval_id: str) -> InvalidInput:
    return _bad("ID", "unknown-approval", f"no approval {approval_id} (alluse approvals list)")
