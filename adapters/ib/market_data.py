"""Interactive Brokers market data: ``IBMarketData`` implements ``engine.market.snapshot.MarketDataPort``.

Quotes and option greeks come from streaming market data (``reqMktData``) held only until the
first full answer, then cancelled: IB's model greeks (``tickOptionComputation``) and open
interest (generic tick 101) are not available as snapshots. Chains are discovered with
``reqSecDefOptParams`` (expiries and strikes), narrowed to the nearest expiries and a strike
window around spot, then quoted. Daily bars come from ``reqHistoricalData``.

Bad values are passed through (NaN, IB's -1 "no price"), as the port requires: the facts
builder turns them into findings. What the builder cannot see — a missing subscription, greeks
IB did not compute, a request IB refused — is reported here as a ``DataQualityFinding``.
Nothing about the data raises; only an unreachable gateway does (``IBUnavailable``).

Pacing: at most ``max_lines`` simultaneous market-data lines (IB's default allowance is 100),
historical requests through a sliding-window limiter (IB: 60 per 10 minutes) plus a per-session
cache (IB refuses identical requests within 15 s), and pacing errors wait and retry.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from adapters.ib import mapping as mp
from adapters.ib.broker import IBConfig, IBSession
from engine.clock import Clock, WallClock
from engine.market import calendar
from engine.market.indicators import atr_reading, clean_history
from engine.market.params import MarketParams
from engine.market.snapshot import (
    TRIGGER_HISTORY_CLOSES,
    DailyHistory,
    DataQualityFinding,
    MarketSnapshot,
    OptionChain,
    OptionContract,
    QualityCode,
    Quote,
    TriggerReading,
)

INDEXES = {"SPX": "CBOE", "VIX": "CBOE", "NDX": "NASDAQ", "RUT": "RUSSELL"}


class IBMarketDataSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_expiries: int = Field(default=2, ge=1)  # nearest expiries quoted per underlying
    max_dte: int = Field(default=10, ge=0)
    strike_window: float = Field(default=0.10, gt=0)  # +/- fraction of spot
    max_lines: int = Field(default=90, ge=1, le=100)
    tick_wait: float = Field(default=3.0, gt=0)  # seconds to wait for quotes / greeks
    atr_days: int = Field(default=45, ge=10)  # calendar days of bars behind each ATR
    drawdown_days: int = Field(default=366, ge=30)
    hist_max_requests: int = Field(default=60, ge=1)
    hist_window: float = Field(default=600.0, gt=0)
    vix: str = "VIX"
    index: str = "SPX"


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds; ``acquire`` waits instead of failing."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._times: deque[float] = deque()
        self.waits = 0

    async def acquire(self) -> None:
        while True:
            now = self.clock.monotonic()
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            if len(self._times) < self.limit:
                self._times.append(now)
                return
            self.waits += 1
            await asyncio.sleep(max(0.01, self.window - (now - self._times[0])))


@dataclass
class _Line:
    contract: mp.Contract
    ticker: mp.iblib.Ticker | None = None
    error: tuple[int, str] | None = None


class IBMarketData:
    """``MarketDataPort`` over TWS / IB Gateway; may share the broker's ``IBSession``."""

    name = "ib"

    def __init__(
        self,
        config: IBConfig | None = None,
        clock: Clock | None = None,
        session: IBSession | None = None,
        settings: IBMarketDataSettings | None = None,
    ) -> None:
        self.clock = clock or WallClock()
        self.session = session or IBSession(config or IBConfig(), self.clock)
        self.settings = settings or IBMarketDataSettings()
        self._owns_session = session is None
        self._contracts: dict[str, mp.Contract | None] = {}
        self._history_cache: dict[tuple[str, date, date], DailyHistory] = {}
        self._hist_limit = SlidingWindow(
            self.settings.hist_max_requests, self.settings.hist_window, self.clock
        )
        self._lines: asyncio.Semaphore | None = None
        self._errors: dict[int, tuple[int, str]] = {}

    # ----- lifecycle -----

    def connect(self) -> None:
        if not self.session.is_connected():
            self.session.connect()
        self.session.call(self._setup())

    async def _setup(self) -> None:
        if self._lines is None:
            self._lines = asyncio.Semaphore(self.settings.max_lines)
            self.session.ib.errorEvent += self._on_error

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def is_connected(self) -> bool:
        return self.session.is_connected()

    # ----- MarketDataPort -----

    def snapshot(
        self, at: datetime, symbols: Sequence[str], params: MarketParams
    ) -> MarketSnapshot:
        return self.session.call(
            self._snapshot(at, list(symbols), params), timeout=self._budget(len(symbols))
        )

    def history(self, symbol: str, first: date, last: date) -> DailyHistory:
        return self.session.call(self._history_only(symbol, first, last))

    async def _history_only(self, symbol: str, first: date, last: date) -> DailyHistory:
        return (await self._history(symbol, first, last))[0]

    # ----- typed pieces (also usable on their own) -----

    def quotes(
        self, symbols: Sequence[str]
    ) -> tuple[dict[str, Quote], tuple[DataQualityFinding, ...]]:
        return self.session.call(self._quotes(list(symbols)))

    def option_chain(
        self, symbol: str, spot: float, on: date
    ) -> tuple[OptionChain | None, tuple[DataQualityFinding, ...]]:
        return self.session.call(self._chain(symbol, spot, on), timeout=self._budget(1))

    def _budget(self, n: int) -> float:
        s = self.settings
        return self.session.config.request_timeout * (4 + 3 * n) + s.tick_wait * (2 + 2 * n)

    # ----- snapshot -----

    async def _snapshot(
        self, at: datetime, symbols: list[str], params: MarketParams
    ) -> MarketSnapshot:
        s = self.settings
        day = calendar.new_york_date(at)
        quotes, quote_findings = await self._quotes(symbols + [s.vix])
        findings = list(quote_findings)
        atr, last_close, chains = {}, {}, {}
        for sym in symbols:
            hist, found = await self._history_checked(sym, day - _lookback(s, params), day)
            findings += found
            q = quotes.get(sym)
            lc = _last_close(hist, day)
            if lc is not None:
                last_close[sym] = lc
            price = q.last if q is not None and _usable(q.last) else (lc[1] if lc else None)
            if len(hist):
                atr[sym] = atr_reading(hist, at, price, params.atr)
            spot = _spot(q, lc)
            if spot is not None:
                chain, chain_found = await self._chain(sym, spot, day)
                findings += chain_found
                if chain is not None:
                    chains[sym] = chain
        vix_hist, found = await self._history_checked(s.vix, day - _lookback(s, params), day)
        index_hist, found2 = await self._history_checked(
            s.index, day - timedelta(days=s.drawdown_days), day
        )
        findings += found + found2
        return MarketSnapshot(
            as_of=at,
            quotes={k: v for k, v in quotes.items() if k != s.vix},
            vix=quotes.get(s.vix),
            atr5=atr,
            chains=chains,
            last_close=last_close,
            vix_last_close=_last_close(vix_hist, day),
            vix_closes_above_30=_consecutive_above(
                vix_hist.until(day - timedelta(days=1)).close, params.vix_above
            ),
            spx_drawdown=_drawdown(index_hist.until(day - timedelta(days=1)).close),
            trigger_history=_trigger_history(vix_hist, index_hist, day - timedelta(days=1)),
            findings=tuple(findings),
        )

    # ----- contracts -----

    async def _underlying(self, symbol: str) -> mp.Contract | None:
        if symbol in self._contracts:
            return self._contracts[symbol]
        if symbol in INDEXES:
            want = mp.Contract(
                secType="IND", symbol=symbol, exchange=INDEXES[symbol], currency="USD"
            )
        else:
            want = mp.Contract(secType="STK", symbol=symbol, exchange="SMART", currency="USD")
        try:
            details = await self.session.paced(
                lambda: self.session.ib.reqContractDetailsAsync(want), f"contract {symbol}"
            )
        except mp.iblib.RequestError:
            details = []
        found = details[0].contract if len(details) == 1 else None
        if found is not None:
            found.exchange = want.exchange
        self._contracts[symbol] = found
        return found

    # ----- quotes and greeks -----

    async def _quotes(
        self, symbols: list[str]
    ) -> tuple[dict[str, Quote], tuple[DataQualityFinding, ...]]:
        findings: list[DataQualityFinding] = []
        contracts = {}
        for sym in symbols:
            c = await self._underlying(sym)
            if c is None:
                findings.append(
                    DataQualityFinding(
                        QualityCode.MISSING_QUOTE, sym, "IB has no contract for this symbol"
                    )
                )
            else:
                contracts[sym] = c
        lines = await self._stream(list(contracts.values()), generic="", greeks=False)
        quotes = {}
        for sym, line in zip(contracts, lines, strict=True):
            if line.error is not None:
                findings.append(_permission_finding(QualityCode.MISSING_QUOTE, sym, line.error))
            elif line.ticker is None or line.ticker.time is None:
                findings.append(
                    DataQualityFinding(
                        QualityCode.MISSING_QUOTE,
                        sym,
                        f"no tick from IB within {self.settings.tick_wait:g}s",
                    )
                )
            else:
                quotes[sym] = _quote(sym, line.ticker, self.clock.now())
        return quotes, tuple(findings)

    async def _stream(self, contracts: list, generic: str, greeks: bool) -> list[_Line]:
        lines = [_Line(c) for c in contracts]
        await asyncio.gather(*(self._one_line(line, generic, greeks) for line in lines))
        return lines

    async def _one_line(self, line: _Line, generic: str, greeks: bool) -> None:
        assert self._lines is not None, "connect() first"
        ib = self.session.ib
        async with self._lines:
            line.ticker = ib.reqMktData(line.contract, generic, False, False)
            req_id = ib.wrapper.ticker2ReqId["mktData"].get(line.ticker)
            loop = asyncio.get_running_loop()
            end = loop.time() + self.settings.tick_wait
            while loop.time() < end and not _answered(line.ticker, greeks):
                if req_id in self._errors:
                    line.error = self._errors.pop(req_id)
                    break
                await asyncio.sleep(0.02)
            ib.cancelMktData(line.contract)

    def _on_error(self, req_id: int, code: int, text: str, _contract: object = None) -> None:
        if not mp.is_warning(code) or code in mp.NO_DATA_PERMISSION_CODES:
            self._errors[req_id] = (code, text)

    # ----- chains -----

    async def _chain(
        self, symbol: str, spot: float, on: date
    ) -> tuple[OptionChain | None, tuple[DataQualityFinding, ...]]:
        under = await self._underlying(symbol)
        if under is None:
            return None, (
                DataQualityFinding(QualityCode.MISSING_CHAIN, symbol, "no underlying contract"),
            )
        try:
            params = await self.session.paced(
                lambda: self.session.ib.reqSecDefOptParamsAsync(
                    symbol, "", under.secType, under.conId
                ),
                f"option parameters {symbol}",
            )
        except mp.iblib.RequestError as exc:
            return None, (
                DataQualityFinding(
                    QualityCode.MISSING_CHAIN, symbol, f"IB {exc.code}: {exc.message}"
                ),
            )
        contracts = await self._chain_contracts(symbol, params, spot, on)
        if not contracts:
            return None, (
                DataQualityFinding(
                    QualityCode.MISSING_CHAIN,
                    symbol,
                    f"no expiry within {self.settings.max_dte} days / strikes near {spot:g}",
                ),
            )
        lines = await self._stream(contracts, generic="101", greeks=True)
        return self._chain_from(symbol, spot, lines)

    async def _chain_contracts(self, symbol: str, params: list, spot: float, on: date) -> list:
        """Qualified contracts of the nearest expiries, strikes within the window: one
        contract-details request per expiry (strike and right left open), not one per option."""
        s = self.settings
        chosen = [p for p in params if p.tradingClass == symbol] or params
        if not chosen:
            return []
        p = chosen[0]
        expiries = sorted(mp.parse_expiry(e) for e in p.expirations)
        expiries = [e for e in expiries if 0 <= (e - on).days <= s.max_dte][: s.chain_expiries]
        out = []
        for expiry in expiries:
            want = mp.Contract(
                secType="OPT",
                symbol=symbol,
                currency="USD",
                lastTradeDateOrContractMonth=expiry.strftime("%Y%m%d"),
                exchange=INDEXES.get(symbol, "SMART"),
                tradingClass=p.tradingClass,
            )
            try:
                details = await self.session.paced(
                    partial(self.session.ib.reqContractDetailsAsync, want),
                    f"{symbol} {expiry} options",
                )
            except mp.iblib.RequestError:
                continue
            out += [
                d.contract for d in details if abs(d.contract.strike / spot - 1) <= s.strike_window
            ]
        return sorted(out, key=lambda c: (c.lastTradeDateOrContractMonth, c.strike, c.right))

    def _chain_from(
        self, symbol: str, spot: float, lines: list[_Line]
    ) -> tuple[OptionChain | None, tuple[DataQualityFinding, ...]]:
        denied = [line.error for line in lines if line.error is not None]
        if denied and len(denied) == len(lines):
            return None, (_permission_finding(QualityCode.MISSING_CHAIN, symbol, denied[0]),)
        rows, no_greeks = [], 0
        for line in lines:
            if line.error is not None or line.ticker is None:  # refused, or never answered
                continue
            row, has_greeks = _option_row(symbol, line.contract, line.ticker)
            rows.append(row)
            no_greeks += not has_greeks
        findings = []
        if no_greeks:
            findings.append(
                DataQualityFinding(
                    QualityCode.BAD_CHAIN_ROWS,
                    symbol,
                    f"{no_greeks} of {len(rows)} contracts without IB model greeks",
                )
            )
        if denied:
            findings.append(_permission_finding(QualityCode.BAD_CHAIN_ROWS, symbol, denied[0]))
        return OptionChain.from_contracts(symbol, self.clock.now(), spot, rows), tuple(findings)

    # ----- history -----

    async def _history_checked(
        self, symbol: str, first: date, last: date
    ) -> tuple[DailyHistory, list]:
        hist, findings = await self._history(symbol, first, last)
        return clean_history(hist), findings

    async def _history(self, symbol: str, first: date, last: date) -> tuple[DailyHistory, list]:
        key = (symbol, first, last)
        if key in self._history_cache:  # IB refuses identical requests within 15 s
            return self._history_cache[key], []
        contract = await self._underlying(symbol)
        if contract is None:
            return _empty(symbol), [
                DataQualityFinding(QualityCode.MISSING_QUOTE, symbol, "no contract for history")
            ]
        days = (last - first).days + 1
        duration = f"{days} D" if days <= 365 else f"{math.ceil(days / 365)} Y"

        async def request() -> list[mp.iblib.BarData]:
            await self._hist_limit.acquire()
            return await self.session.ib.reqHistoricalDataAsync(
                contract,
                last,
                duration,
                "1 day",
                "TRADES",
                True,
                1,
                timeout=self.session.config.request_timeout,
            )

        try:
            bars = await self.session.paced(request, f"history {symbol}")
        except mp.iblib.RequestError as exc:
            return _empty(symbol), [
                DataQualityFinding(QualityCode.HISTORY_GAP, symbol, f"IB {exc.code}: {exc.message}")
            ]
        hist = _to_history(symbol, [b for b in bars if first <= _bar_day(b) <= last])
        self._history_cache[key] = hist
        return hist, []


# ----- pure helpers -----


def _answered(ticker: mp.iblib.Ticker | None, greeks: bool) -> bool:
    if ticker is None:
        return False
    if greeks:
        return ticker.modelGreeks is not None
    return ticker.time is not None


def _usable(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _quote(symbol: str, t: mp.iblib.Ticker, at: datetime) -> Quote:
    """Values as IB gave them (NaN, -1) except None for a side IB never sent."""
    last = t.last if not math.isnan(t.last) else t.close
    return Quote(
        symbol=symbol,
        last=float(last),
        at=at,
        bid=None if t.bid is None else float(t.bid),
        ask=None if t.ask is None else float(t.ask),
    )


def _spot(q: Quote | None, lc: tuple[date, float] | None) -> float | None:
    if q is not None and _usable(q.bid) and _usable(q.ask):
        return q.mid
    if q is not None and _usable(q.last):
        return q.last
    return lc[1] if lc else None


def _option_row(symbol: str, c: mp.Contract, t: mp.iblib.Ticker) -> tuple[OptionContract, bool]:
    g = t.modelGreeks
    delta, iv = (g.delta, g.impliedVol) if g is not None else (None, None)
    has = delta is not None and iv is not None
    oi = t.putOpenInterest if c.right == "P" else t.callOpenInterest
    row = OptionContract(
        underlying=symbol,
        expiry=mp.parse_expiry(c.lastTradeDateOrContractMonth),
        strike=float(c.strike),
        right="put" if c.right == "P" else "call",
        bid=_num(t.bid),
        ask=_num(t.ask),
        delta=_num(delta) if has else math.nan,
        iv=_num(iv) if has else math.nan,
        open_interest=int(oi) if math.isfinite(oi) and oi >= 0 else 0,
        volume=int(t.volume) if math.isfinite(t.volume) and t.volume >= 0 else 0,
    )
    return row, has


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _permission_finding(
    code: QualityCode, subject: str, error: tuple[int, str]
) -> DataQualityFinding:
    n, text = error
    hint = " (market-data subscription missing)" if n in mp.NO_DATA_PERMISSION_CODES else ""
    return DataQualityFinding(code, subject, f"IB {n}: {text}{hint}")


def _bar_day(bar: mp.iblib.BarData) -> date:
    d = bar.date
    return d.date() if isinstance(d, datetime) else d


def _to_history(symbol: str, bars: list) -> DailyHistory:
    col = lambda name: np.array([float(getattr(b, name)) for b in bars], dtype=float)  # noqa: E731
    return DailyHistory(
        symbol,
        np.array([_bar_day(b) for b in bars], dtype="datetime64[D]"),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("volume"),
    )


def _empty(symbol: str) -> DailyHistory:
    e = np.array([], dtype=float)
    return DailyHistory(symbol, np.array([], dtype="datetime64[D]"), e, e, e, e, e)


def _last_close(h: DailyHistory, day: date) -> tuple[date, float] | None:
    before = h.until(day - timedelta(days=1))
    good = np.flatnonzero(np.isfinite(before.close) & (before.close > 0))
    if not len(good):
        return None
    i = good[-1]
    return before.days[i].astype(date), float(before.close[i])


def _consecutive_above(closes: np.ndarray, level: float) -> int:
    closes = closes[np.isfinite(closes)]
    below = np.flatnonzero(~(closes > level))
    return int(len(closes) - (below[-1] + 1)) if len(below) else len(closes)


def _trigger_history(
    vix: DailyHistory, index: DailyHistory, last: date
) -> tuple[TriggerReading, ...]:
    """The §5 trigger inputs at each of the last ``TRIGGER_HISTORY_CLOSES`` VIX closes through
    ``last``, oldest first (a drawdown from the index bars fetched, ``drawdown_days`` deep)."""
    days = vix.until(last).days[-TRIGGER_HISTORY_CLOSES:]
    return tuple(
        TriggerReading(
            d.astype(date),
            _consecutive_above(vix.until(d.astype(date)).close, 30.0),
            _drawdown(index.until(d.astype(date)).close),
        )
        for d in days
    )


def _drawdown(closes: np.ndarray) -> float | None:
    closes = closes[np.isfinite(closes) & (closes > 0)][-252:]
    return float(1 - closes[-1] / closes.max()) if len(closes) else None


def _lookback(s: IBMarketDataSettings, params: MarketParams) -> timedelta:
    """Calendar days of bars behind each ATR: the setting, or more for a longer ATR period
    (two calendar days a session cover weekends and holidays)."""
    return timedelta(days=max(s.atr_days, 2 * params.atr.period + 10))
