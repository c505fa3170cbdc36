"""The planner: approved actions -> concrete orders and ledger operations (docs/execution.md).

Pure and deterministic: the same decision, ledger state and market view give the same plan,
with the same client order ids (``DECISION_ID:ACTION_INDEX:LEG``), so planning a decision
again can never create a second order. Sizing is *top-up*: an entry sizes to the sleeve's
target for the symbol minus what is already held or working there, so a second cycle in the
same window (or a rerun after a crash) adds nothing that is already deployed.

Every approved action that yields no order says why (a ``Rejection`` with a stable code),
and execution writes each one to the decision log.
"""

from __future__ import annotations

import math

import numpy as np

from constitution.models import Constitution
from engine.execution.broker import OrderSide
from engine.execution.ledger import Holding, LedgerState, NoteRollCost
from engine.execution.plan import (
    Context,
    Partial,
    Plan,
    band,
    dte_range,
    never_crossing,
    option,
    orders_for,
    pick_expiry,
    put_collateral,
    shares_held,
    short_margin,
    symbol_exposure,
)
from engine.execution.risk import Limits
from engine.market.options import select_strike
from engine.market.quotes import MarketView
from engine.records.decision import Action, Decision

DELTA_TOLERANCE = 0.20
SLEEVE_OF = {"gen": "gen", "mini": "gen", "rev": "rev", "com": "com"}


def plan(
    c: Constitution,
    decision: Decision,
    state: LedgerState,
    market: MarketView,
    limits: Limits,
    by_key: dict[str, Holding],
) -> Plan:
    """Approved actions of ``decision`` -> a Plan. Money operations are planned first (a
    quarter's LEAP funds exist before the LEAPs are bought in the same decision)."""
    from engine.execution import money, protect

    handlers = {
        "open_short_put": open_short_put,
        "open_covered_call": open_covered_call,
        "close_position": close_position,
        "release_hedge": close_position,
        "roll_position": roll_position,
        "prepare_roll": prepare_roll,
        "deploy_hedge": protect.deploy_hedge,
        "buy_leap": protect.buy_leap,
        "roll_leap": protect.roll_leap,
        "fork_account": money.fork_account,
        "merge_account": money.merge_account,
        "reserve_tax": money.reserve_tax,
        "reinvest": money.reinvest,
        "buy_shares": money.buy_shares,
        "kill_switch": money.kill_switch,
        "enter_safe_mode": money.enter_safe_mode,
        "suspend_csp": money.suspend_csp,  # §0/§2 the drawdown pivot's latch (D7)
        "resume_csp": money.resume_csp,
    }
    ctx = Context(
        c,
        decision,
        state,
        market,
        limits,
        {a["id"]: a for a in decision.facts.get("accounts", ())},
        by_key,
    )
    approved = (
        {v.action for v in decision.verdicts if v.approved}
        if decision.verdicts
        else set(range(len(decision.actions)))
    )
    out = Partial()
    first = [i for i, a in enumerate(decision.actions) if a.kind in money.FIRST]
    rest = [i for i, a in enumerate(decision.actions) if a.kind not in money.FIRST]
    for i in first + rest:
        a = decision.actions[i]
        if i in approved and a.kind in handlers:
            part = handlers[a.kind](ctx, i, a)
            out.orders += part.orders
            out.ops += part.ops
            out.rejections += part.rejections
            out.notes += part.notes
    out.ops += money.system_release(ctx) + money.account_releases(ctx)  # §6 tiers, L3 reset (D60)
    out.ops += money.deferred_forks(ctx)  # §2/§3 a deferred fork once its clip is free (D64)
    orders, crossing = never_crossing(state, out.orders)
    rejections = tuple(out.rejections) + crossing
    return Plan(orders, tuple(out.ops), rejections, tuple(out.notes))


# --------------------------------------------------------------------------- choosing a contract


def _choose(
    ctx: Context,
    i: int,
    a: Action,
    symbol: str,
    right: str,
    delta,
    dte,
    part: Partial,
    *,
    after=None,
    in_band: bool = False,
):
    """(contract, expiry fell back) by delta band and DTE from the chain with the
    constitution's liquidity filters; None with a rejection recorded when nothing qualifies.
    ``in_band``: the expiry must be inside the DTE band, no fallback (put entries, D19)."""
    chain = ctx.market.chain(symbol)
    if chain is None:
        part.reject(i, a, "no-chain", f"no option chain for {symbol}")
        return None
    lo, hi = dte_range(dte)
    base = after or ctx.today
    expiry, fell_back = pick_expiry(chain.expiries, base, lo, hi, 0 if in_band else 3)
    if expiry is None or expiry < ctx.today:
        listed = ", ".join(str(e) for e in sorted(chain.expiries)[:4])
        part.reject(
            i,
            a,
            "no-expiry",
            f"no expiry in band: none listed {lo}-{hi} days from {base} (next: {listed})",
        )
        return None
    liq = ctx.c.liquidity
    lo_d, hi_d = band(delta)
    choice = select_strike(
        chain,
        right,
        (lo_d, hi_d),
        expiry=expiry,
        min_open_interest=liq.min_open_interest,
        min_volume=liq.min_volume,
        max_spread_pct=liq.max_spread_pct_of_mid,
    )
    if choice.in_band == 0:
        # Listed strikes can straddle a narrow band ($1 strikes, 1 DTE: 0.24 then 0.56):
        # take the nearest liquid strike on the safe side (further out of the money) within
        # DELTA_TOLERANCE of the band, and say so (docs/execution.md, decision X3).
        safer = _nearest_below(chain, right, expiry, lo_d, liq)
        if safer is not None:
            part.notes.append(
                {
                    "action": i,
                    "note": "delta-below-band",
                    "delta": round(safer.delta, 3),
                    "band": [lo_d, hi_d],
                }
            )
            return safer
    if choice.contract is None:
        detail = (
            f"{choice.in_band} {right}s in the delta band {band(delta)} expiring {expiry}; "
            f"none with OI >= {liq.min_open_interest}, volume >= {liq.min_volume}, spread <= {liq.max_spread_pct_of_mid:.0%}"
        )
        part.reject(i, a, choice.reason, detail)
        return None
    if fell_back:
        part.notes.append(
            {"action": i, "note": "dte-fallback", "expiry": expiry.isoformat(), "band": [lo, hi]}
        )
    return choice.contract


def _nearest_below(chain, right: str, expiry, lo: float, liq):
    absd = np.abs(chain.delta)
    mid = chain.mid
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(mid > 0, (chain.ask - chain.bid) / mid, np.inf)
    mask = (
        (chain.is_call == (right == "call"))
        & (chain.expiry == np.datetime64(expiry, "D"))
        & (absd < lo)
        & (absd >= lo - DELTA_TOLERANCE)
        & (chain.open_interest >= liq.min_open_interest)
        & (chain.volume >= liq.min_volume)
        & (spread <= liq.max_spread_pct_of_mid)
    )
    if not mask.any():
        return None
    idx = np.flatnonzero(mask)
    return chain.contract(int(idx[np.argmax(absd[idx])]))


def _adv_cap(ctx: Context, volume: int) -> int:
    return int(math.floor(ctx.c.liquidity.max_pct_of_adv * volume))


# --------------------------------------------------------------------------- entries


def open_short_put(ctx: Context, i: int, a: Action) -> Partial:
    from engine.execution import money

    part = Partial()
    held = shares_held(ctx, a.account, a.symbol)
    if held > 0:  # §7 "CSPs eligible again once the shares are called away" (D140)
        return part.reject(
            i,
            a,
            "shares-held",
            f"{held} {a.symbol} shares held: puts on {a.symbol} resume once they are called away",
        )
    p = a.params
    sleeve = getattr(ctx.c.sleeves, p.get("style", SLEEVE_OF.get(_kind(ctx, a.account), "gen")))
    dte = p["dte"]
    if "stress_test" in ctx.state.flags and sleeve.stress_dte is not None:
        dte = sleeve.stress_dte.model_dump()  # §2 "Alt: 1-3DTE for stress-testing" (D68)
        part.notes.append({"action": i, "note": "stress-test", "dte": [dte["min"], dte["max"]]})
    oc = _choose(ctx, i, a, a.symbol, "put", p["delta"], dte, part, in_band=True)
    if oc is None:
        return part
    hold_back = money.fork_hold_back(ctx, a.account)  # a due fork's clip is not collateral
    equity = ctx.equity(a.account) - hold_back
    budget = equity * float(p.get("deployment", 1.0)) * float(p.get("share", 1.0))
    # §6 Hedged Week "deployment halved": half of what the sleeve would deploy, so the factor
    # applies after the per-symbol cap (Rev's two tickers sit at the 25 % cap) (D4)
    per_symbol = (
        min(ctx.c.capital.per_symbol_max * equity, budget / max(len(sleeve.tickers), 1))
        * ctx.limits.deployment_factor
    )
    collateral = oc.strike * 100
    by_target = int((per_symbol - symbol_exposure(ctx, a.account, a.symbol)) // collateral)
    by_cash = int((ctx.cash(a.account) - hold_back - put_collateral(ctx, a.account)) // collateral)
    by_adv = _adv_cap(ctx, oc.volume)
    requirement = (
        max(
            0.20 * ctx.market.spot(a.symbol) - max(ctx.market.spot(a.symbol) - oc.strike, 0),
            0.10 * oc.strike,
        )
        * 100
    )
    by_margin = (
        int((ctx.c.capital.margin_max * equity - short_margin(ctx, a.account)) // requirement)
        if requirement > 0
        else by_target
    )
    limits = {
        "per-symbol-cap": by_target,
        "insufficient-cash": by_cash,
        "adv-limit": by_adv,
        "margin-limit": by_margin,
    }
    qty = min(limits.values())
    if qty <= 0:
        binding = min(limits, key=lambda k: limits[k])
        return part.reject(
            i,
            a,
            binding,
            f"{oc.strike:g}P {oc.expiry}: per-symbol target ${per_symbol:,.0f}, "
            f"collateral ${collateral:,.0f}/contract; limits {limits}",
        )
    contract = option(a.symbol, oc.expiry, oc.strike, "put")
    part.orders += orders_for(
        ctx, i, a, contract, OrderSide.SELL, qty, oc.mid, "income", why=f"delta {oc.delta:.2f}"
    )
    return part


def open_covered_call(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    h = ctx.by_key.get(a.position or "")
    if h is None or h.quantity <= 0:
        return part.reject(i, a, "no-shares", f"no stock position {a.position}")
    p = a.params
    lots = int(
        h.quantity
        // 100
        * float(p.get("coverage", 1))
        * float(p.get("deployment", 1))
        * ctx.limits.deployment_factor
    )
    covered = sum(
        -x.quantity
        for x in ctx.state.holdings_of(a.account)
        if x.contract.symbol == a.symbol and x.contract.right == "C" and x.quantity < 0
    )
    covered += sum(
        o.request.quantity - o.filled
        for o in ctx.state.open_orders(a.account)
        if o.request.contract.symbol == a.symbol
        and o.request.contract.right == "C"
        and o.request.side is OrderSide.SELL
    )
    oc = _choose(ctx, i, a, a.symbol, "call", p["delta"], p["dte"], part)
    if oc is None:
        return part
    qty = min(lots - covered, _adv_cap(ctx, oc.volume))
    if qty <= 0:
        reason = "fully-covered" if lots - covered <= 0 else "adv-limit"
        return part.reject(
            i,
            a,
            reason,
            f"{h.quantity} shares, {covered} calls held or working, coverage lots {lots}",
        )
    contract = option(a.symbol, oc.expiry, oc.strike, "call")
    part.orders += orders_for(
        ctx, i, a, contract, OrderSide.SELL, qty, oc.mid, "income", why=f"delta {oc.delta:.2f}"
    )
    return part


# --------------------------------------------------------------------------- exits and rolls


def close_position(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    h = ctx.by_key.get(a.position or "")
    if h is None:
        return part.reject(i, a, "no-position", f"{a.position} is not held")
    side = OrderSide.BUY if h.quantity < 0 else OrderSide.SELL
    qty = _closable(ctx, h, side)
    if qty <= 0:
        return part.reject(
            i,
            a,
            "already-working",
            f"orders closing all {abs(h.quantity)} of {h.key} already working or planned",
        )
    q = ctx.market.quote(h.contract)
    market_order = a.params.get("urgency") == "market" or q is None
    part.orders += orders_for(
        ctx,
        i,
        a,
        h.contract,
        side,
        qty,
        q.mid if q else None,
        h.purpose,
        leg="c",
        market_order=market_order,
        why=str(a.params.get("why", "")),
    )
    return part


def _closable(ctx: Context, h: Holding, side: OrderSide) -> int:
    """What a close of ``h`` may still order: the position net of the closing orders working
    and already planned in this decision, so no close takes it through zero."""
    left = ctx.reducible(h.account, h.contract, side)
    return abs(h.quantity) if left is None else left


def _roll_candidate(ctx: Context, i: int, a: Action, h: Holding, part: Partial):
    sleeve = getattr(ctx.c.sleeves, SLEEVE_OF.get(_kind(ctx, a.account), "gen"))
    delta = a.params.get("delta") or sleeve.delta.model_dump()
    if h.contract.right == "C" and sleeve.after_assignment and _kind(ctx, a.account) != "com":
        delta = sleeve.after_assignment.delta.model_dump()
    ext = a.params.get("dte_extension") or ctx.c.protocol.roll.dte_extension.model_dump()
    right = "call" if h.contract.right == "C" else "put"
    return _choose(ctx, i, a, h.contract.symbol, right, delta, ext, part, after=h.contract.expiry)


def _roll_debit(ctx: Context, h: Holding, new) -> float | None:
    q = ctx.market.quote(h.contract)
    return None if q is None else round(q.mid - new.mid, 4)


def roll_position(ctx: Context, i: int, a: Action) -> Partial:
    """Close + open further out in the band; refused when it costs more than
    ``max_cost_of_credit`` of the original credit (the cost is noted for the rules)."""
    part = Partial()
    h = ctx.by_key.get(a.position or "")
    if h is None or h.quantity >= 0:
        return part.reject(i, a, "no-position", f"{a.position} is not a held short option")
    new = _roll_candidate(ctx, i, a, h, part)
    if new is None:
        return part
    debit = _roll_debit(ctx, h, new)
    limit = float(a.params.get("max_cost_of_credit", ctx.c.protocol.roll.max_cost_of_credit))
    if debit is None:
        return part.reject(i, a, "no-quote", f"no quote for {h.contract.key}")
    if debit > limit * h.avg_price:
        part.ops.append(
            NoteRollCost(f"rollcost:{ctx.decision.decision_id}:{i}", a.account, h.key, debit)
        )
        return part.reject(
            i,
            a,
            "roll-uneconomic",
            f"roll debit {debit:.2f} > {limit:.0%} of credit {h.avg_price:.2f}",
        )
    qty = _closable(ctx, h, OrderSide.BUY)
    if qty <= 0:
        return part.reject(
            i,
            a,
            "already-working",
            f"orders closing all {-h.quantity} of {h.key} already working or planned",
        )
    q = ctx.market.quote(h.contract)
    part.orders += orders_for(
        ctx, i, a, h.contract, OrderSide.BUY, qty, q.mid, "income", leg="c", why="roll close"
    )
    # §6 Hedged Week: only defensive rolls, deployment halved - the whole position is closed
    # and half of it re-opened (none when half is under one contract: the roll is a close) (D4)
    reopen = int(qty * ctx.limits.deployment_factor)
    if reopen < qty:
        part.notes.append(
            {"action": i, "note": "hedged-week-roll", "closed": qty, "reopened": reopen}
        )
    if reopen <= 0:
        return part
    contract = option(h.contract.symbol, new.expiry, new.strike, h.contract.right)
    part.orders += orders_for(
        ctx, i, a, contract, OrderSide.SELL, reopen, new.mid, "income", leg="n", why="roll open"
    )
    return part


def prepare_roll(ctx: Context, i: int, a: Action) -> Partial:
    """L1: price the roll now, so at L2 the rules know whether it is economic."""
    part = Partial()
    h = ctx.by_key.get(a.position or "")
    if h is None or h.quantity >= 0:
        return part
    new = _roll_candidate(ctx, i, a, h, part)
    debit = _roll_debit(ctx, h, new) if new is not None else None
    if debit is not None:
        part.ops.append(
            NoteRollCost(f"rollcost:{ctx.decision.decision_id}:{i}", a.account, h.key, debit)
        )
        part.notes.append(
            {
                "action": i,
                "note": "roll-candidate",
                "strike": new.strike,
                "expiry": new.expiry.isoformat(),
                "debit": debit,
            }
        )
    return part


def _kind(ctx: Context, account: str | None) -> str:
    acct = ctx.state.accounts.get(account or "")
    return acct.kind if acct else ""
