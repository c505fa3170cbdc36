"""Planner, money side: forks, merges, the tax reserve, reinvestment, mode changes.

These become ledger operations, never orders. Their ids are *business keys* (``fork:GEN:3``,
``tax:REV:2024Q2``), not decision ids: the rules fire again on the next cycle until the ledger
shows the effect, and a business key makes the second firing a no-op instead of a second fork.
"""

from __future__ import annotations

from engine.execution.broker import OrderSide
from engine.execution.ledger import (
    LEAP,
    TAX,
    ForkAccount,
    LedgerOp,
    MarkReinvested,
    MergeAccount,
    SetAccountMode,
    SetFlag,
    SetMode,
    TradingMode,
    Transfer,
    cents,
    quarter_of,
    stock,
)
from engine.execution.ledger_view import pivot_flag
from engine.execution.plan import Context, Partial, orders_for, put_collateral, symbol_exposure
from engine.records.decision import Action

FIRST = frozenset(
    {"reserve_tax", "reinvest", "fork_account", "merge_account", "kill_switch", "enter_safe_mode"}
)
# SAFE reasons that hold one account, not the system (§6 L3 "SAFE mode until reset", D60): an
# L3 breach, or an uneconomic roll escalated to L3 (§6 "escalate to L3 instead", D9)
ACCOUNT_HOLDS = frozenset({"l3_breach", "roll_uneconomic"})
_RANK = {"active": 0, "safe": 2, "kill": 3}


def _acct(a: Action) -> str:
    """The account an account-targeted action names (the validator makes every such rule bind one)."""
    if not a.account:
        raise ValueError(f"{a.kind} from {a.rule} names no account")
    return a.account


def _free_cash(ctx: Context, account: str) -> float:
    return ctx.cash(account) - put_collateral(ctx, account)


def _fork_op(ctx: Context, account: str, amount: float, creates: str) -> ForkAccount:
    parent = ctx.state.accounts[account]
    if creates == "full":
        n = 1 + len({x.family for x in ctx.state.accounts.values() if x.family})
        split = ctx.c.capital.split
        total = cents(amount)
        gen, rev = cents(amount * split.gen), cents(amount * split.rev)
        children: tuple[tuple[str, str, int], ...] = (
            (f"GEN-{n}", "gen", gen),
            (f"REV-{n}", "rev", rev),
            (f"COM-{n}", "com", total - gen - rev),
        )
        family = f"F{n}"
    else:
        n = 1 + sum(1 for x in ctx.state.accounts.values() if x.kind == "mini")
        children = ((f"MINI-{n}", "mini", cents(amount)),)
        family = parent.family
    return ForkAccount(f"fork:{account}:{parent.forks + 1}", account, children, ctx.today, family)


def deferred_flag(account: str) -> str:
    return f"fork_deferred:{account}"


def fork_account(ctx: Context, i: int, a: Action) -> Partial:
    """Fork now if the sleeve's free cash (after put collateral) covers the clip; else record
    ONE deferral (a ledger flag the facts carry as ``account.fork_deferred``, so the rule does
    not fire again) and let ``deferred_forks`` execute it once the cash is free - new puts are
    sized without the clip meanwhile (``fork_hold_back``), so the next expiry frees it (D64)."""
    part = Partial()
    amount, creates = float(a.params["amount"]), str(a.params.get("creates", "mini"))
    free = _free_cash(ctx, _acct(a))
    if free >= amount:
        part.ops.append(_fork_op(ctx, _acct(a), amount, creates))
        return part
    forks = ctx.state.accounts[_acct(a)].forks
    why = f"fork of ${amount:,.0f} deferred: ${free:,.0f} free after put collateral"
    part.ops.append(
        SetFlag(
            f"fork-deferred:{_acct(a)}:{forks + 1}:{ctx.today}",
            deferred_flag(_acct(a)),
            f"{amount:g}:{creates}",
            why,
            ctx.today,
        )
    )
    return part.reject(i, a, "fork-deferred", why + "; it executes once the cash is free")


def fork_hold_back(ctx: Context, account: str | None) -> float:
    """Cash a due fork needs, kept out of new put collateral (D64)."""
    flag = ctx.state.flags.get(deferred_flag(account or ""))
    if flag is not None:
        return float(flag.value.split(":")[0])
    return sum(
        float(x.params.get("amount", 0))
        for n, x in enumerate(ctx.decision.actions)
        if x.kind == "fork_account" and x.account == account and _approved(ctx, n)
    )


def _approved(ctx: Context, n: int) -> bool:
    verdicts = ctx.decision.verdicts
    return not verdicts or verdicts[n].approved


def deferred_forks(ctx: Context) -> list[LedgerOp]:
    """Execute a deferred fork once its clip is free and the sleeve is still the clip over its
    base; until then it waits, recorded once (a dip below the clip does not re-record it)."""
    out: list[LedgerOp] = []
    if ctx.limits.market_mode == "kill":
        return out  # a fork waits out the kill switch (D61)
    for name, flag in sorted(ctx.state.flags.items()):
        account = name.removeprefix("fork_deferred:")
        if name == account or account not in ctx.state.accounts:
            continue
        amount_text, creates = flag.value.split(":")
        amount = float(amount_text)
        base = ctx.state.accounts[account].base_equity / 100
        forks = ctx.state.accounts[account].forks
        if ctx.equity(account) - base >= amount and _free_cash(ctx, account) >= amount:
            out.append(_fork_op(ctx, account, amount, creates))
            clear = f"fork-deferred:{account}:{forks + 1}:{ctx.today}:done"
            out.append(SetFlag(clear, name, "", "executed: the clip is free", ctx.today))
    return out


def suspend_csp(ctx: Context, i: int, a: Action) -> Partial:
    """§0/§2 drawdown pivot "CC-only until recovery": latch it, recorded once with the drawdown
    and the high it is measured from (a ledger flag the facts carry as ``account.pivot_latched``,
    so ``pivot.hold`` keeps CSPs suspended until ``pivot.recovered``; D7). The §7 assignment
    recovery needs no latch: its condition (shares held) is itself the state."""
    part = Partial()
    account = _acct(a)
    if a.params.get("why") != "drawdown_pivot" or pivot_flag(account) in ctx.state.flags:
        return part
    facts = ctx.facts_accounts.get(account, {})
    high = float(facts.get("high_water_mark", 0.0))
    equity = float(facts.get("equity", 0.0))
    down = 1 - equity / high if high > 0 else 0.0
    why = f"drawdown pivot: {down:.1%} below the high of ${high:,.0f} ({a.rule})"
    part.ops.append(
        SetFlag(
            f"pivot-on:{account}:{ctx.today}", pivot_flag(account), f"{high:.2f}", why, ctx.today
        )
    )
    return part


def resume_csp(ctx: Context, i: int, a: Action) -> Partial:
    """Release a drawdown pivot's latch once the sleeve has recovered (``pivot.recovered``),
    recorded with the equity it recovered to (D7)."""
    part = Partial()
    account = _acct(a)
    flag = ctx.state.flags.get(pivot_flag(account))
    if flag is None:
        return part
    equity = float(ctx.facts_accounts.get(account, {}).get("equity", 0.0))
    within = ctx.c.capital.drawdown_pivot.recovery_within
    why = f"recovered: equity ${equity:,.0f} within {within:.0%} of the high ({a.rule})"
    part.ops.append(
        SetFlag(f"pivot-off:{account}:{ctx.today}", pivot_flag(account), "", why, ctx.today)
    )
    return part


def merge_account(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    source = ctx.state.accounts[_acct(a)]
    targets = [
        x
        for x in ctx.state.active_accounts()
        if x.kind == a.params.get("into", "com") and x.family == source.family
    ]
    if not targets:
        return part.reject(
            i,
            a,
            "no-target",
            f"no active {a.params.get('into')} account in family '{source.family}'",
        )
    if ctx.state.open_orders(_acct(a)):
        return part.reject(
            i, a, "orders-working", "the Mini has working orders; merge after they finish"
        )
    equity = cents(ctx.equity(_acct(a)))
    part.ops.append(MergeAccount(f"merge:{_acct(a)}", _acct(a), targets[0].id, equity))
    return part


def _gains(ctx: Context, account: str) -> float:
    return max(float(ctx.facts_accounts.get(account, {}).get("quarter_gains", 0.0)), 0.0)


def reserve_tax(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    amount = cents(_gains(ctx, _acct(a)) * float(a.params["fraction"]))
    q = quarter_of(ctx.today)
    if amount > 0:
        part.ops.append(
            Transfer(
                f"tax:{_acct(a)}:{q}",
                _acct(a),
                _acct(a),
                amount,
                dst_bucket=TAX,
                memo=f"tax reserve {q}",
            )
        )
    return part


def reinvest(ctx: Context, i: int, a: Action) -> Partial:
    """70 % of the quarter's gains: the LEAP share moves to the account's LEAP fund; the
    contracts share stays in cash, where the next entries' sizing (on equity) deploys it."""
    part = Partial()
    q = quarter_of(ctx.today)
    reinvested = _gains(ctx, _acct(a)) * float(a.params["fraction"])
    leaps = cents(reinvested * float(a.params["leaps"]))
    if leaps > 0:
        part.ops.append(
            Transfer(
                f"reinvest:{_acct(a)}:{q}",
                _acct(a),
                _acct(a),
                leaps,
                dst_bucket=LEAP,
                memo=f"LEAP share {q}",
            )
        )
        ctx.leap_added[_acct(a)] = ctx.leap_added.get(_acct(a), 0.0) + leaps / 100
    part.ops.append(MarkReinvested(f"reinvested:{_acct(a)}:{q}", _acct(a), q))
    part.notes.append(
        {
            "action": i,
            "note": "reinvest",
            "contracts": round(reinvested * float(a.params["contracts"]), 2),
            "leaps": leaps / 100,
        }
    )
    return part


def share_lots(
    ctx: Context, i: int, a: Action, account: str, dollars: float, part: Partial, leg: str = "s"
) -> None:
    """Whole 100-share lots of Com's tickers for ``dollars``: a lot at a time to the ticker
    with the least notional held, never past the per-symbol cap (§0: 25 % of the sleeve) -
    covered calls are written on whole lots (D66)."""
    equity = max(ctx.equity(account), dollars)
    cap = ctx.c.capital.per_symbol_max * equity
    prices = {t: p for t in ctx.c.sleeves.com.tickers if (p := ctx.market.spot(t))}
    # shares at the mark plus put collateral, as the cap counts them (D140)
    held = {t: symbol_exposure(ctx, account, t) for t in prices}
    lots: dict[str, int] = {}
    left = dollars
    while True:
        room = [
            t for t, p in prices.items() if 100 * p <= left and held.get(t, 0.0) + 100 * p <= cap
        ]
        if not room:
            break
        t = min(room, key=lambda s: (held.get(s, 0.0), s))
        lots[t] = lots.get(t, 0) + 1
        held[t] = held.get(t, 0.0) + 100 * prices[t]
        left -= 100 * prices[t]
    for t, n in sorted(lots.items()):
        part.orders += orders_for(
            ctx,
            i,
            a,
            stock(t),
            OrderSide.BUY,
            100 * n,
            prices[t],
            "stock",
            leg=f"{leg}{t}.",
            why="shares to write covered calls on",
        )
    if not lots:
        part.reject(i, a, "below-one-lot", f"${dollars:,.0f} buys no 100-share lot within the cap")


def buy_shares(ctx: Context, i: int, a: Action) -> Partial:
    """Shares to write covered calls on (D66): §4 Com's reinvested contracts share
    (``fraction`` of the quarter's realised gains), or a Mini's Com-style half (``share`` of
    its equity). Never more than the account's cash."""
    part = Partial()
    if "fraction" in a.params:
        dollars = _gains(ctx, _acct(a)) * float(a.params["fraction"])
    else:
        dollars = ctx.equity(_acct(a)) * float(a.params.get("share", 0.0))
    share_lots(ctx, i, a, _acct(a), min(dollars, max(ctx.cash(_acct(a)), 0.0)), part)
    return part


def kill_switch(ctx: Context, i: int, a: Action) -> Partial:
    """§6 "VIX > 80 -> kill switch (full system halt)": EMERGENCY while VIX stays above the
    level, recorded on entry; released by ``system_release`` once VIX is back at or under it
    (D60). Not a latch: the text asks for no reset here."""
    part = Partial()
    if ctx.state.mode != "kill":
        why = str(a.params.get("why", "kill"))
        part.ops.append(
            SetMode(f"mode:{ctx.decision.decision_id}:{i}", "kill", why, ctx.state.latched)
        )
    return part


def enter_safe_mode(ctx: Context, i: int, a: Action) -> Partial:
    """SAFE for the system (a VIX tier, the broker down) or, for an L3 breach, for the
    breached account only (§6 "SAFE mode until reset", D60)."""
    part = Partial()
    why = str(a.params.get("why", "safe"))
    if why in ACCOUNT_HOLDS and _acct(a):
        if _acct(a) not in ctx.state.account_modes:
            part.ops.append(
                SetAccountMode(
                    f"hold:{ctx.decision.decision_id}:{i}",
                    _acct(a),
                    "safe",
                    why,
                    ctx.today,
                    ctx.c.protocol.l3_release,
                )
            )
        return part
    if _RANK.get(ctx.state.mode, 0) >= _RANK["safe"]:
        return part
    part.ops.append(SetMode(f"mode:{ctx.decision.decision_id}:{i}", "safe", why, False))
    return part


def system_release(ctx: Context) -> list[LedgerOp]:
    """Step the system mode down to what the market says now (a tier only ever applies while
    its condition holds: VIX back at or under 80 ends the kill switch, at or under 65 SAFE; the
    broker back ends its SAFE). A latch (a failed resume risk check) waits for an operator."""
    state = ctx.state
    if state.latched or state.mode == "active":
        return []
    now = ctx.limits.market_mode
    target: TradingMode = "kill" if now == "kill" else "safe" if now == "safe" else "active"
    if _RANK[target] >= _RANK.get(state.mode, 0):
        return []
    vix = ctx.decision.facts.get("market", {}).get("vix")
    why = f"released: {state.mode} ({state.mode_reason}) no longer holds; market {now}, VIX {vix}"
    return [SetMode(f"mode:{ctx.decision.decision_id}:release", target, why, False)]


def account_releases(ctx: Context) -> list[LedgerOp]:
    """End an account's ``next_session`` hold (L3) once its stop-loss exit is done - no
    position of the account at L2 or above, no working order - on a later session than the
    hold began (D60). Operator holds (a user's pause) are ended only by ``alluse account resume``."""
    levels = ctx.decision.derived.get("accounts", {})
    out: list[LedgerOp] = []
    for acct, m in sorted(ctx.state.account_modes.items()):
        if m.release != "next_session" or ctx.today <= m.since:
            continue
        if int(levels.get(acct, {}).get("level", 0)) >= 2 or ctx.state.open_orders(acct):
            continue
        why = f"reset: {m.reason} of {m.since} cleared (exit done, no position at L2+), {ctx.today}"
        out.append(SetAccountMode(f"release:{acct}:{m.since}:{ctx.today}", acct, "active", why))
    return out
