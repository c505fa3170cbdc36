"""Operator switches on the paper ledger, each recorded on entry and exit (a ledger operation
with its reason, and ``note`` links ``ref: operator`` in the audit log before and after):

* ``alluse account pause ID --reason`` - §0 the user-facing kill switch: the account is held in
  SAFE (no new risk; exits and hedges go on, D61) and its working orders are cancelled;
  ``alluse account resume ID --reason`` ends the hold (also an L3 hold: a human reset);
* ``alluse system maintenance on|off --reason`` - §9 MAINTENANCE;
* ``alluse system audit --reason`` - §9 AUDIT: enter, reconcile with the venue (the resume
  sequence's checks), leave;
* ``alluse system stress on|off --reason`` - §2's stress-test mode (Gen-style puts at 1-3 DTE).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from constitution.errors import InvalidInput, Problem
from engine.execution.ledger import LedgerState


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", metavar="TEXT", required=True, help="why (recorded)")
    p.add_argument("--operator", metavar="NAME", help="who (default: the login name; recorded)")
    p.add_argument(
        "--db", metavar="URL", help="database URL (default: ALLUSE_DB or the per-user file)"
    )


def register(sub: Any) -> None:
    a = sub.add_parser("account", help="pause or resume one account (§0 user kill switch)")
    verbs = a.add_subparsers(dest="account_verb", metavar="VERB")
    verbs.required = True
    for name, text in (
        ("pause", "hold the account in SAFE and cancel its working orders"),
        ("resume", "end the account's hold (a user's pause or an L3 SAFE)"),
    ):
        v = verbs.add_parser(name, help=text)
        v.add_argument("account", metavar="ID", help="account id, e.g. GEN, MINI-1")
        _common(v)
        v.set_defaults(func=cmd_pause if name == "pause" else cmd_resume)

    s = sub.add_parser("system", help="§9 MAINTENANCE / AUDIT and §2 stress-test mode")
    sv = s.add_subparsers(dest="system_verb", metavar="VERB")
    sv.required = True
    for name, text in (
        ("maintenance", "enter (on) or leave (off) MAINTENANCE"),
        ("stress", "stress-test mode on or off: Gen-style puts at 1-3 DTE"),
    ):
        v = sv.add_parser(name, help=text)
        v.add_argument("switch", choices=("on", "off"))
        _common(v)
        v.set_defaults(func=cmd_maintenance if name == "maintenance" else cmd_stress)
    v = sv.add_parser("audit", help="enter AUDIT, reconcile with the venue, leave")
    _common(v)
    v.set_defaults(func=cmd_audit)


def _problem(code: str, path: str, message: str) -> InvalidInput:
    return InvalidInput([Problem("<args>", 1, 1, code, path, message)])


def _operator_change(args: argparse.Namespace, event: str, change: Callable) -> int:
    """Open the paper ledger, record ``requested``, apply ``change(ctx)`` (ledger ops, maybe
    cancellations), record ``done``. Refusals (a guard that does not hold) write nothing."""
    from adapters.brokers.paper import PaperBroker
    from adapters.storage import audit_schema
    from adapters.storage.audit_store import AuditQuery, AuditStore, SqlDecisionLog
    from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
    from adapters.storage.migrations import migrate
    from engine.clock import WallClock
    from engine.market.snapshot import MarketSnapshot
    from engine.records.audit import RunMode
    from scheduler.cli.paper_cmds import EMPTY_LEDGER, _login, _note, no_ledger_yet
    from scheduler.compose import paper_executor

    reason = args.reason.strip()
    if not reason:
        raise _problem("missing", "--reason", "--reason TEXT must say why: it is recorded")
    if no_ledger_yet(args.db):
        return 0
    store = SqlLedgerStore.open(args.db)
    try:
        at = store.last_at()
        if not store.state.accounts or at is None:
            print(EMPTY_LEDGER)
            return 0
        migrate(store.engine, [audit_schema.COMPONENT])
        audit = AuditStore(store.engine, WallClock())
        log = SqlDecisionLog(audit, RunMode.PAPER)
        latest = audit.query(AuditQuery(mode=RunMode.PAPER, limit=1))
        if not latest:
            import sys

            print(
                "alluse: refused: the audit log has no decision to record this on", file=sys.stderr
            )
            return 2
        anchor = latest[-1].decision_id
        broker = PaperBroker(store=SqlVenueStore(store.engine))
        broker.sync(at, MarketSnapshot(as_of=at))
        ctx = _Change(store, paper_executor(broker, log, store), anchor, at)
        note = {"event": event, "operator": args.operator or _login(), "reason": reason}
        ops, detail = change(
            ctx
        )  # raises TransitionRefused / InvalidInput before anything is written
        _note(log, anchor, {**note, "phase": "requested", **detail})
        store.apply(ops, at)
        _note(log, anchor, {**note, "phase": "done", **detail, "cancelled": ctx.cancelled})
        print(f"{event}: {detail}; recorded on decision {anchor}")
        return 0
    finally:
        store.close()


class _Change:
    def __init__(self, store: Any, executor: Any, anchor: str, at: datetime) -> None:
        self.store, self.executor, self.anchor, self.at = store, executor, anchor, at
        self.cancelled = 0

    @property
    def state(self) -> LedgerState:
        return self.store.state

    @property
    def today(self) -> date:
        from engine.market.calendar import new_york_date

        return new_york_date(self.at)

    def cancel(self, account: str) -> None:
        self.cancelled += self.executor.cancel_account(self.anchor, self.at, account)


def _account_of(ctx: _Change, account: str) -> None:
    acct = ctx.state.accounts.get(account)
    if acct is None or acct.status != "active":
        known = ", ".join(sorted(a.id for a in ctx.state.active_accounts()))
        raise _problem("unknown-account", "ID", f"no active account {account} (accounts: {known})")


def cmd_pause(args: argparse.Namespace) -> int:
    from engine.execution.ledger import SetAccountMode

    def change(ctx: _Change) -> tuple[list, dict]:
        _account_of(ctx, args.account)
        held = ctx.state.account_modes.get(args.account)
        if held is not None and held.mode == "paused":
            raise _problem("already", "ID", f"{args.account} is paused already ({held.reason})")
        ctx.cancel(args.account)
        op = SetAccountMode(
            f"pause:{args.account}:{ctx.at.isoformat()}:{len(ctx.state.applied)}",
            args.account,
            "paused",
            f"user: {args.reason.strip()}",
            ctx.today,
            "operator",
        )
        return [op], {"account": args.account, "mode": "paused"}

    return _operator_change(args, "account_pause", change)


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.execution.ledger import SetAccountMode

    def change(ctx: _Change) -> tuple[list, dict]:
        _account_of(ctx, args.account)
        held = ctx.state.account_modes.get(args.account)
        if held is None:
            raise _problem("not-held", "ID", f"{args.account} is not paused or held")
        op = SetAccountMode(
            f"resume:{args.account}:{ctx.at.isoformat()}:{len(ctx.state.applied)}",
            args.account,
            "active",
            f"user: {args.reason.strip()} (was {held.mode}: {held.reason})",
        )
        return [op], {"account": args.account, "mode": "active", "was": held.mode}

    return _operator_change(args, "account_resume", change)


def cmd_maintenance(args: argparse.Namespace) -> int:
    from engine.execution import states

    def change(ctx: _Change) -> tuple[list, dict]:
        stamp = f"{ctx.at.isoformat()}:{len(ctx.state.applied)}"
        if args.switch == "on":
            op = states.enter(
                ctx.state, states.SystemState.MAINTENANCE, args.reason, ctx.today, stamp
            )
        else:
            op = states.leave(ctx.state, args.reason, ctx.today, stamp)
        return [op], {"state": "MAINTENANCE" if args.switch == "on" else "left MAINTENANCE"}

    return _operator_change(args, "maintenance", change)


def cmd_audit(args: argparse.Namespace) -> int:
    from engine.execution import states
    from engine.execution.resume import position_differences, reconcile_orders, risk_problems

    def change(ctx: _Change) -> tuple[list, dict]:
        stamp = f"{ctx.at.isoformat()}:{len(ctx.state.applied)}"
        ctx.store.apply(
            [states.enter(ctx.state, states.SystemState.AUDIT, args.reason, ctx.today, stamp)],
            ctx.at,
        )
        diffs = reconcile_orders(ctx.store, ctx.executor.broker, ctx.at)
        diffs += position_differences(ctx.store.state, ctx.executor.broker)
        problems = risk_problems(ctx.store.state, diffs)
        leave = states.leave(ctx.store.state, "reconciliation done", ctx.today, stamp)
        detail = {
            "differences": [{"kind": d.kind, "ref": d.ref, "detail": d.detail} for d in diffs],
            "problems": problems,
        }
        return [leave], detail

    return _operator_change(args, "audit", change)


def cmd_stress(args: argparse.Namespace) -> int:
    from engine.execution.ledger import SetFlag

    def change(ctx: _Change) -> tuple[list, dict]:
        on = args.switch == "on"
        if on == ("stress_test" in ctx.state.flags):
            raise _problem("already", "switch", f"stress-test mode is {args.switch} already")
        op = SetFlag(
            f"stress:{args.switch}:{ctx.at.isoformat()}:{len(ctx.state.applied)}",
            "stress_test",
            "on" if on else "",
            args.reason.strip(),
            ctx.today,
        )
        return [op], {"stress_test": args.switch}

    return _operator_change(args, "stress_test", change)
