"""What the planner produces, and the context and helpers its parts share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from constitution.models import Constitution
from engine.execution.broker import OrderRequest, OrderSide
from engine.execution.ledger import CASH, Holding, LedgerOp, LedgerState, Purpose
from engine.execution.risk import Limits
from engine.market import calendar
from engine.market.instruments import ContractSpec, SecType
from engine.market.quotes import MarketView
from engine.records.decision import Action, Decision


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    request: OrderRequest
    action_index: int
    action_kind: str
    purpose: Purpose
    funding: str = CASH
    ladder: tuple[float, ...] = ()  # limit prices, first to last acceptable; () for MKT
    why: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An approved action the planner could not turn into orders, with the reason."""

    action_index: int
    kind: str
    account: str | None
    symbol: str | None
    reason: str  # stable code: none-in-band, none-liquid, per-symbol-cap, insufficient-cash, ...
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action_index,
            "kind": self.kind,
            "account": self.account,
            "symbol": self.symbol,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Plan:
    orders: tuple[PlannedOrder, ...] = ()
    ops: tuple[LedgerOp, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    notes: tuple[dict, ...] = ()


@dataclass
class Partial:
    """What one action handler adds (mutable only inside the planner)."""

    orders: list[PlannedOrder] = field(default_factory=list)
    ops: list[LedgerOp] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)

    def reject(self, i: int, a: Action, reason: str, detail: str = "") -> Partial:
        self.rejections.append(Rejection(i, a.kind, a.account, a.symbol, reason, detail))
        return self


@dataclass
class Context:
    c: Constitution
    decision: Decision
    state: LedgerState
    market: MarketView
    limits: Limits
    facts_accounts: Mapping[str, dict]
    by_key: Mapping[str, Holding]  # facts position key -> holding
    leap_added: dict[str, float] = field(default_factory=dict)  # LEAP funds moved this plan
    # (account, contract key, side) -> quantity this plan has ordered so far
    planned: dict[tuple[str, str, OrderSide], int] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.market.today

    def equity(self, account: str) -> float:
        return float(self.facts_accounts.get(account, {}).get("equity", 0.0))

    def cash(self, account: str) -> float:
        return self.state.balance(account) / 100

    def coid(self, i: int, leg: str) -> str:
        return f"{self.decision.decision_id}:{i}:{leg}"

    def reducible(self, account: str, contract: ContractSpec, side: OrderSide) -> int | None:
        """How much more an order on ``side`` may reduce the account's position in
        ``contract`` without taking it through zero: what is held, less what working orders
        and this plan's orders on that side already reduce (never below 0). None when an order
        on ``side`` does not reduce the position (it opens or adds to it)."""
        return reducible(self.state, account, contract, side, self.planned)


def option(
    symbol: str, expiry: date, strike: float, right: str, sec_type: SecType = SecType.OPTION
) -> ContractSpec:
    return ContractSpec(
        sec_type=sec_type,
        symbol=symbol,
        expiry=expiry,
        strike=float(strike),
        right="C" if right in ("C", "call") else "P",
    )


def ladder(mid: float, side: OrderSide, max_worse: float, steps: int = 2) -> tuple[float, ...]:
    """Limit prices from mid to the worst acceptable (mid -/+ max_worse), in ``steps`` moves:
    the cancel-replace sequence (docs/execution.md)."""
    sign = -1 if side is OrderSide.SELL else 1
    prices = [
        round(max(mid * (1 + sign * max_worse * k / steps), 0.01), 2) for k in range(steps + 1)
    ]
    return tuple(dict.fromkeys(prices))


def slices(quantity: int, slice_above: int) -> list[int]:
    """Orders above ``slice_above`` contracts go out as slices of at most that size."""
    if quantity <= slice_above:
        return [quantity]
    out = [slice_above] * (quantity // slice_above)
    if quantity % slice_above:
        out.append(quantity % slice_above)
    return out


def orders_for(
    ctx: Context,
    i: int,
    a: Action,
    contract: ContractSpec,
    side: OrderSide,
    quantity: int,
    mid: float | None,
    purpose: Purpose,
    *,
    leg: str = "o",
    market_order: bool = False,
    funding: str = CASH,
    why: str = "",
) -> list[PlannedOrder]:
    out = []
    # §0 "slice if > 50 contracts": options only; a share order is one order
    slice_above = quantity if contract.sec_type is SecType.STOCK else ctx.c.orders.slice_above
    for n, qty in enumerate(slices(quantity, slice_above)):
        prices = (
            () if market_order or mid is None else ladder(mid, side, ctx.c.orders.max_worse_pct)
        )
        request = OrderRequest(
            client_order_id=ctx.coid(i, f"{leg}{n}"),
            decision_id=ctx.decision.decision_id,
            account=a.account,
            contract=contract,
            side=side,
            quantity=qty,
            order_type="MKT" if not prices else "LMT",
            limit_price=prices[0] if prices else None,
        )
        out.append(PlannedOrder(request, i, a.kind, purpose, funding, prices, why))
        key = (request.account, contract.key, side)
        ctx.planned[key] = ctx.planned.get(key, 0) + qty
    return out


def signed(side: OrderSide, quantity: int) -> int:
    return quantity if side is OrderSide.BUY else -quantity


def reducible(
    state: LedgerState,
    account: str,
    contract: ContractSpec,
    side: OrderSide,
    planned: Mapping[tuple[str, str, OrderSide], int],
) -> int | None:
    """See ``Context.reducible``. The position's direction is that of what is held or, with
    nothing held, of what is working and planned: an order against the direction reduces."""
    held = next(
        (h.quantity for h in state.holdings_of(account) if h.contract.key == contract.key), 0
    )
    pending = {
        s: planned.get((account, contract.key, s), 0) for s in (OrderSide.BUY, OrderSide.SELL)
    }
    for o in state.open_orders(account):
        if o.request.contract.key == contract.key:
            pending[o.request.side] += o.request.quantity - o.filled
    direction = held or pending[OrderSide.BUY] - pending[OrderSide.SELL]
    if direction == 0 or (side is OrderSide.BUY) == (direction > 0):
        return None
    return max(abs(held) - pending[side], 0)


def never_crossing(
    state: LedgerState, orders: Sequence[PlannedOrder]
) -> tuple[tuple[PlannedOrder, ...], tuple[Rejection, ...]]:
    """The plan's last check: with the orders working and those kept before it, no order
    takes a position through zero. An action one of whose orders would is dropped whole (a
    roll's open leg never goes out without its close) with a ``would-cross-zero`` rejection.
    The handlers net already (``Context.reducible``); this refuses what one got wrong."""
    legs: dict[int, list[PlannedOrder]] = {}
    for o in orders:
        legs.setdefault(o.action_index, []).append(o)
    planned: dict[tuple[str, str, OrderSide], int] = {}
    kept: list[PlannedOrder] = []
    refused: list[Rejection] = []
    for i, group in legs.items():
        trial, bad = dict(planned), None
        for o in group:
            r = o.request
            cap = reducible(state, r.account, r.contract, r.side, trial)
            if cap is not None and r.quantity > cap:
                bad = (o, cap)
                break
            key = (r.account, r.contract.key, r.side)
            trial[key] = trial.get(key, 0) + r.quantity
        if bad is None:
            planned, kept = trial, kept + group
            continue
        o, cap = bad
        r = o.request
        refused.append(
            Rejection(
                i,
                o.action_kind,
                r.account,
                r.contract.symbol,
                "would-cross-zero",
                f"{r.side.value} {r.quantity} {r.contract.key}: at most {cap} can still "
                "reduce the position (held, less working and planned orders)",
            )
        )
    return tuple(kept), tuple(refused)


def pick_expiry(
    expiries, today: date, lo: int, hi: int, tolerance: int = 3
) -> tuple[date | None, bool]:
    """The earliest listed expiry with calendar DTE in [lo, hi]; else the nearest within
    ``tolerance`` days of the band (D19: put entries pass 0 - inside the band or none; covered
    calls' "5 DTE" from Monday and rolls' +3-4 DTE may fall back to the nearest listed weekly).
    Returns (expiry, fell_back)."""
    best, best_gap = None, math.inf
    for e in sorted(expiries):
        dte = (e - today).days
        if dte < 0:
            continue
        if lo <= dte <= hi:
            return e, False
        gap = lo - dte if dte < lo else dte - hi
        if gap < best_gap:
            best, best_gap = e, gap
    return (best, True) if best_gap <= tolerance else (None, False)


def month_expiry(today: date, months: int) -> date:
    """The monthly expiry (third Friday, or the session before it) ``months`` months out."""
    y, m = today.year + (today.month - 1 + months) // 12, (today.month - 1 + months) % 12 + 1
    first = date(y, m, 1)
    friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
    if friday <= calendar.CALENDAR_LAST and not calendar.is_session(friday):
        return calendar.previous_session(friday)
    return friday


def dte_range(value: Any) -> tuple[int, int]:
    if isinstance(value, dict):
        return int(value["min"]), int(value["max"])
    return int(value), int(value)


def band(value: Any) -> tuple[float, float]:
    return float(value["min"]), float(value["max"])


def put_collateral(ctx: Context, account: str, symbol: str | None = None) -> float:
    """Cash securing short puts, held and working (strike x multiplier x contracts)."""
    total = 0.0
    for h in ctx.state.holdings_of(account):
        c = h.contract
        if c.right == "P" and h.quantity < 0 and (symbol is None or c.symbol == symbol):
            total += c.strike * c.multiplier * -h.quantity
    for o in ctx.state.open_orders(account):
        c = o.request.contract
        if (
            c.right == "P"
            and o.request.side is OrderSide.SELL
            and (symbol is None or c.symbol == symbol)
        ):
            total += c.strike * c.multiplier * (o.request.quantity - o.filled)
    return total


def shares_held(ctx: Context, account: str, symbol: str) -> int:
    """Shares of ``symbol`` the account holds (long stock)."""
    return sum(
        h.quantity
        for h in ctx.state.holdings_of(account)
        if h.contract.sec_type is SecType.STOCK and h.contract.symbol == symbol and h.quantity > 0
    )


def symbol_exposure(ctx: Context, account: str, symbol: str) -> float:
    """What the §0 per-symbol cap counts (D140): the account's shares of ``symbol`` at the
    mark (the underlying's price; their cost when it has none) plus the cash securing its short
    puts on it, held and working. Assigned shares are exposure to the symbol as much as the put
    that delivered them: counting collateral alone let repeated assignments stack one symbol
    past the cap."""
    spot = ctx.market.spot(symbol)
    shares = 0.0
    for h in ctx.state.holdings_of(account):
        c = h.contract
        if c.sec_type is SecType.STOCK and c.symbol == symbol and h.quantity > 0:
            shares += h.quantity * (spot if spot else h.avg_price)
    return shares + put_collateral(ctx, account, symbol)


def short_margin(ctx: Context, account: str) -> float:
    """A Reg-T style requirement of the short options: 20 % of the underlying less the
    out-of-the-money amount, at least 10 % of the strike (covered calls need none)."""
    total = 0.0
    for h in ctx.state.holdings_of(account):
        c = h.contract
        if h.quantity >= 0 or c.sec_type is SecType.STOCK or c.right == "C":
            continue
        spot = ctx.market.spot(c.symbol) or c.strike
        otm = max(spot - c.strike, 0.0)
        total += max(0.20 * spot - otm, 0.10 * c.strike) * c.multiplier * -h.quantity
    return total
