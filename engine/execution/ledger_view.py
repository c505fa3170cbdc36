"""The ledger as the engine sees it: accounts and positions for the facts, equity at marks."""

from __future__ import annotations

from dataclasses import dataclass

from engine.execution.ledger import CASH, LEAP, AccountState, Holding, LedgerState, quarter_of
from engine.facts.model import Account, Position, position_key
from engine.market.instruments import SecType
from engine.market.quotes import MarketView


@dataclass(frozen=True)
class LedgerFacts:
    accounts: tuple[Account, ...]
    by_key: dict[str, Holding]  # facts position key -> ledger holding
    equity: dict[str, float]  # account -> dollars at marks
    skipped: tuple[str, ...] = ()  # expired holdings awaiting settlement (not facts)


def pivot_flag(account: str) -> str:
    """The ledger flag that latches an account's drawdown pivot until recovery (§0/§2, D7)."""
    return f"pivot:{account}"


def holding_value(h: Holding, view: MarketView) -> float:
    q = view.quote(h.contract)
    mark = q.mid if q is not None else h.avg_price
    return h.quantity * h.contract.multiplier * mark


def equity_of(state: LedgerState, account: str, view: MarketView) -> float:
    """Cash + LEAP fund + holdings at mid (the tax reserve is owed, not equity)."""
    money = (state.balance(account, CASH) + state.balance(account, LEAP)) / 100
    return money + sum(holding_value(h, view) for h in state.holdings_of(account))


def _position(h: Holding, view: MarketView) -> Position:
    c = h.contract
    if c.sec_type is SecType.STOCK:
        return Position(
            symbol=c.symbol, right="stock", side="long", shares=h.quantity, cost_basis=h.avg_price
        )
    q = view.quote(c)
    short = h.quantity < 0
    return Position(
        symbol=c.symbol,
        right="put" if c.right == "P" else "call",
        side="short" if short else "long",
        purpose="income" if h.purpose in ("income", "stock") else h.purpose,
        strike=c.strike,
        expiry=c.expiry,
        contracts=abs(h.quantity),
        entry_credit=max(h.avg_price, 0.0) if short else None,
        entry_debit=max(h.avg_price, 0.0) if not short else None,
        mark=max(q.mid, 0.0) if q else None,
        delta=max(min(q.delta, 1.0), -1.0) if q else None,
        roll_debit=h.roll_debit,
    )


def _account(
    a: AccountState, state: LedgerState, view: MarketView, out: dict, skipped: list
) -> Account:
    positions = []
    for h in state.holdings_of(a.id):
        if h.contract.expiry is not None and h.contract.expiry < view.today:
            skipped.append(f"{a.id}/{h.key}")
            continue
        p = _position(h, view)
        out[position_key(a.id, p)] = h
        positions.append(p)
    equity = equity_of(state, a.id, view)
    q = quarter_of(view.today)
    # §10: realised P&L only (closed lots, expired/assigned premium); 0 once reinvested
    gains = state.realised_in(a.id, q) / 100 if a.reinvested_quarter != q else 0.0
    return Account(
        id=a.id,
        kind=a.kind,
        equity=round(max(equity, 0.0), 2),
        base_equity=max(a.base_equity / 100, 0.01),
        high_water_mark=round(max(a.high_water_mark / 100, equity, 0.01), 2),
        cash=state.balance(a.id) / 100,
        forks=a.forks,
        opened=a.opened,
        quarter_gains=round(gains, 2),
        fork_deferred=f"fork_deferred:{a.id}" in state.flags,
        pivot_latched=pivot_flag(a.id) in state.flags,
        positions=tuple(positions),
    )


def ledger_facts(state: LedgerState, view: MarketView) -> LedgerFacts:
    by_key: dict[str, Holding] = {}
    skipped: list[str] = []
    accounts = tuple(_account(a, state, view, by_key, skipped) for a in state.active_accounts())
    return LedgerFacts(accounts, by_key, {a.id: a.equity for a in accounts}, tuple(skipped))
