"""The ledger, pure part: state, operations, and the balance rule (docs/execution.md).

Money is kept in integer **cents** in buckets ``(account, bucket)``. Every operation's money
moves as a journal whose entries sum to exactly zero; the outside world is a set of external
accounts (``@capital`` owner deposits, ``@market`` counterparties of trades, ``@fees``
commissions), so the sum of ALL buckets is always zero: money is never created or lost
(``total(state) == 0``; ``apply`` refuses an operation that would break it).

Operations are frozen values with an ``op_id``; applying an id that was already applied
changes nothing (exactly-once: a fill's id is its broker execution id, a fork's is
``fork:ACCOUNT:N``). State is immutable: ``apply`` returns a new state and the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

from constitution.errors import StopError
from engine.execution import lots as fifo
from engine.execution.broker import Fill, OrderRequest, OrderSide, OrderState, OrderStatus
from engine.market.calendar import new_york_date
from engine.market.instruments import ContractSpec, SecType

CASH, TAX, LEAP = "cash", "tax_reserve", "leap_fund"
CAPITAL, MARKET, FEES = "@capital", "@market", "@fees"
Purpose = Literal["income", "hedge", "leap", "stock"]
TradingMode = Literal["active", "safe", "kill"]
AccountHold = Literal["safe", "paused"]  # an account held out of new risk (docs/decisions.md D60)
HoldRelease = Literal["next_session", "operator"]


class LedgerImbalance(StopError):
    """An operation whose journal does not sum to zero: a bug, never applied."""


class LedgerRefused(StopError):
    """An operation that is not possible in this state (unknown account, reused id...)."""


class FillCrossesZero(LedgerRefused):
    """A fill of one of our orders that would take a position through zero (short to long or
    long to short): the planner never sends such an order, so the book is wrong somewhere;
    the fill is refused rather than booked (issue 13)."""


def cents(dollars: float) -> int:
    return int(round(dollars * 100))


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Holding:
    account: str
    contract: ContractSpec
    quantity: int  # signed: contracts for options, shares for stock; negative is short
    avg_price: float  # per share (option premium per share, stock price)
    purpose: Purpose
    opened: date
    roll_debit: float | None = None  # last priced roll cost per share (planner), for the rules
    lots: tuple[fifo.Lot, ...] = ()  # FIFO lots (empty: one lot of quantity at avg_price)

    @property
    def key(self) -> str:
        return self.contract.key

    def open_lots(self) -> tuple[fifo.Lot, ...]:
        return self.lots or (fifo.Lot(self.quantity, self.avg_price, self.opened),)


@dataclass(frozen=True, slots=True)
class Realised:
    """One lot (or part of one) closed: the tax ledger's line (§10; engine.execution.tax)."""

    op_id: str
    line: int
    account: str
    contract: ContractSpec
    purpose: Purpose
    quantity: int  # signed as the lot was: negative for a short option bought back or expired
    opened: date
    closed: date
    open_price: float
    close_price: float
    gain: int  # cents
    origin: str  # order | expiry | assignment


AccountKind = Literal["gen", "rev", "com", "mini"]


@dataclass(frozen=True, slots=True)
class AccountState:
    id: str
    kind: AccountKind
    opened: date
    base_equity: int  # cents
    high_water_mark: int  # cents
    forks: int = 0
    parent: str | None = None
    family: str = ""  # the full ALL-USE the account belongs to ("" for the first)
    status: Literal["active", "merged"] = "active"
    quarter: str = ""  # e.g. 2024Q2: the quarter quarter_start_equity belongs to
    quarter_start_equity: int = 0
    reinvested_quarter: str = ""


@dataclass(frozen=True, slots=True)
class AccountMode:
    """An account held out of new risk while the rest of the system trades (§6 L3 "SAFE mode
    until reset", §0 the user-facing per-account pause). ``release``: ``next_session`` - the
    hold ends by itself once its condition has cleared on a later session than ``since``
    (D60); ``operator`` - only ``alluse account resume`` ends it."""

    mode: AccountHold
    reason: str
    since: date
    release: HoldRelease


@dataclass(frozen=True, slots=True)
class Flag:
    """A named switch of the system with why and since when (``stress_test``: §2's 1-3 DTE
    stress-test mode; ``state``: the §9 operating state MAINTENANCE or AUDIT)."""

    value: str
    reason: str
    since: date


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order intent (written before the submit) and what the broker said since."""

    request: OrderRequest
    action_index: int
    action_kind: str
    purpose: Purpose
    funding: str  # bucket paying for / receiving the trade (cash; leap_fund for LEAPs)
    why: str = ""
    state: OrderState = OrderState.PENDING_SUBMIT
    filled: int = 0
    avg_fill_price: float | None = None
    reason: str = ""
    # the cancel-replace ladder, first to last acceptable limit (() for MKT): the order's
    # place on it is its current limit price, so a resumed order continues where it stopped
    ladder: tuple[float, ...] = ()

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def is_open(self) -> bool:
        return not self.state.is_final


@dataclass(frozen=True)
class LedgerState:
    accounts: Mapping[str, AccountState] = field(default_factory=dict)
    balances: Mapping[tuple[str, str], int] = field(default_factory=dict)
    holdings: Mapping[tuple[str, str], Holding] = field(default_factory=dict)
    orders: Mapping[str, OrderRecord] = field(default_factory=dict)
    applied: frozenset[str] = frozenset()
    mode: TradingMode = "active"
    mode_reason: str = ""
    latched: bool = False  # SAFE/kill that only an explicit reset (resume) clears
    account_modes: Mapping[str, AccountMode] = field(default_factory=dict)
    realised: Mapping[tuple[str, str], int] = field(
        default_factory=dict
    )  # (account, quarter) -> cents
    flags: Mapping[str, Flag] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ("accounts", "balances", "holdings", "orders", "account_modes", "realised", "flags")
        for name in names:
            value = getattr(self, name)
            # A read-only view made here is kept as it is: ``replace`` hands the unchanged
            # mappings of the state before to the state after, and copying them all on every
            # operation made each apply cost the whole history (every order ever placed).
            if type(value) is not MappingProxyType:
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def balance(self, account: str, bucket: str = CASH) -> int:
        return self.balances.get((account, bucket), 0)

    def realised_in(self, account: str, quarter: str) -> int:
        """Cents realised by ``account`` in ``quarter`` (closes, expiries, assignments)."""
        return self.realised.get((account, quarter), 0)

    def active_accounts(self) -> tuple[AccountState, ...]:
        return tuple(a for _, a in sorted(self.accounts.items()) if a.status == "active")

    def holdings_of(self, account: str) -> tuple[Holding, ...]:
        # the account's, then sorted (the keys are unique: the same order as sorting all)
        return tuple(
            h for _, h in sorted(kv for kv in self.holdings.items() if kv[0][0] == account)
        )

    def open_orders(self, account: str | None = None) -> tuple[OrderRecord, ...]:
        every = _open_orders_of(self.orders)
        return every if account is None else tuple(o for o in every if o.request.account == account)


# Every tick asks for the open orders; states that share their orders (most operations change
# something else) share the answer: the scan of every order ever placed is made once per
# orders mapping. The mapping is held with its answer, so its id is not reused meanwhile.
_OPEN_ORDERS: dict[int, tuple[Mapping[str, OrderRecord], tuple[OrderRecord, ...]]] = {}


def _open_orders_of(orders: Mapping[str, OrderRecord]) -> tuple[OrderRecord, ...]:
    found = _OPEN_ORDERS.get(id(orders))
    if found is not None and found[0] is orders:
        return found[1]
    every = tuple(o for _, o in sorted(kv for kv in orders.items() if kv[1].is_open))
    if len(_OPEN_ORDERS) >= 8:
        _OPEN_ORDERS.clear()
    _OPEN_ORDERS[id(orders)] = (orders, every)
    return every


def total(state: LedgerState) -> int:
    """The sum of every bucket, internal and external: zero in a balanced ledger."""
    return sum(state.balances.values())


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a journal (cents); an operation's entries sum to zero."""

    op_id: str
    account: str
    bucket: str
    amount: int
    memo: str = ""


@dataclass(frozen=True, slots=True)
class OpenAccount:
    op_id: str
    account: str
    kind: AccountKind
    opened: date
    parent: str | None = None
    family: str = ""


@dataclass(frozen=True, slots=True)
class Deposit:
    """Owner capital into an account (from ``@capital``)."""

    op_id: str
    account: str
    amount: int  # cents
    counts_as_base: bool = True


@dataclass(frozen=True, slots=True)
class DepositShares:
    """Shares brought in kind (a Com-Acc starts holding Mag-7 shares). Moves no money: the
    shares' value becomes part of the account's base and equity."""

    op_id: str
    account: str
    contract: ContractSpec
    shares: int
    price: float


@dataclass(frozen=True, slots=True)
class Transfer:
    op_id: str
    src: str
    dst: str
    amount: int  # cents, > 0
    src_bucket: str = CASH
    dst_bucket: str = CASH
    memo: str = ""


@dataclass(frozen=True, slots=True)
class ForkAccount:
    """A sleeve's excess into new accounts (Gen +$100K -> a Mini; Rev +$500K -> a full
    40/30/30 ALL-USE). The parent's high-water mark and quarter start move down by the amount,
    so the fork is neither a drawdown nor a loss."""

    op_id: str
    parent: str
    children: tuple[tuple[str, AccountKind, int], ...]  # (account id, kind, cents)
    opened: date
    family: str = ""


@dataclass(frozen=True, slots=True)
class MergeAccount:
    """A Mini into Com-Acc: every bucket and position moves as is; the target's base and
    high-water mark grow by the source's equity so the merge is no gain."""

    op_id: str
    source: str
    target: str
    source_equity: int  # cents, at marks


@dataclass(frozen=True, slots=True)
class RecordIntent:
    op_id: str
    order: OrderRecord


@dataclass(frozen=True, slots=True)
class UpdateOrder:
    op_id: str
    status: OrderStatus


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """A cancel-replace step: the working order's limit is now ``limit_price``."""

    op_id: str
    client_order_id: str
    limit_price: float


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """A broker execution (op_id = execution id). Orders we placed carry their intent's
    purpose and funding; broker-initiated fills (expiry, assignment) name them here."""

    op_id: str
    fill: Fill
    purpose: Purpose = "income"
    funding: str = CASH


@dataclass(frozen=True, slots=True)
class MarkEquity:
    op_id: str
    account: str
    equity: int  # cents


@dataclass(frozen=True, slots=True)
class StartQuarter:
    op_id: str
    account: str
    quarter: str
    equity: int


@dataclass(frozen=True, slots=True)
class MarkReinvested:
    op_id: str
    account: str
    quarter: str


@dataclass(frozen=True, slots=True)
class NoteRollCost:
    op_id: str
    account: str
    key: str
    roll_debit: float


@dataclass(frozen=True, slots=True)
class SetMode:
    op_id: str
    mode: TradingMode
    reason: str = ""
    latched: bool = False


@dataclass(frozen=True, slots=True)
class SetAccountMode:
    """Hold an account (``safe`` / ``paused``) or release it (``active``): recorded on entry
    and exit, with the reason."""

    op_id: str
    account: str
    mode: Literal["active", "safe", "paused"]
    reason: str = ""
    since: date | None = None
    release: HoldRelease = "operator"


@dataclass(frozen=True, slots=True)
class SetFlag:
    """Switch a named flag on (``value``) or off (``value`` empty); recorded on both."""

    op_id: str
    name: str
    value: str
    reason: str
    since: date


@dataclass(frozen=True, slots=True)
class Note:
    """Changes nothing; kept in the ledger's operation log (reconciliation differences)."""

    op_id: str
    kind: str
    data: tuple[tuple[str, str], ...] = ()


LedgerOp = (
    Note
    | OpenAccount
    | Deposit
    | DepositShares
    | Transfer
    | ForkAccount
    | MergeAccount
    | RecordIntent
    | UpdateOrder
    | ReplaceOrder
    | ApplyFill
    | MarkEquity
    | StartQuarter
    | MarkReinvested
    | NoteRollCost
    | SetMode
    | SetAccountMode
    | SetFlag
)


Handled = tuple[LedgerState, list[Entry]]  # an operation handler's new state and journal
Booked = tuple[LedgerState, list[Entry], list[Realised]]  # ... and what a fill realised


@dataclass(frozen=True, slots=True)
class Applied:
    state: LedgerState
    entries: tuple[Entry, ...] = ()
    changed: bool = True
    realised: tuple[Realised, ...] = ()


def apply(state: LedgerState, op: LedgerOp) -> Applied:
    """Apply one operation; an id already applied returns the state unchanged."""
    if op.op_id in state.applied:
        return Applied(state, (), False)
    new, entries, *more = _HANDLERS[type(op)](state, op)
    realised: tuple[Realised, ...] = tuple(more[0]) if more else ()
    if sum(e.amount for e in entries) != 0:
        raise LedgerImbalance(
            f"{type(op).__name__} {op.op_id}: journal sums to {sum(e.amount for e in entries)} cents"
        )
    balances = dict(new.balances)
    for e in entries:
        balances[(e.account, e.bucket)] = balances.get((e.account, e.bucket), 0) + e.amount
    if realised:
        totals = dict(new.realised)
        for r in realised:
            k = (r.account, quarter_of(r.closed))
            totals[k] = totals.get(k, 0) + r.gain
        new = replace(new, realised=totals)
    return Applied(
        replace(new, balances=balances, applied=new.applied | {op.op_id}),
        tuple(entries),
        realised=realised,
    )


def apply_all(state: LedgerState, ops: Iterable[LedgerOp]) -> tuple[LedgerState, list[Entry]]:
    journal: list[Entry] = []
    for op in ops:
        result = apply(state, op)
        state = result.state
        journal.extend(result.entries)
    return state, journal


def _account(state: LedgerState, account_id: str) -> AccountState:
    acct = state.accounts.get(account_id)
    if acct is None:
        raise LedgerRefused(f"no account {account_id} in the ledger")
    return acct


def _with_account(state: LedgerState, acct: AccountState) -> LedgerState:
    return replace(state, accounts={**state.accounts, acct.id: acct})


def _open(state: LedgerState, op: OpenAccount) -> Handled:
    if op.account in state.accounts:
        raise LedgerRefused(f"account {op.account} exists already")
    acct = AccountState(
        id=op.account,
        kind=op.kind,
        opened=op.opened,
        base_equity=0,
        high_water_mark=0,
        parent=op.parent,
        family=op.family,
    )
    return _with_account(state, acct), []


def _deposit(state: LedgerState, op: Deposit) -> Handled:
    acct = _account(state, op.account)
    if op.counts_as_base:
        acct = replace(
            acct,
            base_equity=acct.base_equity + op.amount,
            high_water_mark=acct.high_water_mark + op.amount,
            quarter_start_equity=acct.quarter_start_equity + op.amount,
        )
    entries = [
        Entry(op.op_id, op.account, CASH, op.amount, "deposit"),
        Entry(op.op_id, CAPITAL, CASH, -op.amount, "deposit"),
    ]
    return _with_account(state, acct), entries


def _deposit_shares(state: LedgerState, op: DepositShares) -> Handled:
    acct = _account(state, op.account)
    value = cents(op.shares * op.price)
    acct = replace(
        acct,
        base_equity=acct.base_equity + value,
        high_water_mark=acct.high_water_mark + value,
        quarter_start_equity=acct.quarter_start_equity + value,
    )
    state = _with_account(state, acct)
    holding = Holding(op.account, op.contract, op.shares, op.price, "stock", acct.opened)
    return _add_holding(state, holding), []


def _transfer(state: LedgerState, op: Transfer) -> Handled:
    _account(state, op.src)
    _account(state, op.dst)
    if op.amount <= 0:
        raise LedgerRefused(f"transfer {op.op_id}: amount must be positive")
    return state, [
        Entry(op.op_id, op.src, op.src_bucket, -op.amount, op.memo),
        Entry(op.op_id, op.dst, op.dst_bucket, op.amount, op.memo),
    ]


def _fork(state: LedgerState, op: ForkAccount) -> Handled:
    parent = _account(state, op.parent)
    amount = sum(c[2] for c in op.children)
    state = _with_account(
        state,
        replace(
            parent,
            forks=parent.forks + 1,
            high_water_mark=parent.high_water_mark - amount,
            quarter_start_equity=parent.quarter_start_equity - amount,
        ),
    )
    entries = [Entry(op.op_id, op.parent, CASH, -amount, "fork")]
    for child_id, kind, part in op.children:
        state, _ = _open(
            state, OpenAccount(op.op_id, child_id, kind, op.opened, op.parent, op.family)
        )
        child = state.accounts[child_id]
        state = _with_account(
            state, replace(child, base_equity=part, high_water_mark=part, quarter_start_equity=part)
        )
        entries.append(Entry(op.op_id, child_id, CASH, part, "fork"))
    return state, entries


def _merge(state: LedgerState, op: MergeAccount) -> Handled:
    _account(state, op.source)
    target = _account(state, op.target)
    entries = [
        e
        for (acct, bucket), amount in sorted(state.balances.items())
        if acct == op.source and amount
        for e in (
            Entry(op.op_id, op.source, bucket, -amount, "merge"),
            Entry(op.op_id, op.target, bucket, amount, "merge"),
        )
    ]
    moving = state.holdings_of(op.source)
    holdings = {k: h for k, h in state.holdings.items() if k[0] != op.source}
    state = replace(state, holdings=holdings)
    for h in moving:
        state = _add_holding(state, replace(h, account=op.target))
    state = _with_account(
        state,
        replace(
            target,
            base_equity=target.base_equity + op.source_equity,
            high_water_mark=target.high_water_mark + op.source_equity,
            quarter_start_equity=target.quarter_start_equity + op.source_equity,
        ),
    )
    state = _with_account(state, replace(state.accounts[op.source], status="merged"))
    return state, entries


def _add_holding(state: LedgerState, h: Holding) -> LedgerState:
    return _net_holding(state, h)[0]


def _net_holding(state: LedgerState, h: Holding) -> tuple[LedgerState, tuple[fifo.Closed, ...]]:
    """Net ``h`` into the account's holding of the same contract by FIFO lots (average price
    on adds kept for the rules), and the lots it closed."""
    key = (h.account, h.key)
    old = state.holdings.get(key)
    holdings = dict(state.holdings)
    incoming = h.open_lots()
    if old is None:
        holdings[key] = replace(h, lots=incoming)
        return replace(state, holdings=holdings), ()
    lots = old.open_lots()
    closed: tuple[fifo.Closed, ...] = ()
    for lot in incoming:
        lots, more = fifo.net(lots, lot.quantity, lot.price, lot.opened)
        closed += more
    qty = old.quantity + h.quantity
    if qty == 0:
        del holdings[key]
    elif (old.quantity > 0) == (h.quantity > 0):  # adding: weighted average price
        avg = (old.avg_price * abs(old.quantity) + h.avg_price * abs(h.quantity)) / abs(qty)
        holdings[key] = replace(old, quantity=qty, avg_price=avg, lots=lots)
    elif (qty > 0) == (old.quantity > 0):  # reducing: the price of what remains is unchanged
        holdings[key] = replace(old, quantity=qty, lots=lots)
    else:  # crossed through zero: what remains was opened at this fill's price
        holdings[key] = replace(h, quantity=qty, lots=lots)
    return replace(state, holdings=holdings), closed


def _record_intent(state: LedgerState, op: RecordIntent) -> Handled:
    if op.order.client_order_id in state.orders:
        return state, []  # the intent is already there (a replanned identical decision)
    return replace(state, orders={**state.orders, op.order.client_order_id: op.order}), []


def _update_order(state: LedgerState, op: UpdateOrder) -> Handled:
    s = op.status
    old = state.orders.get(s.client_order_id)
    if old is None:
        return state, []  # not ours: reconciliation records it as a difference
    if old.state.is_final and not s.state.is_final:
        return state, []  # reports can arrive out of order; a final state stays final
    new = replace(
        old,
        state=s.state,
        filled=max(old.filled, s.filled),
        avg_fill_price=s.avg_fill_price if s.avg_fill_price is not None else old.avg_fill_price,
        reason=s.reason or old.reason,
        ladder=() if s.state.is_final else old.ladder,  # kept only while it can be worked
    )
    return replace(state, orders={**state.orders, s.client_order_id: new}), []


def _replace_order(state: LedgerState, op: ReplaceOrder) -> tuple[LedgerState, list[Entry]]:
    old = state.orders.get(op.client_order_id)
    if old is None or old.state.is_final:
        return state, []  # nothing working to step: a late report
    request = old.request.model_copy(update={"limit_price": op.limit_price})
    return replace(
        state, orders={**state.orders, op.client_order_id: replace(old, request=request)}
    ), []


def _apply_fill(state: LedgerState, op: ApplyFill) -> Booked:
    f = op.fill
    _account(state, f.account)
    order = state.orders.get(f.client_order_id)
    purpose, funding = (order.purpose, order.funding) if order else (op.purpose, op.funding)
    if f.contract.sec_type is SecType.STOCK:
        purpose = "stock"
    signed = f.quantity if f.side is OrderSide.BUY else -f.quantity
    if not f.broker_initiated:
        _refuse_crossing(state, f, signed)
    value = cents(f.price * f.quantity * f.contract.multiplier)
    flow = value if f.side is OrderSide.SELL else -value
    entries = [
        Entry(op.op_id, f.account, funding, flow, f.contract.key),
        Entry(op.op_id, MARKET, CASH, -flow, f.contract.key),
    ]
    fee = cents(f.commission)
    if fee:
        entries += [
            Entry(op.op_id, f.account, funding, -fee, "commission"),
            Entry(op.op_id, FEES, CASH, fee, "commission"),
        ]
    opened = new_york_date(f.at)
    held = state.holdings.get((f.account, f.contract.key))
    state, closed = _net_holding(
        state, Holding(f.account, f.contract, signed, f.price, purpose, opened)
    )
    realised = [
        Realised(
            op.op_id,
            n,
            f.account,
            f.contract,
            held.purpose if held is not None else purpose,
            c.quantity,
            c.lot.opened,
            opened,
            c.lot.price,
            f.price,
            fifo.gain_cents(c, f.price, f.contract),
            f.origin,
        )
        for n, c in enumerate(closed)
    ]
    return state, entries, realised


def _refuse_crossing(state: LedgerState, f: Fill, signed: int) -> None:
    """Our orders reduce a position at most to zero (settlements - expiry, assignment - are
    the venue's facts and are booked as they come)."""
    held = state.holdings.get((f.account, f.contract.key))
    before = held.quantity if held is not None else 0
    after = before + signed
    if before and after and (before > 0) != (after > 0):
        raise FillCrossesZero(
            f"fill {f.execution_id} ({f.client_order_id}): {f.side.value} {f.quantity} "
            f"{f.contract.key} would take {f.account}'s position from {before} to {after}; "
            "an order never crosses zero: not booked"
        )


def _mark(state: LedgerState, op: MarkEquity) -> Handled:
    acct = _account(state, op.account)
    return _with_account(
        state, replace(acct, high_water_mark=max(acct.high_water_mark, op.equity))
    ), []


def _start_quarter(state: LedgerState, op: StartQuarter) -> Handled:
    acct = _account(state, op.account)
    return _with_account(
        state, replace(acct, quarter=op.quarter, quarter_start_equity=op.equity)
    ), []


def _reinvested(state: LedgerState, op: MarkReinvested) -> Handled:
    acct = _account(state, op.account)
    return _with_account(state, replace(acct, reinvested_quarter=op.quarter)), []


def _roll_cost(state: LedgerState, op: NoteRollCost) -> Handled:
    h = state.holdings.get((op.account, op.key))
    if h is None:
        return state, []
    return replace(
        state,
        holdings={**state.holdings, (op.account, op.key): replace(h, roll_debit=op.roll_debit)},
    ), []


def _set_mode(state: LedgerState, op: SetMode) -> Handled:
    return replace(state, mode=op.mode, mode_reason=op.reason, latched=op.latched), []


def _set_account_mode(state: LedgerState, op: SetAccountMode) -> Handled:
    _account(state, op.account)
    modes = dict(state.account_modes)
    if op.mode == "active":
        modes.pop(op.account, None)
    else:
        if op.since is None:
            raise LedgerRefused(f"{op.op_id}: holding {op.account} needs the date it starts")
        modes[op.account] = AccountMode(op.mode, op.reason, op.since, op.release)
    return replace(state, account_modes=modes), []


def _set_flag(state: LedgerState, op: SetFlag) -> Handled:
    flags = dict(state.flags)
    if op.value:
        flags[op.name] = Flag(op.value, op.reason, op.since)
    else:
        flags.pop(op.name, None)
    return replace(state, flags=flags), []


_HANDLERS: dict[type, Callable[[LedgerState, Any], Handled | Booked]] = {
    Note: lambda state, op: (state, []),
    OpenAccount: _open,
    Deposit: _deposit,
    DepositShares: _deposit_shares,
    Transfer: _transfer,
    ForkAccount: _fork,
    MergeAccount: _merge,
    RecordIntent: _record_intent,
    UpdateOrder: _update_order,
    ReplaceOrder: _replace_order,
    ApplyFill: _apply_fill,
    MarkEquity: _mark,
    StartQuarter: _start_quarter,
    MarkReinvested: _reinvested,
    NoteRollCost: _roll_cost,
    SetMode: _set_mode,
    SetAccountMode: _set_account_mode,
    SetFlag: _set_flag,
}


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def stock(symbol: str) -> ContractSpec:
    return ContractSpec(sec_type=SecType.STOCK, symbol=symbol, multiplier=1)
