"""Planner, money side: forks, merges, the tax reserve, reinvestment, mode changes.

These become ledger operations, never orders. Their ids are *business keys* (``fork:GEN:3``,
``tax:REV:2024Q2``), not decision ids: the rules fire again on the next cycle until the ledger
shows the effect, and a business key makes the second firing a no-op instead of a second fork.
"""

from __future__ import annotations

from engine.decision import Action
from engine.ledger import (
    LEAP,
    TAX,
    Fork,
    MarkReinvested,
    Merge,
    SetMode,
    Transfer,
    cents,
    quarter_of,
)
from engine.plan_types import Context, Partial, put_collateral

FIRST = frozenset({"reserve_tax", "reinvest", "fork_account", "merge_account", "kill_switch", "enter_safe_mode"})
LATCHING = frozenset({"l3_breach"})  # SAFE reasons that only an explicit resume clears (§6 "until reset")


def fork_account(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    parent = ctx.state.accounts[a.account]
    amount = float(a.params["amount"])
    free = ctx.cash(a.account) - put_collateral(ctx, a.account)
    if free < amount:
        return part.reject(i, a, "insufficient-free-cash",
                           f"fork of ${amount:,.0f} waits: ${free:,.0f} free after put collateral")
    opened = ctx.today
    if a.params.get("creates") == "full":
        n = 1 + len({x.family for x in ctx.state.accounts.values() if x.family})
        split = ctx.c.capital.split
        total = cents(amount)
        gen, rev = cents(amount * split.gen), cents(amount * split.rev)
        children = ((f"GEN-{n}", "gen", gen), (f"REV-{n}", "rev", rev), (f"COM-{n}", "com", total - gen - rev))
        family = f"F{n}"
    else:
        n = 1 + sum(1 for x in ctx.state.accounts.values() if x.kind == "mini")
        children = ((f"MINI-{n}", "mini", cents(amount)),)
        family = parent.family
    part.ops.append(Fork(f"fork:{a.account}:{parent.forks + 1}", a.account, children, opened, family))
    return part


def merge_account(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    source = ctx.state.accounts[a.account]
    targets = [x for x in ctx.state.active_accounts() if x.kind == a.params.get("into", "com") and x.family == source.family]
    if not targets:
        return part.reject(i, a, "no-target", f"no active {a.params.get('into')} account in family '{source.family}'")
    if ctx.state.open_orders(a.account):
        return part.reject(i, a, "orders-working", "the Mini has working orders; merge after they finish")
    equity = cents(ctx.equity(a.account))
    part.ops.append(Merge(f"merge:{a.account}", a.account, targets[0].id, equity))
    return part


def _gains(ctx: Context, account: str) -> float:
    return max(float(ctx.facts_accounts.get(account, {}).get("quarter_gains", 0.0)), 0.0)


def reserve_tax(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    amount = cents(_gains(ctx, a.account) * float(a.params["fraction"]))
    q = quarter_of(ctx.today)
    if amount > 0:
        part.ops.append(Transfer(f"tax:{a.account}:{q}", a.account, a.account, amount, dst_bucket=TAX, memo=f"tax reserve {q}"))
    return part


def reinvest(ctx: Context, i: int, a: Action) -> Partial:
    """70 % of the quarter's gains: the LEAP share moves to the account's LEAP fund; the
    contracts share stays in cash, where the next entries' sizing (on equity) deploys it."""
    part = Partial()
    q = quarter_of(ctx.today)
    reinvested = _gains(ctx, a.account) * float(a.params["fraction"])
    leaps = cents(reinvested * float(a.params["leaps"]))
    if leaps > 0:
        part.ops.append(Transfer(f"reinvest:{a.account}:{q}", a.account, a.account, leaps, dst_bucket=LEAP, memo=f"LEAP share {q}"))
        ctx.leap_added[a.account] = ctx.leap_added.get(a.account, 0.0) + leaps / 100
    part.ops.append(MarkReinvested(f"reinvested:{a.account}:{q}", a.account, q))
    part.notes.append({"action": i, "note": "reinvest", "contracts": round(reinvested * float(a.params["contracts"]), 2),
                       "leaps": leaps / 100})
    return part


def kill_switch(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    if not (ctx.state.mode == "kill" and ctx.state.latched):
        part.ops.append(SetMode(f"mode:{ctx.decision.decision_id}:{i}", "kill", str(a.params.get("why", "kill")), True))
    return part


def enter_safe_mode(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    why = str(a.params.get("why", "safe"))
    latched = why in LATCHING
    if ctx.state.mode == "kill" or (ctx.state.mode == "safe" and (ctx.state.latched or not latched)):
        return part
    part.ops.append(SetMode(f"mode:{ctx.decision.decision_id}:{i}", "safe", why, latched))
    return part
