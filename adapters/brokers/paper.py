"""PaperBroker: a simulated venue implementing the broker port (docs/execution.md, "Paper").

Deterministic: fills depend only on the orders and the market snapshot the venue was last
given (``sync``), never on the wall clock or randomness.

Fill model. A limit order is matched on submit, on replace and on every ``sync``:

* the venue's price for a sell is ``mid - touch x (mid - bid)``, for a buy
  ``mid + touch x (ask - mid)`` (``touch`` = 0.5: half way from mid to the touch); a limit
  that crosses it fills at that price (never worse than the limit); a market order fills at
  the bid (sell) / ask (buy);
* at most ``participation`` x the contract's daily volume fills per matching pass (at least
  one contract), so large orders fill partially and keep working;
* commissions: options $0.65 per contract (at least $1.00 per fill), stock $0.005 per share
  (at least $1.00); expiries and assignments are free.

Lifecycle. DAY orders still working at the session close (early close included) are cancelled.
At an expiry's session close each position settles on the underlying's close: out of the
money it expires worthless; a short put in the money is assigned (shares bought at the
strike), a short call in the money is called away (shares sold at the strike); a long option
in the money is settled for its intrinsic value. Each settlement is a ``Fill`` (``origin`` and
client order id ``expiry`` / ``assignment``) so the ledger books it like any execution.

Early assignment (``EarlyAssignment``, docs/decisions.md D82). Equity and ETF options are
American: their holder may exercise any day, and does when exercising beats selling - when the
option is deep in the money and its bid is below its intrinsic value (selling it would give
away value; QuantConnect Lean's default assignment model rests on the same no-arbitrage
argument). At every ``sync`` during a session in the ``window_days`` calendar days before
expiry (not the expiry day: its close settles it), a short equity option more than ``min_itm``
of the underlying's price in the money whose bid is below its intrinsic value is assigned in
full at that instant, on that instant's quotes (no look-ahead), as ``origin`` ``assignment``
fills. Index options (SPX, VIX) are European: never early.

The venue keeps its own book (orders, fills, positions). Given a ``VenueStore`` it saves the
book after every change, as a real venue outlives a crash of its client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from engine.execution.broker import (
    BrokerEvent,
    BrokerPosition,
    Fill,
    OrderRequest,
    OrderSide,
    OrderState,
    OrderStatus,
)
from engine.market import calendar
from engine.market.instruments import ContractSpec, SecType
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketDataPort, MarketSnapshot


@dataclass(frozen=True)
class PaperCosts:
    option_per_contract: float = 0.65
    stock_per_share: float = 0.005
    minimum: float = 1.00
    touch: float = 0.5
    participation: float = 0.25


@dataclass(frozen=True)
class EarlyAssignment:
    """When the paper venue assigns a short American option before its expiry (see above)."""

    enabled: bool = True
    window_days: int = 4  # calendar days before expiry in which holders are watched
    min_itm: float = 0.05  # in the money by more than this share of the underlying's price


@dataclass(frozen=True)
class BookChanges:
    """What changed in the venue's book since its last save, as JSON texts: a save costs what
    changed, not the whole history (a two-year backtest's book is ~1 MB of orders and fills)."""

    orders: tuple[tuple[int, str, str], ...]  # (place in the book, client order id, text)
    fills: tuple[tuple[int, str], ...]  # (place in the book, text), new since the last save
    rest: str  # {"positions": ..., "seeds": ..., "seq": ...}, whole each time (small)
    whole: bool = False  # the book's orders and fills are all here: replace what is stored


class VenueStore(Protocol):
    def load(self) -> dict | None: ...

    def save(self, book: BookChanges) -> None: ...  # see PaperBroker._changes


@dataclass
class _Order:
    request: OrderRequest
    broker_id: str
    state: OrderState
    filled: int = 0
    avg: float | None = None
    reason: str = ""
    at: datetime | None = None
    fills: int = 0

    def status(self, at: datetime) -> OrderStatus:
        return OrderStatus(
            client_order_id=self.request.client_order_id,
            broker_order_id=self.broker_id,
            state=self.state,
            filled=self.filled,
            remaining=self.request.quantity - self.filled,
            avg_fill_price=self.avg,
            reason=self.reason,
            at=at,
        )


class PaperBroker:
    name = "paper"
    is_live = False

    def __init__(
        self,
        market: MarketDataPort | None = None,
        *,
        costs: PaperCosts = PaperCosts(),
        store: VenueStore | None = None,
        early: EarlyAssignment = EarlyAssignment(),
    ):
        self._market = market
        self._costs = costs
        self._early = early
        self._store = store
        self._view: MarketView | None = None
        self._callbacks: list[Callable[[BrokerEvent], None]] = []
        self._connected = False
        self._orders: dict[str, _Order] = {}
        self._working: dict[str, _Order] = {}  # a subset of _orders that may still be open
        self._saved: dict[str, str] = {}  # client order id -> the text last saved
        self._place: dict[str, int] = {}  # client order id -> its place in the saved book
        self._saved_final: set[str] = set()  # final orders saved as such: they never change
        # _orders less _saved_final, in the same order: what a save looks at (not every order
        # ever placed, ~1,200 in the README's two years, at each of its ~3,000 saves)
        self._unsaved: dict[str, _Order] = {}
        self._saved_fills = 0  # _fills[:n] are saved
        self._whole = False  # the next save rewrites the whole book (one loaded in the old form)
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, str], tuple[ContractSpec, int, float]] = {}
        self._seeds: set[str] = set()
        self._seq = 0
        self._load()

    # ------------------------------------------------------------------ the port

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def routes(self, account: str) -> bool:
        """The simulated venue keeps a book for any account name."""
        return True

    def is_connected(self) -> bool:
        return self._connected

    def subscribe(self, callback: Callable[[BrokerEvent], None]) -> None:
        self._callbacks.append(callback)

    def submit(self, order: OrderRequest) -> OrderStatus:
        known = self._orders.get(order.client_order_id)
        if known is not None:  # idempotent: the same client order id is never a second order
            return known.status(self._now())
        self._seq += 1
        o = _Order(order, f"P{self._seq}", OrderState.SUBMITTED, at=self._now())
        self._orders[order.client_order_id] = o
        self._working[order.client_order_id] = o
        self._unsaved[order.client_order_id] = o
        self._emit_status(o)
        self._match(o)
        self._save()
        return o.status(self._now())

    def cancel(self, client_order_id: str) -> OrderStatus:
        o = self._get(client_order_id)
        if not o.state.is_final:
            o.state, o.reason = OrderState.CANCELLED, "cancelled by client"
            self._emit_status(o)
            self._save()
        return o.status(self._now())

    def replace(self, client_order_id: str, limit_price: float) -> OrderStatus:
        o = self._get(client_order_id)
        if not o.state.is_final:
            o.request = o.request.model_copy(update={"limit_price": limit_price})
            self._match(o)
            self._save()
        return o.status(self._now())

    def open_orders(self) -> Sequence[OrderStatus]:
        return [o.status(self._now()) for o in self._open()]

    def status(self, client_order_id: str) -> OrderStatus:
        """The venue's last word on one order (``KeyError`` if it never had it)."""
        return self._get(client_order_id).status(self._now())

    def _open(self) -> list[_Order]:
        """Orders not yet final. Finished orders leave ``_working`` for good (a final state is
        final), so every tick costs the open orders, not the whole history."""
        for coid in [c for c, o in self._working.items() if o.state.is_final]:
            del self._working[coid]
        return list(self._working.values())

    def orders(self) -> Sequence[OrderStatus]:
        """Every order the venue ever accepted (tests and reconciliation reports)."""
        return [o.status(self._now()) for o in self._orders.values()]

    def requests(self) -> Sequence[OrderRequest]:
        return [o.request for o in self._orders.values()]

    def positions(self) -> Sequence[BrokerPosition]:
        return [
            BrokerPosition(account=a, contract=c, quantity=q, avg_cost=p)
            for (a, _), (c, q, p) in sorted(self._positions.items())
            if q
        ]

    def fills(self, since: datetime | None = None) -> Sequence[Fill]:
        if since is None:
            return list(self._fills)
        return [f for f in self._fills if f.at >= since]

    # ------------------------------------------------------------------ simulation

    def sync(self, at: datetime, snapshot: MarketSnapshot | None = None) -> None:
        """Move the venue to ``at``: expire DAY orders, settle expiries, match working orders.
        Without ``snapshot`` the prices of the last one stay in force (the cycle passes its own:
        only it knows the constitution whose ATR and VIX values a snapshot is taken under)."""
        if snapshot is not None:
            self._view = MarketView(snapshot)
        changed = self._expire_orders(at) | self._settle(at) | self._assign_early(at)
        for o in self._open():
            if not o.state.is_final:
                changed |= self._match(o)
        if changed:
            self._save()

    def seed_position(
        self, seed_id: str, account: str, contract: ContractSpec, quantity: int, avg_cost: float
    ) -> None:
        """Holdings brought in kind (idempotent by ``seed_id``)."""
        if seed_id in self._seeds:
            return
        self._seeds.add(seed_id)
        self._book(account, contract, quantity, avg_cost)
        self._save()

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        if self._view is None:
            raise RuntimeError("PaperBroker.sync(at, snapshot) must be called before trading")
        return self._view.as_of

    def _get(self, coid: str) -> _Order:
        o = self._orders.get(coid)
        if o is None:
            raise KeyError(f"no order {coid} at the paper venue")
        return o

    def _price(self, o: _Order) -> tuple[float, int] | None:
        q = self._view.quote(o.request.contract) if self._view else None
        if q is None or q.ask <= 0:
            return None
        sell = o.request.side is OrderSide.SELL
        if o.request.order_type == "MKT":
            price = q.bid if sell else q.ask
        else:
            price = (
                q.mid - self._costs.touch * (q.mid - q.bid)
                if sell
                else q.mid + self._costs.touch * (q.ask - q.mid)
            )
            price = round(price, 2)
            limit = o.request.limit_price
            if limit is None or (sell and limit > price) or (not sell and limit < price):
                return None  # (a limit order without a limit never fills)
        available = max(1, int(math.floor(self._costs.participation * q.volume)))
        return price, available

    def _match(self, o: _Order) -> bool:
        if o.state.is_final:
            return False
        priced = self._price(o)
        if priced is None or priced[0] <= 0:
            return False
        price, available = priced
        qty = min(o.request.quantity - o.filled, available)
        o.avg = ((o.avg or 0.0) * o.filled + price * qty) / (o.filled + qty)
        o.filled += qty
        o.fills += 1
        o.state = (
            OrderState.FILLED if o.filled == o.request.quantity else OrderState.PARTIALLY_FILLED
        )
        r = o.request
        fill = Fill(
            client_order_id=r.client_order_id,
            broker_order_id=o.broker_id,
            execution_id=f"{o.broker_id}.{o.fills}",
            account=r.account,
            contract=r.contract,
            side=r.side,
            quantity=qty,
            price=price,
            commission=self._commission(r.contract, qty),
            at=self._now(),
        )
        self._record_fill(fill)
        self._emit_status(o)
        return True

    def _commission(self, contract: ContractSpec, qty: int) -> float:
        rate = (
            self._costs.stock_per_share
            if contract.sec_type is SecType.STOCK
            else self._costs.option_per_contract
        )
        return round(max(rate * qty, self._costs.minimum), 2)

    def _record_fill(self, fill: Fill) -> None:
        signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
        self._book(fill.account, fill.contract, signed, fill.price)
        self._fills.append(fill)
        for cb in self._callbacks:
            cb(BrokerEvent(kind="fill", fill=fill))

    def _book(self, account: str, contract: ContractSpec, signed: int, price: float) -> None:
        key = (account, contract.key)
        _, qty, avg = self._positions.get(key, (contract, 0, 0.0))
        new = qty + signed
        if new == 0:
            self._positions.pop(key, None)
            return
        if qty == 0 or (qty > 0) == (signed > 0):
            avg = (avg * abs(qty) + price * abs(signed)) / abs(new)
        elif (new > 0) != (qty > 0):
            avg = price
        self._positions[key] = (contract, new, avg)

    def _emit_status(self, o: _Order) -> None:
        status = o.status(self._now())
        for cb in self._callbacks:
            cb(BrokerEvent(kind="status", status=status))

    def _expire_orders(self, at: datetime) -> bool:
        changed = False
        for o in self._open():
            if o.request.time_in_force != "DAY" or o.at is None:
                continue
            close = calendar.session_close(calendar.new_york_date(o.at))
            if close is None or at >= close:
                o.state, o.reason = OrderState.CANCELLED, "DAY order expired at the session close"
                self._emit_status(o)
                changed = True
        return changed

    def _settle(self, at: datetime) -> bool:
        changed = False
        for (account, _), (contract, qty, _avg) in sorted(self._positions.items()):
            if contract.expiry is None:
                continue
            close = calendar.session_close(contract.expiry)
            if close is None or at < close:
                continue
            underlying = self._settlement_price(contract.symbol, contract.expiry)
            if underlying is None:
                continue
            for fill in _settlement_fills(account, contract, qty, underlying, close):
                self._record_fill(fill)
            changed = True
        return changed

    def _assign_early(self, at: datetime) -> bool:
        """Assign the short American options whose holders would exercise now (D82)."""
        day = calendar.new_york_date(at)
        opened, closed = calendar.session_open(day), calendar.session_close(day)
        if (
            not self._early.enabled
            or self._view is None
            or opened is None
            or closed is None
            or not opened <= at < closed
        ):
            return False
        changed = False
        for (account, _), (contract, qty, _avg) in sorted(self._positions.items()):
            if qty < 0 and self._exercised_early(contract, day):
                for fill in _assignment(
                    account, contract, qty, at, f"E{day:%Y%m%d}:{account}:{contract.key}"
                ):
                    self._record_fill(fill)
                changed = True
        return changed

    def _exercised_early(self, c: ContractSpec, day: date) -> bool:
        """Would the holder of ``c`` exercise today: an American option, before its expiry day
        and inside the window, deep in the money, and worth more exercised than sold?"""
        if c.sec_type is not SecType.OPTION or c.expiry is None or c.strike is None:
            return False
        if not 0 < (c.expiry - day).days <= self._early.window_days:
            return False
        spot = self._view.spot(c.symbol) if self._view else None
        quote = self._view.quote(c) if self._view else None
        if not spot or quote is None:
            return False
        intrinsic = spot - c.strike if c.right == "C" else c.strike - spot
        return intrinsic > self._early.min_itm * spot and quote.bid < intrinsic

    def _settlement_price(self, symbol: str, day: date) -> float | None:
        source = "SPY" if symbol == "SPX" else symbol
        if self._market is not None:
            h = self._market.history(source, day, day)
            if len(h):
                return float(h.close[-1]) * (10 if symbol == "SPX" else 1)
        return self._view.spot(symbol) if self._view else None

    # ------------------------------------------------------------------ persistence

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(self._changes())

    def _changes(self) -> BookChanges:
        """The orders whose text changed and the fills added since the last save. Final
        orders never change, so each is written once more at most."""
        orders, settled = [], []
        for coid, o in (self._orders if self._whole else self._unsaved).items():
            text = self._order_text(o)
            if self._whole or self._saved.get(coid) != text:
                place = self._place.setdefault(coid, len(self._place))
                orders.append((place, coid, text))
                self._saved[coid] = text
            if o.state.is_final:
                settled.append(coid)
                self._saved.pop(coid, None)
        for coid in settled:
            self._saved_final.add(coid)
            self._unsaved.pop(coid, None)
        start = 0 if self._whole else self._saved_fills
        fills = tuple(
            (n, _json(f.model_dump(mode="json"))) for n, f in enumerate(self._fills[start:], start)
        )
        self._saved_fills = len(self._fills)
        positions = [
            {"account": a, "contract": c.model_dump(mode="json"), "quantity": q, "avg": p}
            for (a, _), (c, q, p) in sorted(self._positions.items())
        ]
        rest = _json({"positions": positions, "seeds": sorted(self._seeds), "seq": self._seq})
        whole, self._whole = self._whole, False
        return BookChanges(tuple(orders), fills, rest, whole)

    def _order_text(self, o: _Order) -> str:
        return _json(
            {
                "request": o.request.model_dump(mode="json"),
                "broker_id": o.broker_id,
                "state": o.state.value,
                "filled": o.filled,
                "avg": o.avg,
                "reason": o.reason,
                "at": o.at.isoformat() if o.at else None,
                "fills": o.fills,
            }
        )

    def _load(self) -> None:
        book = self._store.load() if self._store is not None else None
        if not book:
            return
        self._seq = book["seq"]
        self._seeds = set(book["seeds"])
        self._whole = bool(book.get("whole"))  # the one-row form of before: rewrite it whole
        for d in book["orders"]:
            req = OrderRequest.model_validate(d["request"])
            coid = req.client_order_id
            self._place[coid] = len(self._place)
            self._orders[coid] = self._working[coid] = _Order(
                req,
                d["broker_id"],
                OrderState(d["state"]),
                d["filled"],
                d["avg"],
                d["reason"],
                datetime.fromisoformat(d["at"]) if d["at"] else None,
                d["fills"],
            )
        for coid, o in self._orders.items():  # as saved: only what changes from here is saved
            if o.state.is_final:
                self._saved_final.add(coid)
            else:
                self._saved[coid] = self._order_text(o)
                self._unsaved[coid] = o
        self._fills = [Fill.model_validate(f) for f in book["fills"]]
        self._saved_fills = len(self._fills)
        for p in book["positions"]:
            c = ContractSpec.model_validate(p["contract"])
            self._positions[(p["account"], c.key)] = (c, p["quantity"], p["avg"])


def _settlement_fills(
    account: str, c: ContractSpec, qty: int, spot: float, at: datetime
) -> list[Fill]:
    """Expiry of one position: worthless, assigned / called away (short), or cash-settled (long)."""
    if c.strike is None:
        raise ValueError(f"{c.key} has no strike: only options expire")
    intrinsic = max(spot - c.strike, 0.0) if c.right == "C" else max(c.strike - spot, 0.0)
    close_side = OrderSide.BUY if qty < 0 else OrderSide.SELL
    tag = f"{account}:{c.key}"
    if qty > 0 or intrinsic <= 0:
        price = round(intrinsic, 2) if qty > 0 else 0.0
        return [
            Fill(
                client_order_id="expiry",
                broker_order_id="",
                execution_id=f"X:{tag}",
                account=account,
                contract=c,
                side=close_side,
                quantity=abs(qty),
                price=price,
                at=at,
                origin="expiry",
            )
        ]
    return _assignment(account, c, qty, at, tag)


def _assignment(account: str, c: ContractSpec, qty: int, at: datetime, tag: str) -> list[Fill]:
    """A short option assigned: bought back at 0, and the shares delivered at the strike
    (bought for a put, sold for a call)."""
    shares = abs(qty) * c.multiplier
    stock_side = OrderSide.BUY if c.right == "P" else OrderSide.SELL
    stock = ContractSpec(sec_type=SecType.STOCK, symbol=c.symbol, multiplier=1)
    return [
        Fill(
            client_order_id="assignment",
            broker_order_id="",
            execution_id=f"X:{tag}",
            account=account,
            contract=c,
            side=OrderSide.BUY,
            quantity=abs(qty),
            price=0.0,
            at=at,
            origin="assignment",
        ),
        Fill(
            client_order_id="assignment",
            broker_order_id="",
            execution_id=f"A:{tag}",
            account=account,
            contract=stock,
            side=stock_side,
            quantity=shares,
            price=c.strike,
            at=at,
            origin="assignment",
        ),
    ]


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
