"""Capital flows and daily equity per account, from the ledger.

Equity is the ledger's (cash + LEAP fund + holdings at marks; the tax reserve is owed, not
equity), marked by ``MarkEquity`` at the cycles that changed it. A day's equity is the last
mark of that New York date, carried over the sessions with no new mark; a merged account is at
zero from its merge on.

A *flow* is capital that moved in or out of an account without being earned there: owner
deposits (cash, and shares brought in kind at their price), a fork's cash from the parent into
its children, a merge's equity from the Mini into its target, and the tax reserve set aside
(a move out of equity into the owed bucket). Returns are measured net of flows, so a fork is
neither a loss for the parent nor a gain for the child, and P&L is before the tax reserve.
docs/decisions.md D101.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from adapters.storage.readers import EquityMark, LedgerOpRow
from engine.execution.ledger import TAX
from engine.market import calendar

FLOW_KINDS = ("Deposit", "DepositShares", "Transfer", "ForkAccount", "MergeAccount")
OWNER_KINDS = ("Deposit", "DepositShares")


@dataclass(frozen=True)
class Flow:
    account: str
    at: datetime
    amount: float  # dollars into the account (negative: out)
    kind: str
    owner: bool  # owner capital (deposits), as opposed to a move between accounts


def flows(ops: Iterable[LedgerOpRow]) -> list[Flow]:
    out: list[Flow] = []
    for op in ops:
        out.extend(_flows_of(op))
    return out


def _flows_of(op: LedgerOpRow) -> list[Flow]:
    b, at, kind = op.body, op.at, op.kind
    if kind == "Deposit":
        return [Flow(b["account"], at, b["amount"] / 100, kind, True)]
    if kind == "DepositShares":
        return [Flow(b["account"], at, b["shares"] * b["price"], kind, True)]
    if kind == "ForkAccount":
        moved = [Flow(child, at, cents / 100, kind, False) for child, _kind, cents in b["children"]]
        return [Flow(b["parent"], at, -sum(f.amount for f in moved), kind, False), *moved]
    if kind == "MergeAccount":
        amount = b["source_equity"] / 100
        return [
            Flow(b["source"], at, -amount, kind, False),
            Flow(b["target"], at, amount, kind, False),
        ]
    if kind == "Transfer":
        return _transfer(b, at)
    return []


def _transfer(b: dict, at: datetime) -> list[Flow]:
    amount = b["amount"] / 100
    if b["src"] != b["dst"]:
        return [
            Flow(b["src"], at, -amount, "Transfer", False),
            Flow(b["dst"], at, amount, "Transfer", False),
        ]
    if b.get("dst_bucket") == TAX and b.get("src_bucket") != TAX:
        return [Flow(b["src"], at, -amount, "TaxReserve", False)]
    return []  # cash <-> LEAP fund: both are equity


def merged_days(ops: Iterable[LedgerOpRow]) -> dict[str, date]:
    return {o.body["source"]: calendar.new_york_date(o.at) for o in ops if o.kind == "MergeAccount"}


def daily_equity(marks: list[EquityMark], merged: dict[str, date]) -> pd.DataFrame:
    """Sessions x accounts: each account's equity at the end of each session, from its first
    mark on (NaN before it), zero from its merge on."""
    if not marks:
        return pd.DataFrame()
    last: dict[tuple[date, str], float] = {}
    for m in marks:  # sorted by time: the day's last mark wins
        last[(calendar.new_york_date(m.at), m.account)] = m.equity
    days = sorted({d for d, _ in last})
    sessions = [pd.Timestamp(d) for d in calendar.sessions_between(days[0], days[-1])]
    index = pd.DatetimeIndex(sorted(set(sessions) | {pd.Timestamp(d) for d in days}))
    frame = pd.DataFrame(index=index, columns=sorted({a for _, a in last}), dtype=float)
    for (day, account), equity in last.items():
        frame.loc[pd.Timestamp(day), account] = equity
    frame = frame.ffill()
    for account, day in merged.items():
        if account in frame:
            frame.loc[frame.index >= pd.Timestamp(day), account] = 0.0
    return frame


def daily_flows(items: Iterable[Flow], owner_only: bool = False) -> dict[tuple[str, date], float]:
    out: dict[tuple[str, date], float] = defaultdict(float)
    for f in items:
        if f.owner or not owner_only:
            out[(f.account, calendar.new_york_date(f.at))] += f.amount
    return dict(out)


def returns(values: pd.Series, day_flows: dict[date, float]) -> pd.Series:
    """Daily returns net of flows: r_t = (E_t - F_t) / E_(t-1) - 1, from the first day with
    a positive equity; days after the value reached zero (a merge) are left out."""
    values = values.dropna()
    out: dict[pd.Timestamp, float] = {}
    previous: float | None = None
    for index, value in values.items():
        ts = pd.Timestamp(index)  # type: ignore[arg-type]  # pandas-stubs: labels are Hashable
        if previous is not None and previous > 0 and value > 0:
            out[ts] = (value - day_flows.get(ts.date(), 0.0)) / previous - 1
        previous = float(value)
    return pd.Series(out, dtype=float)
