"""FIFO lots and realised P&L, pure (§10 "realized vs unrealized PnL separated").

A holding is a stack of lots (signed quantity, price, opening date). A fill on the same side
adds a lot; a fill on the other side closes the oldest lots first (FIFO), and what it closes is
*realised*: for a long lot (close - open) x units x multiplier, for a short lot (open - close)
x units x multiplier. A fill that crosses zero closes every lot and opens one at its price.
Premium is realised when the short option is closed: bought back, expired (a fill at 0) or
assigned (the paper venue and IB settle the option at 0 beside the share delivery), so an
assigned put's premium is income of that quarter and the shares' cost is the strike
(docs/decisions.md D62). What is still open is *unrealised*: its value at the mark less its cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.market.instruments import ContractSpec


@dataclass(frozen=True, slots=True)
class Lot:
    quantity: int  # signed: negative is short
    price: float  # per share (option premium per share, stock price)
    opened: date


@dataclass(frozen=True, slots=True)
class Closed:
    """Part of a lot closed by a fill: ``quantity`` signed as the lot was."""

    lot: Lot
    quantity: int


def net(
    lots: tuple[Lot, ...], quantity: int, price: float, day: date
) -> tuple[tuple[Lot, ...], tuple[Closed, ...]]:
    """``lots`` after a fill of signed ``quantity`` at ``price`` on ``day``, and what it closed."""
    if quantity == 0:
        return lots, ()
    if not lots or (lots[0].quantity > 0) == (quantity > 0):
        return (*lots, Lot(quantity, price, day)), ()
    left, closed, remaining = abs(quantity), [], list(lots)
    while remaining and left:
        lot = remaining[0]
        n = min(abs(lot.quantity), left)
        sign = 1 if lot.quantity > 0 else -1
        closed.append(Closed(lot, sign * n))
        left -= n
        rest = abs(lot.quantity) - n
        remaining = (
            [Lot(sign * rest, lot.price, lot.opened), *remaining[1:]] if rest else remaining[1:]
        )
    if left:  # crossed through zero: the rest opens a lot on the fill's side
        remaining = [Lot(left if quantity > 0 else -left, price, day)]
    return tuple(remaining), tuple(closed)


def gain_cents(closed: Closed, close_price: float, contract: ContractSpec) -> int:
    """Realised gain of a closed piece, in cents."""
    per_unit = close_price - closed.lot.price
    return int(round(per_unit * closed.quantity * contract.multiplier * 100))


def average(lots: tuple[Lot, ...]) -> float:
    units = sum(abs(lot.quantity) for lot in lots)
    return sum(abs(lot.quantity) * lot.price for lot in lots) / units if units else 0.0


def unrealised(lots: tuple[Lot, ...], mark: float, contract: ContractSpec) -> float:
    """Dollars the open lots would realise at ``mark``."""
    return sum((mark - lot.price) * lot.quantity * contract.multiplier for lot in lots)
