"""What a backtest can trade: which tickers of each sleeve have bars for the whole range.

Asked of the same market the backtest replays (``MarketDataPort.history``), before it starts:

* per sleeve (Gen, Rev, Com; a Mini trades Gen's tickers), each ticker is ``full`` (bars from
  the range's first session to its last; gaps inside are counted, never filled), ``partial``
  (some bars in the range) or ``none``;
* the market inputs: VIX (without it no decision can be stated) and the index the S&P 500
  drawdown comes from (SPX, or SPY named as its proxy).

A sleeve none of whose tickers has a bar in the range is *not traded*: the summary says so
("not traded: no data for AAPL, MSFT ..."). ``require_data`` turns every ticker or market input
without bars for the whole range into one located problem each (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from constitution.errors import InvalidInput, Problem
from constitution.models import Constitution
from engine.market import calendar
from engine.market.snapshot import MarketDataPort

Status = Literal["full", "partial", "none"]
SLEEVES = ("gen", "rev", "com")
INDEXES = ("SPX", "SPY")  # the S&P 500 index, then its ETF proxy


@dataclass(frozen=True)
class TickerCoverage:
    symbol: str
    first: date | None  # first bar inside the range
    last: date | None
    bars: int  # bars inside the range
    sessions: int  # NYSE sessions in the range
    wanted_first: date | None = None  # the range's first and last sessions
    wanted_last: date | None = None

    @property
    def status(self) -> Status:
        if not self.bars:
            return "none"
        whole = self.first == self.wanted_first and self.last == self.wanted_last
        return "full" if whole else "partial"

    @property
    def gaps(self) -> int:
        """Sessions missing between this ticker's first and last bar in the range."""
        if not self.bars or self.first is None or self.last is None:
            return 0
        return len(calendar.sessions_between(self.first, self.last)) - self.bars

    def describe(self) -> str:
        if self.status == "none":
            return f"{self.symbol} none"
        text = f"{self.symbol} {self.status}"
        if self.status == "partial":
            text += f" ({self.first}..{self.last})"
        return text + (f", {self.gaps} sessions missing" if self.gaps else "")


@dataclass(frozen=True)
class Coverage:
    first: date
    last: date
    sessions: int
    sleeves: Mapping[str, tuple[TickerCoverage, ...]]
    vix: TickerCoverage
    index: TickerCoverage | None  # None: neither SPX nor SPY has bars in the range

    def not_traded(self) -> dict[str, tuple[str, ...]]:
        """Sleeve -> its tickers, for sleeves none of whose tickers has a bar in the range."""
        return {
            s: tuple(t.symbol for t in ts)
            for s, ts in self.sleeves.items()
            if all(t.status == "none" for t in ts)
        }

    def missing(self) -> list[tuple[str, TickerCoverage]]:
        """(sleeve or "market", ticker) without bars for the whole range."""
        out = [("market", self.vix)] if self.vix.status != "full" else []
        for sleeve, tickers in self.sleeves.items():
            out += [(sleeve, t) for t in tickers if t.status != "full"]
        return out

    def lines(self) -> list[str]:
        head = f"data {self.first}..{self.last} ({self.sessions} sessions):"
        index = (
            "no index bars: S&P 500 drawdown unknown (neutral default)"
            if self.index is None
            else f"index {self.index.describe()}"
            + (" - an ETF proxy for the S&P 500" if self.index.symbol != "SPX" else "")
        )
        out = [head, f"  market: VIX {self.vix.describe().split(' ', 1)[1]}; {index}"]
        not_traded = self.not_traded()
        for sleeve, tickers in self.sleeves.items():
            if sleeve in not_traded:
                out.append(f"  {sleeve}: not traded: no data for {', '.join(not_traded[sleeve])}")
            else:
                out.append(f"  {sleeve}: " + "; ".join(t.describe() for t in tickers))
        return out


def measure(market: MarketDataPort, symbol: str, first: date, last: date) -> TickerCoverage:
    sessions = calendar.sessions_between(first, last)
    wanted = (
        (sessions[0].astype(date), sessions[-1].astype(date)) if len(sessions) else (None, None)
    )
    h = market.history(symbol, first, last)
    good = h.days[np.isfinite(h.close) & (h.close > 0)]
    good = good[np.isin(good, sessions)]
    return TickerCoverage(
        symbol=symbol,
        first=good[0].astype(date) if len(good) else None,
        last=good[-1].astype(date) if len(good) else None,
        bars=len(good),
        sessions=len(sessions),
        wanted_first=wanted[0],
        wanted_last=wanted[1],
    )


def coverage_of(
    constitution: Constitution, market: MarketDataPort, first: date, last: date
) -> Coverage:
    """The coverage of ``constitution``'s sleeves (a ``constitution.models.Constitution``)."""
    sleeves = {
        s: tuple(measure(market, t, first, last) for t in getattr(constitution.sleeves, s).tickers)
        for s in SLEEVES
    }
    indexes = [measure(market, s, first, last) for s in INDEXES]
    index = next((i for i in indexes if i.bars), None)
    return Coverage(
        first=first,
        last=last,
        sessions=len(calendar.sessions_between(first, last)),
        sleeves=sleeves,
        vix=measure(market, "VIX", first, last),
        index=index,
    )


def require_data(coverage: Coverage, source: str) -> None:
    """``--require-data``: every sleeve ticker and VIX must have bars for the whole range."""
    problems = [
        Problem(
            source,
            1,
            1,
            "missing-data",
            f"{where}.{t.symbol}" if where != "market" else t.symbol,
            f"{t.describe()}: no bars for the whole range {coverage.first}..{coverage.last}",
        )
        for where, t in coverage.missing()
    ]
    if problems:
        raise InvalidInput(problems, what="market data")
