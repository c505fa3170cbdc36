"""Planner, protection side: hedges (§5 strategic, §6 tactical L2) and the LLMS LEAP ladder (§17).

Hedge budget. Tactical (L2): SPX puts ``spx_puts_pct`` and VIX calls ``vix_calls_pct`` of the
sleeve's equity, the total capped at ``cap_quarterly_gains_pct`` of the quarter's gains and
floored at ``floor_sleeve_pct`` of equity. Strategic: the greater of
``quarterly_gains_pct.min`` of the quarter's gains and ``sleeve_equity_pct`` of equity, split
between SPX puts and VIX calls in the tactical proportions (2:1). Instruments: SPX puts at the
middle of the OTM band (15 %), the first monthly expiry ``months.min`` out; VIX calls strike
VIX + 5, ``months`` out. Each leg is planned on its own: one that cannot be priced or sized is a
rejection naming the leg (D152) and the other is still bought.

LEAPs (§17, D65). Funds are the account's LEAP fund (the 25 % LEAP share of its quarterly
reinvestment): ``split.growth`` to growth calls at the middle of the delta band on the sleeve's
tickers, ``split.hedge`` to SPY puts at the middle of the OTM band; expiries are staggered by
rung count across the months band. A purchase never spends more than the fund holds (sized at
the worst price the order ladder may pay). Between quarters the ladder lives by its own rules
(``llms.*``): a rung is rolled (``roll_leap``: sold, and the next rung bought with the proceeds)
when at most ``roll.months_left`` months remain or a growth call's delta leaves the roll band;
a hedge put in profit is closed once the hedge criteria normalize (``close_position``).
"""

from __future__ import annotations

from engine.execution.broker import OrderSide
from engine.execution.ledger import LEAP, Holding, Purpose
from engine.execution.plan import Context, Partial, month_expiry, option, orders_for
from engine.market.instruments import ContractSpec, SecType
from engine.records.decision import Action

MONTH_DAYS = 30.44


def _budget(ctx: Context, a: Action) -> tuple[float, float]:
    """(SPX put dollars, VIX call dollars)."""
    h = ctx.c.hedging
    if a.account is None:  # the validator makes the rule bind one
        raise ValueError(f"{a.kind} from {a.rule} names no account")
    equity = ctx.equity(a.account)
    gains = max(float(ctx.facts_accounts.get(a.account, {}).get("quarter_gains", 0.0)), 0.0)
    t = h.tactical_l2
    ratio = t.spx_puts_pct / (t.spx_puts_pct + t.vix_calls_pct)
    if a.params.get("kind") == "tactical":
        total = (t.spx_puts_pct + t.vix_calls_pct) * equity
        if gains > 0:
            total = min(total, t.cap_quarterly_gains_pct * gains)
        total = max(total, t.floor_sleeve_pct * equity)
    else:
        total = max(h.budget.quarterly_gains_pct.min * gains, h.budget.sleeve_equity_pct * equity)
    return total * ratio, total * (1 - ratio)


def _buy(
    ctx: Context,
    i: int,
    a: Action,
    contract: ContractSpec,
    dollars: float,
    purpose: Purpose,
    leg: str,
    part: Partial,
    funding: str = "cash",
) -> None:
    q = ctx.market.quote(contract)
    if q is None or q.ask <= 0:
        part.reject(i, a, "no-quote", f"no price for {contract.key}", leg=leg)
        return
    worst = max(q.ask, q.mid * (1 + ctx.c.orders.max_worse_pct))  # the ladder's last price
    qty = int(dollars // (worst * contract.multiplier))
    if qty <= 0:
        part.reject(
            i,
            a,
            "budget-below-one-contract",
            f"${dollars:,.0f} buys no {contract.key} at {q.ask:.2f}",
            leg=leg,
        )
        return
    part.orders += orders_for(
        ctx, i, a, contract, OrderSide.BUY, qty, q.mid, purpose, leg=leg, funding=funding
    )


def deploy_hedge(ctx: Context, i: int, a: Action) -> Partial:
    """Both legs are planned independently: a leg that cannot be priced or sized is a recorded
    rejection naming the leg (``spx``/``vix``), and the other leg is still bought (§5/§6: a
    hedge is risk-reducing; half a hedge is better than none, and the record says which half)."""
    part = Partial()
    spx_dollars, vix_dollars = _budget(ctx, a)
    spx, vix = ctx.market.spot("SPX"), ctx.market.vix
    if spx:
        _buy(ctx, i, a, _spx_put(ctx, spx), spx_dollars, "hedge", "spx", part)
    else:
        part.reject(i, a, "no-spot", "no SPX level (nor SPY to derive it): no SPX put", leg="spx")
    if vix:
        _buy(ctx, i, a, _vix_call(ctx, vix), vix_dollars, "hedge", "vix", part)
    else:
        part.reject(i, a, "no-spot", "no VIX level: no VIX call", leg="vix")
    return part


def _spx_put(ctx: Context, spx: float) -> ContractSpec:
    inst = ctx.c.hedging.instruments
    otm = (inst.spx_puts.otm.min + inst.spx_puts.otm.max) / 2
    strike = round(spx * (1 - otm) / 5) * 5
    expiry = month_expiry(ctx.today, inst.spx_puts.months.min)
    return option("SPX", expiry, strike, "P", SecType.INDEX_OPTION)


def _vix_call(ctx: Context, vix: float) -> ContractSpec:
    inst = ctx.c.hedging.instruments
    strike = round(vix + inst.vix_calls.strike_over_vix)
    return option(
        "VIX", month_expiry(ctx.today, inst.vix_calls.months), strike, "C", SecType.VIX_OPTION
    )


def _rungs(ctx: Context, account: str, right: str | None) -> list[Holding]:
    return [
        h
        for h in ctx.state.holdings_of(account)
        if h.purpose == "leap" and h.contract.right == right and h.quantity > 0
    ]


def _growth_contract(
    ctx: Context, account: str, n: int, symbol: str | None = None
) -> ContractSpec | None:
    g = ctx.c.llms.growth_calls
    kind = ctx.state.accounts[account].kind
    tickers = (
        ctx.c.sleeves.com.tickers
        if kind == "com"
        else getattr(ctx.c.sleeves, kind if kind in ("gen", "rev") else "com").tickers
    )
    symbol = symbol or sorted(tickers)[n % len(tickers)]
    months = g.months.min + (n % (g.months.max - g.months.min + 1) if ctx.c.llms.stagger else 0)
    expiry = month_expiry(ctx.today, months)
    strike = ctx.market.strike_for_delta(symbol, expiry, "C", (g.delta.min, g.delta.max))
    return option(symbol, expiry, strike, "C") if strike else None


def _hedge_contract(ctx: Context, n: int) -> ContractSpec | None:
    hp = ctx.c.llms.hedge_puts
    spot = ctx.market.spot("SPY")
    if not spot:
        return None
    months = hp.months.min + (n % (hp.months.max - hp.months.min + 1) if ctx.c.llms.stagger else 0)
    strike = round(spot * (1 - (hp.otm.min + hp.otm.max) / 2))
    return option("SPY", month_expiry(ctx.today, months), strike, "P")


def buy_leap(ctx: Context, i: int, a: Action) -> Partial:
    part = Partial()
    if a.account is None:  # the validator makes the rule bind one
        raise ValueError(f"{a.kind} from {a.rule} names no account")
    funds = ctx.state.balance(a.account, LEAP) / 100 + ctx.leap_added.get(a.account, 0.0)
    if funds <= 0:
        return part.reject(i, a, "no-leap-funds", "the account's LEAP fund is empty")
    split = ctx.c.llms.split
    growth = _growth_contract(ctx, a.account, len(_rungs(ctx, a.account, "C")))
    if growth is None:
        part.reject(i, a, "none-in-band", "no growth call strike in the delta band", leg="g")
    else:
        _buy(ctx, i, a, growth, funds * split.growth, "leap", "g", part, funding=LEAP)
    hedge = _hedge_contract(ctx, len(_rungs(ctx, a.account, "P")))
    if hedge is None:
        part.reject(i, a, "no-spot", "no SPY price: no hedge LEAP put", leg="h")
    else:
        _buy(ctx, i, a, hedge, funds * split.hedge, "leap", "h", part, funding=LEAP)
    return part


def roll_leap(ctx: Context, i: int, a: Action) -> Partial:
    """§17 "roll forward when TTE <= 3M or delta drifts outside 0.2-0.5": sell the rung and buy
    the next one (a growth call in the entry delta band, or a hedge put in the OTM band, a rung
    further out) with what the sale brings; the rest of the proceeds stays in the LEAP fund."""
    part = Partial()
    h = ctx.by_key.get(a.position or "")
    if h is None or h.quantity <= 0 or h.purpose != "leap":
        return part.reject(i, a, "no-position", f"{a.position} is not a held LEAP")
    q = ctx.market.quote(h.contract)
    if q is None:
        return part.reject(i, a, "no-quote", f"no price for {h.contract.key}")
    n = len(_rungs(ctx, h.account, h.contract.right)) + 1
    new = (  # forward on the same underlying, one rung further out
        _growth_contract(ctx, h.account, n, h.contract.symbol)
        if h.contract.right == "C"
        else _hedge_contract(ctx, n)
    )
    why = f"LEAP roll: {a.params.get('why', 'time')}"
    part.orders += orders_for(
        ctx,
        i,
        a,
        h.contract,
        OrderSide.SELL,
        h.quantity,
        q.mid,
        "leap",
        leg="rs",
        funding=LEAP,
        why=why,
    )
    if new is None or new == h.contract:
        part.reject(
            i,
            a,
            "none-in-band",
            "no next rung in the band: the rung is sold, not replaced",
            leg="rb",
        )
        return part
    proceeds = max(q.bid, 0.0) * h.quantity * h.contract.multiplier
    _buy(ctx, i, a, new, proceeds, "leap", "rb", part, funding=LEAP)
    return part
