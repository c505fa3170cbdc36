"""Every figure of a backtest tearsheet, read from the run's database (nothing else).

``book_figures`` is the cheap part (ledger and notes only) that the ``alluse backtest`` text
summary prints; ``tearsheet`` adds the decisions' timeline and the daily series. Both read
through ``ReadOnlyDatabase``: no lease, nothing written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from adapters.storage.errors import StorageError
from adapters.storage.readers import FillRow, LedgerOpRow, NoteRow, OrderRow, ReadOnlyDatabase
from engine.market import calendar
from scheduler.reports import flows as F
from scheduler.reports.metrics import (
    Performance,
    monthly_returns,
    performance,
    profit_factor,
    win_rate,
)
from scheduler.reports.timeline import Episode, ModeDay, Timeline, timeline
from scheduler.reports.trades import Trade, closed_trades

TOTAL = "total"


@dataclass(frozen=True)
class SleeveFigures:
    account: str  # an account id, or "total"
    kind: str
    status: str
    contributed: float  # net capital moved in (deposits, forks, merges, less the tax reserve)
    end_equity: float
    pnl: float  # end equity - contributed
    premium: float  # credits of options sold by our orders
    trades_closed: int
    win_rate: float | None
    profit_factor: float | None


@dataclass(frozen=True)
class BookFigures:
    sleeves: dict[str, SleeveFigures]  # account id -> figures, plus "total"
    orders_placed: int  # order intents recorded (each was sent to the broker)
    orders_filled: int  # of those, filled at least in part
    orders_by_state: dict[str, int]
    trades_closed: int
    fills_by_origin: dict[str, int]  # order | expiry | assignment
    forks_executed: int
    merges_executed: int
    rejections: dict[str, int]  # reason -> actions the planner did not place
    rejections_by_kind: dict[str, int] = field(default_factory=dict)  # action kind -> not placed
    fork_actions: dict[str, int] = field(default_factory=dict)  # verdict -> fork_account actions
    trades: tuple[Trade, ...] = ()
    fills: tuple[FillRow, ...] = ()
    orders: tuple[OrderRow, ...] = ()


@dataclass(frozen=True)
class WeekRow:
    week_start: str
    week_type: str
    income: float
    orders: int
    fills: int
    rejections: int
    forks: int
    merges: int


@dataclass(frozen=True)
class ForkMerge:
    at: str
    kind: str  # fork | merge
    source: str
    targets: str
    amount: float


@dataclass(frozen=True)
class Tearsheet:
    db_url: str
    book: BookFigures
    timeline: Timeline
    equity: pd.DataFrame  # sessions x (accounts..., "total")
    returns: dict[str, pd.Series]  # account | total -> daily returns net of flows
    performance: dict[str, Performance]
    deployed: dict[str, float | None]  # account | total -> average fraction of equity
    benchmark: pd.Series | None  # buy-and-hold, scaled to the starting total equity
    benchmark_performance: Performance | None
    drawdown: pd.Series  # total: fraction below the running peak (0.1 = 10 % down)
    monthly: dict[tuple[int, int], float]
    premium_weekly: dict[date, float]
    premium_monthly: dict[tuple[int, int], float]
    weeks: list[WeekRow] = field(default_factory=list)
    week_types: dict[str, int] = field(default_factory=dict)
    forks_merges: list[ForkMerge] = field(default_factory=list)

    @property
    def first(self) -> date | None:
        return self.equity.index[0].date() if not self.equity.empty else None

    @property
    def last(self) -> date | None:
        return self.equity.index[-1].date() if not self.equity.empty else None

    @property
    def episodes(self) -> list[Episode]:
        return self.timeline.episodes

    @property
    def modes(self) -> list[ModeDay]:
        return self.timeline.modes


# --------------------------------------------------------------------------- the book


def premium(fill: FillRow) -> float:
    """The credit of an option sold by one of our orders (0 for anything else)."""
    if fill.side != "SELL" or fill.sec_type == "STK" or fill.origin != "order":
        return 0.0
    return fill.price * fill.quantity * fill.multiplier


def book_figures(db: ReadOnlyDatabase) -> BookFigures:
    fills, orders = db.fills(), db.orders()
    ops = db.ledger_ops(*F.FLOW_KINDS)
    trades = closed_trades(fills, ops)
    flows = F.flows(ops)
    accounts = db.accounts()
    last = _last_equity(db)
    sleeves: dict[str, SleeveFigures] = {}
    for a in accounts:
        end = 0.0 if a.status == "merged" else last.get(a.id, 0.0)
        mine = [t.pnl for t in trades if t.account == a.id]
        contributed = sum(f.amount for f in flows if f.account == a.id)
        sleeves[a.id] = SleeveFigures(
            account=a.id,
            kind=a.kind,
            status=a.status,
            contributed=round(contributed, 2),
            end_equity=round(end, 2),
            pnl=round(end - contributed, 2),
            premium=round(sum(premium(f) for f in fills if f.account == a.id), 2),
            trades_closed=len(mine),
            win_rate=win_rate(mine),
            profit_factor=profit_factor(mine),
        )
    sleeves[TOTAL] = _total(sleeves, flows, trades)
    notes = db.notes()
    return BookFigures(
        sleeves=sleeves,
        orders_placed=len(orders),
        orders_filled=sum(o.filled > 0 for o in orders),
        orders_by_state=dict(sorted(Counter(o.state for o in orders).items())),
        trades_closed=len(trades),
        fills_by_origin=dict(sorted(Counter(f.origin for f in fills).items())),
        forks_executed=sum(o.kind == "ForkAccount" for o in ops),
        merges_executed=sum(o.kind == "MergeAccount" for o in ops),
        rejections=rejections(notes),
        rejections_by_kind=rejections(notes, "kind"),
        fork_actions=db.action_verdicts("fork_account"),
        trades=tuple(trades),
        fills=tuple(fills),
        orders=tuple(orders),
    )


def read_book_figures(db_url: str) -> BookFigures:
    db = ReadOnlyDatabase.open(db_url)
    try:
        return book_figures(db)
    finally:
        db.close()


def _last_equity(db: ReadOnlyDatabase) -> dict[str, float]:
    last: dict[str, float] = {}
    for m in db.equity():  # oldest first: the last mark wins
        last[m.account] = m.equity
    return last


def _total(
    sleeves: dict[str, SleeveFigures], flows: list[F.Flow], trades: list[Trade]
) -> SleeveFigures:
    pnls = [t.pnl for t in trades]
    # Owner capital only: moves between accounts cancel out; the tax reserve leaves equity.
    contributed = sum(f.amount for f in flows if f.owner or f.kind == "TaxReserve")
    end = sum(s.end_equity for s in sleeves.values())
    return SleeveFigures(
        account=TOTAL,
        kind=TOTAL,
        status="",
        contributed=round(contributed, 2),
        end_equity=round(end, 2),
        pnl=round(end - contributed, 2),
        premium=round(sum(s.premium for s in sleeves.values()), 2),
        trades_closed=len(pnls),
        win_rate=win_rate(pnls),
        profit_factor=profit_factor(pnls),
    )


def rejections(notes: list[NoteRow], by: str = "reason") -> dict[str, int]:
    """Actions the planner did not place (its ``rejection`` notes), counted by reason or kind."""
    reasons = Counter(n.data["rejection"].get(by, "?") for n in notes if "rejection" in n.data)
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------- the tearsheet


def tearsheet(db: ReadOnlyDatabase) -> Tearsheet:
    if not db.has("audit_record", "ledger_equity"):
        raise StorageError(
            f"{db.display_url} is not the database of an ALL-USE run (no audit log or ledger)"
        )
    book = book_figures(db)
    ops = db.ledger_ops(*F.FLOW_KINDS)
    flows = F.flows(ops)
    equity = F.daily_equity(db.equity(), F.merged_days(ops))
    if not equity.empty:
        equity[TOTAL] = equity.sum(axis=1, min_count=1)
    tl = timeline(db.decisions())
    rets = _returns(equity, flows)
    perf = {name: performance(r, _start(equity, name)) for name, r in rets.items()}
    bench = _benchmark(tl, equity)
    bench_returns = bench.pct_change().dropna() if bench is not None else None
    notes = db.notes()
    weeks = _weeks(notes)
    return Tearsheet(
        db_url=db.display_url,
        book=book,
        timeline=tl,
        equity=equity,
        returns=rets,
        performance=perf,
        deployed=_average_deployed(tl, list(equity.columns)),
        benchmark=bench,
        benchmark_performance=(
            performance(bench_returns, bench.index[0].date())
            if bench is not None and bench_returns is not None
            else None
        ),
        drawdown=_drawdown(equity[TOTAL]) if TOTAL in equity else pd.Series(dtype=float),
        monthly=monthly_returns(rets.get(TOTAL, pd.Series(dtype=float))),
        premium_weekly=_premium_by(book.fills, _week_of),
        premium_monthly=_premium_by(book.fills, lambda d: (d.year, d.month)),
        weeks=weeks,
        week_types=dict(sorted(Counter(w.week_type for w in weeks).items())),
        forks_merges=_forks_merges(ops),
    )


def _start(equity: pd.DataFrame, name: str) -> date | None:
    column = equity[name].dropna() if name in equity else pd.Series(dtype=float)
    positive = column[column > 0]
    return positive.index[0].date() if not positive.empty else None


def _returns(equity: pd.DataFrame, flows: list[F.Flow]) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    per_account = F.daily_flows(flows)
    for name in equity.columns:
        if name == TOTAL:
            owner = F.daily_flows([f for f in flows if f.owner or f.kind == "TaxReserve"])
            by_day: dict[date, float] = {}
            for (_, day), amount in owner.items():
                by_day[day] = by_day.get(day, 0.0) + amount
        else:
            by_day = {day: v for (acct, day), v in per_account.items() if acct == name}
        out[name] = F.returns(equity[name], by_day)
    return out


def _benchmark(tl: Timeline, equity: pd.DataFrame) -> pd.Series | None:
    if not tl.benchmark or equity.empty or TOTAL not in equity:
        return None
    prices = pd.Series({pd.Timestamp(d): p for d, p in tl.benchmark.items()}, dtype=float)
    prices = prices.reindex(equity.index).ffill().dropna()
    if prices.empty:
        return None
    start = float(equity[TOTAL].loc[prices.index[0]])
    return prices / prices.iloc[0] * start


def _drawdown(values: pd.Series) -> pd.Series:
    values = values.dropna()
    return 1 - values / values.cummax()


def _average_deployed(tl: Timeline, names: list[str]) -> dict[str, float | None]:
    """Mean over days of each account's deployed fraction of its equity (D100)."""
    fractions: dict[str, list[float]] = {n: [] for n in names}
    for by_account in tl.deployed.values():
        for account, (deployed, equity) in by_account.items():
            if equity > 0 and account in fractions:
                fractions[account].append(deployed / equity)
        total_eq = sum(e for _, e in by_account.values())
        if total_eq > 0 and TOTAL in fractions:
            fractions[TOTAL].append(sum(d for d, _ in by_account.values()) / total_eq)
    return {n: (sum(v) / len(v) if v else None) for n, v in fractions.items()}


def _week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _premium_by(fills: tuple[FillRow, ...], key: Callable[[date], Any]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for f in fills:
        amount = premium(f)
        if amount:
            k = key(calendar.new_york_date(f.at))
            out[k] = round(out.get(k, 0.0) + amount, 2)
    return dict(sorted(out.items()))


def _weeks(notes: list[NoteRow]) -> list[WeekRow]:
    rows = [
        WeekRow(
            week_start=str(d.get("week_start", "")),
            week_type=str(d.get("week_type", "")),
            income=float(d.get("income", 0.0)),
            orders=int(d.get("trades", 0)),
            fills=int(d.get("fills", 0)),
            rejections=int(d.get("rejections", 0)),
            forks=int(d.get("forks", 0)),
            merges=int(d.get("merges", 0)),
        )
        for n in notes
        if n.ref == "weekly_report" and (d := n.data)
    ]
    return sorted({w.week_start: w for w in rows}.values(), key=lambda w: w.week_start)


def _forks_merges(ops: list[LedgerOpRow]) -> list[ForkMerge]:
    out: list[ForkMerge] = []
    for o in ops:
        b = o.body
        if o.kind == "ForkAccount":
            children = ", ".join(f"{c[0]} ({c[1]})" for c in b["children"])
            amount = sum(c[2] for c in b["children"]) / 100
            out.append(ForkMerge(o.at.isoformat(), "fork", b["parent"], children, amount))
        elif o.kind == "MergeAccount":
            out.append(
                ForkMerge(
                    o.at.isoformat(), "merge", b["source"], b["target"], b["source_equity"] / 100
                )
            )
    return out
