"""Opening a new paper ALL-USE: the three sleeves, their cash and Com-Acc's seeded shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from constitution.load import LoadedConstitution
from engine.cycle.trading import TradingCycle
from engine.execution.ledger import (
    AccountKind,
    Deposit,
    DepositShares,
    LedgerOp,
    LedgerState,
    OpenAccount,
    cents,
    stock,
)
from engine.market.instruments import ContractSpec
from engine.market.quotes import MarketView

# A venue seed: (seed id, account, contract, quantity, average cost) - BrokerPort.seed_position
Seed = tuple[str, str, ContractSpec, int, float]


@dataclass(frozen=True)
class Portfolio:
    """A new ALL-USE: capital split 40/30/30; Com-Acc's share arrives as Mag-7 shares (in
    100-share lots, equal dollars per ticker, the remainder in cash) so it can sell calls."""

    capital: float = 1_000_000.0
    opened: date = date(2024, 1, 2)


def bootstrap_ops(
    constitution: LoadedConstitution, portfolio: Portfolio, view: MarketView
) -> tuple[list[LedgerOp], list[Seed]]:
    """(ledger ops, venue seeds) opening GEN/REV/COM; idempotent by op id."""
    c = constitution.model
    split = c.capital.split
    ops: list[LedgerOp] = []
    seeds: list[Seed] = []
    sleeves: tuple[tuple[str, AccountKind, float], ...] = (
        ("GEN", "gen", split.gen),
        ("REV", "rev", split.rev),
        ("COM", "com", split.com),
    )
    for acct, kind, share in sleeves:
        ops.append(OpenAccount(f"open:{acct}", acct, kind, portfolio.opened))
        amount = portfolio.capital * share
        if kind == "com":
            per = amount / len(c.sleeves.com.tickers)
            for t in c.sleeves.com.tickers:
                price = view.spot(t)
                lots = int(per // (price * 100)) if price else 0
                if price and lots:
                    ops.append(
                        DepositShares(
                            f"seed:{acct}:{t}", acct, stock(t), lots * 100, round(price, 2)
                        )
                    )
                    seeds.append((f"seed:{acct}:{t}", acct, stock(t), lots * 100, round(price, 2)))
                    amount -= lots * 100 * round(price, 2)
        ops.append(Deposit(f"deposit:{acct}", acct, cents(amount)))
    return ops, seeds


def is_empty(state: LedgerState) -> bool:
    return not state.accounts


def open_portfolio(
    cycle: TradingCycle, portfolio: Portfolio, at: datetime, seed_venue: Callable | None = None
) -> None:
    """Open the three sleeves at ``at`` if the ledger is empty (venue first: its seeds are
    idempotent, so a crash between the two is repaired by running this again)."""
    if not is_empty(cycle.store.state) and all(
        a in cycle.store.state.accounts for a in ("GEN", "REV", "COM")
    ):
        return
    view = MarketView(cycle._snapshot(at))
    ops, seeds = bootstrap_ops(cycle.constitution, portfolio, view)
    if seed_venue is not None:
        for s in seeds:
            seed_venue(*s)
    cycle.store.apply([op for op in ops if op.op_id not in cycle.store.state.applied], at)
