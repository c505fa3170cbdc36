"""A decision as readable tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from scheduler.cli.render import console

if TYPE_CHECKING:
    from engine.records.decision import Decision


def decision_table(decision: Decision) -> None:
    out = console()
    out.print(
        f"[bold]decision {decision.decision_id}[/bold]  as of {decision.as_of}  "
        f"constitution {decision.constitution.version} {decision.constitution.digest[:19]}…"
    )
    m = decision.derived["market"]
    out.print(
        f"market mode: {m.get('mode')}  data stale: {m.get('data_stale')}  hedge trigger: {m.get('hedge_trigger')}"
    )
    accounts = Table(title="Accounts", title_justify="left")
    for col in (
        "account",
        "level",
        "mode",
        "CSPs suspended",
        "entries frozen",
        "CSP window",
        "CC window",
    ):
        accounts.add_column(col)
    for acct, v in decision.derived["accounts"].items():
        accounts.add_row(
            acct,
            f"L{v['level']}",
            v["mode"],
            _yn(v["csp_suspended"]),
            _yn(v["entries_frozen"]),
            _yn(v["csp_window"]),
            _yn(v["cc_window"]),
        )
    out.print(accounts)
    if not decision.actions:
        out.print("no actions")
        return
    t = Table(
        title=f"Actions ({len(decision.actions)}) — dry run, nothing sent", title_justify="left"
    )
    for col in ("#", "action", "account", "symbol / position", "rule", "clause", "why"):
        t.add_column(col, overflow="fold")
    for i, a in enumerate(decision.actions, 1):
        where = a.position or a.symbol or ""
        t.add_row(str(i), a.kind, a.account or "—", where, a.rule, a.clause, a.reason)
    out.print(t)
    if decision.superseded:
        s = Table(
            title=f"Superseded ({len(decision.superseded)}) — one intent per position",
            title_justify="left",
        )
        for col in ("action", "target", "rule", "won by", "why"):
            s.add_column(col, overflow="fold")
        for x in decision.superseded:
            won = f"#{x.winner + 1} {x.winner_rule}"
            s.add_row(x.action.kind, x.target, x.action.rule, won, x.reason)
        out.print(s)


def _yn(v: bool) -> str:
    return "yes" if v else "no"
