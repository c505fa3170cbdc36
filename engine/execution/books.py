"""The books a quarter is reported on (§10, §11, §17), pure: the tax ledger (one line per lot
closed, short or long term, wash sales flagged), realised vs unrealised P&L per account, the
tax reserve and the reinvestment, the hedges held, and the LEAP ladder.

Terms and wash sales (seed 001's tax workstream; docs/decisions.md D62): a lot held more than
``tax.long_term_after_days`` is long term; a realised *loss on shares* is flagged as a wash
sale when shares of the same symbol were acquired in the same account within
``tax.wash_sale_days`` before or after the sale (an assignment is an acquisition). Option
losses are not flagged (whether two options are "substantially identical" is a question for
the tax adviser the report goes to). Flags are computed from the lots, so a purchase after the
sale flags the loss in every report made after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from constitution.models import Constitution
from engine.execution.ledger import CASH, LEAP, TAX, Holding, LedgerState, Realised
from engine.execution.lots import unrealised
from engine.market.instruments import SecType
from engine.market.quotes import MarketView

MONTH_DAYS = 30.44


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaxLine(_Frozen):
    account: str
    contract: str
    symbol: str
    kind: str  # stock | option
    purpose: str
    quantity: int  # signed as the lot was (negative: a short option)
    opened: date
    closed: date
    open_price: float
    close_price: float
    gain: float  # dollars
    term: str  # short | long
    wash_sale: bool
    origin: str  # order | expiry | assignment


class AccountBooks(_Frozen):
    account: str
    kind: str
    realised: float  # this quarter
    unrealised: float  # at the marks of the report's instant
    tax_reserve: float  # balance of the tax reserve bucket
    leap_fund: float
    cash: float
    reinvested: bool
    reserved_this_quarter: float = 0.0
    leaps_this_quarter: float = 0.0
    contracts_this_quarter: float = 0.0


class HoldingLine(_Frozen):
    account: str
    contract: str
    quantity: int
    cost: float  # per share
    mark: float | None
    unrealised: float
    months_left: float | None = None
    delta: float | None = None
    role: str = ""  # hedge | growth (LEAP call) | hedge_put (LEAP put)


class LeapLedgerLine(_Frozen):
    """§17 the dedicated LEAP ledger, hedge and compounding (growth) LEAPs kept apart."""

    role: str  # growth | hedge_put
    rungs: int
    contracts: int
    cost: float  # dollars paid for what is held
    value: float  # at the marks
    unrealised: float
    realised_this_quarter: float


class QuarterBooks(_Frozen):
    quarter: str
    as_of: date
    accounts: tuple[AccountBooks, ...]
    tax_lines: tuple[TaxLine, ...]
    hedges: tuple[HoldingLine, ...]
    leap_ladder: tuple[HoldingLine, ...]
    leap_ledger: tuple[LeapLedgerLine, ...] = ()
    short_term_gain: float = 0.0
    long_term_gain: float = 0.0
    wash_sales: int = 0
    notes: tuple[str, ...] = Field(default_factory=tuple)


def _acquisitions(state: LedgerState, realised: Sequence[Realised]) -> dict:
    """(account, symbol) -> [(opened, price)] of every share lot, closed or open."""
    out: dict[tuple[str, str], set[tuple[date, float]]] = {}
    for r in realised:
        if r.contract.sec_type is SecType.STOCK:
            out.setdefault((r.account, r.contract.symbol), set()).add((r.opened, r.open_price))
    for h in state.holdings.values():
        if h.contract.sec_type is SecType.STOCK:
            for lot in h.open_lots():
                out.setdefault((h.account, h.contract.symbol), set()).add((lot.opened, lot.price))
    return out


def tax_lines(
    c: Constitution, state: LedgerState, realised: Sequence[Realised], quarter: str | None = None
) -> list[TaxLine]:
    """The tax ledger: every realised line (of ``quarter``, when given), classified."""
    from engine.execution.ledger import quarter_of

    window = timedelta(days=c.tax.wash_sale_days)
    acquired = _acquisitions(state, realised)
    out = []
    for r in realised:
        if quarter is not None and quarter_of(r.closed) != quarter:
            continue
        stock = r.contract.sec_type is SecType.STOCK
        wash = (
            stock
            and r.gain < 0
            and any(
                abs((day - r.closed).days) <= window.days
                and (day, price) != (r.opened, r.open_price)
                for day, price in acquired.get((r.account, r.contract.symbol), ())
            )
        )
        out.append(
            TaxLine(
                account=r.account,
                contract=r.contract.key,
                symbol=r.contract.symbol,
                kind="stock" if stock else "option",
                purpose=r.purpose,
                quantity=r.quantity,
                opened=r.opened,
                closed=r.closed,
                open_price=r.open_price,
                close_price=r.close_price,
                gain=r.gain / 100,
                term="long" if (r.closed - r.opened).days > c.tax.long_term_after_days else "short",
                wash_sale=bool(wash),
                origin=r.origin,
            )
        )
    return out


def _line(h: Holding, view: MarketView, role: str = "") -> HoldingLine:
    q = view.quote(h.contract)
    mark = q.mid if q is not None else None
    left = (h.contract.expiry - view.today).days / MONTH_DAYS if h.contract.expiry else None
    return HoldingLine(
        account=h.account,
        contract=h.key,
        quantity=h.quantity,
        cost=round(h.avg_price, 4),
        mark=None if mark is None else round(mark, 4),
        unrealised=round(unrealised(h.open_lots(), mark, h.contract), 2)
        if mark is not None
        else 0.0,
        months_left=None if left is None else round(left, 2),
        delta=None if q is None or not hasattr(q, "delta") else round(float(q.delta), 3),
        role=role,
    )


def ladder(state: LedgerState, view: MarketView) -> list[HoldingLine]:
    """The LEAP ladder (§17): growth calls and hedge puts held as LEAPs, by account and expiry."""
    rungs = [h for h in state.holdings.values() if h.purpose == "leap" and h.quantity > 0]
    rungs.sort(key=lambda h: (h.account, h.contract.expiry or date.max, h.key))
    return [_line(h, view, "growth" if h.contract.right == "C" else "hedge_put") for h in rungs]


def hedges(state: LedgerState, view: MarketView) -> list[HoldingLine]:
    held = [h for h in state.holdings.values() if h.purpose == "hedge" and h.quantity > 0]
    return [_line(h, view, "hedge") for h in sorted(held, key=lambda h: (h.account, h.key))]


def unrealised_of(state: LedgerState, account: str, view: MarketView) -> float:
    total = 0.0
    for h in state.holdings_of(account):
        q = view.quote(h.contract)
        if q is not None:
            total += unrealised(h.open_lots(), q.mid, h.contract)
    return round(total, 2)


def quarter_books(
    c: Constitution,
    state: LedgerState,
    realised: Iterable[Realised],
    view: MarketView,
    quarter: str,
) -> QuarterBooks:
    lines = tax_lines(c, state, list(realised), quarter)
    r = c.reinvestment
    accounts = []
    for a in state.active_accounts():
        gains = state.realised_in(a.id, quarter) / 100
        done = a.reinvested_quarter == quarter and gains > 0
        kept = gains * (1 - r.tax_reserve) if done else 0.0
        accounts.append(
            AccountBooks(
                account=a.id,
                kind=a.kind,
                realised=round(gains, 2),
                unrealised=unrealised_of(state, a.id, view),
                tax_reserve=state.balance(a.id, TAX) / 100,
                leap_fund=state.balance(a.id, LEAP) / 100,
                cash=state.balance(a.id, CASH) / 100,
                reinvested=a.reinvested_quarter == quarter,
                reserved_this_quarter=round(gains * r.tax_reserve, 2) if done else 0.0,
                leaps_this_quarter=round(kept * r.leaps, 2),
                contracts_this_quarter=round(kept * r.contracts, 2),
            )
        )
    rungs = ladder(state, view)
    return QuarterBooks(
        leap_ledger=tuple(_leap_ledger(rungs, lines)),
        quarter=quarter,
        as_of=view.today,
        accounts=tuple(accounts),
        tax_lines=tuple(lines),
        hedges=tuple(hedges(state, view)),
        leap_ladder=tuple(rungs),
        short_term_gain=round(sum(x.gain for x in lines if x.term == "short"), 2),
        long_term_gain=round(sum(x.gain for x in lines if x.term == "long"), 2),
        wash_sales=sum(x.wash_sale for x in lines),
    )


def _leap_ledger(rungs: Sequence[HoldingLine], lines: Sequence[TaxLine]) -> list[LeapLedgerLine]:
    out = []
    for role, right in (("growth", "C"), ("hedge_put", "P")):
        held = [r for r in rungs if r.role == role]
        closed = [t for t in lines if t.purpose == "leap" and t.contract.endswith(right)]
        cost = sum(r.cost * r.quantity * 100 for r in held)
        value = sum((r.mark or 0.0) * r.quantity * 100 for r in held)
        out.append(
            LeapLedgerLine(
                role=role,
                rungs=len(held),
                contracts=sum(r.quantity for r in held),
                cost=round(cost, 2),
                value=round(value, 2),
                unrealised=round(sum(r.unrealised for r in held), 2),
                realised_this_quarter=round(sum(t.gain for t in closed), 2),
            )
        )
    return out
