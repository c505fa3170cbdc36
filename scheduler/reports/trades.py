"""Closed trades (round trips) from the ledger's fills, first in first out.

A trade closes when a fill reduces a holding: a short put bought back, expired (the venue's
``expiry`` fill at the settlement price) or assigned (``assignment``); shares sold by a call's
assignment. Its P&L is the price difference times quantity times multiplier, less the
commissions of both legs (pro rata). Holdings that did not come from a fill - shares brought
in kind (``DepositShares``), positions a merge moved - open lots at their recorded price, so
every close has an entry. docs/decisions.md D103.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from adapters.storage.readers import FillRow, LedgerOpRow


@dataclass
class _Lot:
    quantity: int  # signed: negative is short
    price: float
    at: datetime
    commission: float  # per unit, carried into the close


@dataclass(frozen=True)
class Trade:
    account: str
    contract_key: str
    symbol: str
    instrument: str  # put | call | stock
    side: str  # short | long (the opening side)
    quantity: int
    opened_at: datetime
    closed_at: datetime
    entry_price: float
    exit_price: float
    pnl: float
    closed_by: str  # order | expiry | assignment

    @property
    def win(self) -> bool:
        return self.pnl > 0


def _instrument(f: FillRow) -> str:
    if f.sec_type == "STK":
        return "stock"
    return "put" if f.right == "P" else "call"


class _Book:
    def __init__(self) -> None:
        self.lots: dict[tuple[str, str], deque[_Lot]] = defaultdict(deque)
        self.trades: list[Trade] = []

    def seed(self, account: str, key: str, quantity: int, price: float, at: datetime) -> None:
        if quantity:
            self.lots[(account, key)].append(_Lot(quantity, price, at, 0.0))

    def move(self, source: str, target: str) -> None:
        for (account, key), lots in list(self.lots.items()):
            if account == source and lots:
                self.lots[(target, key)].extend(lots)
                lots.clear()

    def fill(self, f: FillRow) -> None:
        signed = f.quantity if f.side == "BUY" else -f.quantity
        per_unit = f.commission / f.quantity if f.quantity else 0.0
        lots = self.lots[(f.account, f.contract_key)]
        remaining = self._close(f, lots, signed, per_unit)
        if remaining:
            lots.append(_Lot(remaining, f.price, f.at, per_unit))

    def _close(self, f: FillRow, lots: deque[_Lot], signed: int, per_unit: float) -> int:
        """Close ``signed`` against opposite lots; return what is left to open."""
        closed, cost, pnl, opened = 0, 0.0, 0.0, None
        side = "long" if lots and lots[0].quantity > 0 else "short"
        while signed and lots and (lots[0].quantity > 0) != (signed > 0):
            lot = lots[0]
            take = min(abs(lot.quantity), abs(signed))
            direction = 1 if lot.quantity > 0 else -1  # long gains when the price rises
            pnl += direction * (f.price - lot.price) * take * f.multiplier
            pnl -= (lot.commission + per_unit) * take
            cost += lot.price * take
            opened = lot.at if opened is None else min(opened, lot.at)
            closed += take
            lot.quantity -= direction * take
            signed += direction * take
            if lot.quantity == 0:
                lots.popleft()
        if closed and opened is not None:
            self.trades.append(
                Trade(
                    account=f.account,
                    contract_key=f.contract_key,
                    symbol=f.symbol,
                    instrument=_instrument(f),
                    side=side,
                    quantity=closed,
                    opened_at=opened,
                    closed_at=f.at,
                    entry_price=cost / closed,
                    exit_price=f.price,
                    pnl=round(pnl, 2),
                    closed_by=f.origin,
                )
            )
        return signed


def closed_trades(fills: Iterable[FillRow], ops: Iterable[LedgerOpRow]) -> list[Trade]:
    """Every closed trade, in closing order. ``ops``: the ledger's ``DepositShares`` and
    ``MergeAccount`` operations (holdings that did not come from fills)."""
    events: list[tuple[datetime, int, object]] = [(f.at, 1, f) for f in fills]
    events += [(o.at, 0, o) for o in ops if o.kind in ("DepositShares", "MergeAccount")]
    book = _Book()
    for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if isinstance(event, FillRow):
            book.fill(event)
        else:
            _apply_op(book, event)  # type: ignore[arg-type]
    return book.trades


def _apply_op(book: _Book, op: LedgerOpRow) -> None:
    b = op.body
    if op.kind == "DepositShares":
        symbol = b["contract"]["symbol"]
        book.seed(b["account"], symbol, int(b["shares"]), float(b["price"]), op.at)
    elif op.kind == "MergeAccount":
        book.move(b["source"], b["target"])
