"""Daily bars from Interactive Brokers' historical-data service (``alluse data fetch --ib``).

One ``reqHistoricalData`` per chunk: ``TRADES``, ``1 day`` bars, regular trading hours, dates as
``YYYYMMDD``, ending 23:59:59 US/Eastern on the chunk's last day with a duration of the chunk's
length in days. A chunk is at most 365 days: one year is the longest duration IB's step-size
table allows for one-day bars.

**Pacing** (IB, "Historical Data Limitations"): a request is a pacing violation when it is
identical to one made in the last 15 seconds, when it is the sixth for the same contract within
two seconds, or when it is more than the 60th in any ten minutes. ``Pacer`` keeps the times of
the requests made and says how long to wait before the next one would break none of these;
requests run one at a time (IB allows 50 open). A violation IB reports anyway (error 162,
"pacing violation") is waited out with exponential backoff and the request retried
(``IBSession.paced``).

**Resumable.** After every chunk the bars so far are saved atomically in
``DIR/.fetch/SYMBOL.json`` (with the request's range). A run that stops - the connection lost
and not back within ``reconnect_wait``, a timeout, Ctrl-C - is resumed by running the same
command: the chunks already saved are not asked for again. A chunk IB answers with "query
returned no data" (before the symbol listed) is an empty chunk, not an error.

What is fetched goes through the same checks as ``alluse data import``
(``adapters.market_data.store``) into the same store and manifest (source ``ib:SYMBOL``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from adapters.ib import mapping as mp
from adapters.ib.broker import IBSession, IBUnavailable
from adapters.ib.market_data import INDEXES
from adapters.market_data import store
from constitution.errors import InvalidInput, Problem
from engine.clock import Clock
from engine.market.snapshot import DailyHistory

NO_DATA = 162  # with "query returned no data": nothing in the range (not a pacing violation)
RECONNECT_ATTEMPTS = 3  # tries of one chunk across connection drops before giving up


@dataclass(frozen=True)
class HistoryPacing:
    """IB's documented historical-data limits (defaults), and the chunk length."""

    max_requests: int = 60  # in any window
    window: float = 600.0  # seconds: ten minutes
    identical_gap: float = 15.0  # no identical request within this many seconds
    burst: int = 5  # requests for one contract within burst_window (the sixth is a violation)
    burst_window: float = 2.0
    chunk_days: int = 365


class Pacer:
    """How long to wait before the next request (the times in, seconds out: no sleeping here)."""

    def __init__(self, pacing: HistoryPacing) -> None:
        self.pacing = pacing
        self._made: deque[tuple[float, str, str]] = deque()  # (time, contract, request)

    def wait(self, now: float, contract: str, request: str) -> float:
        p = self.pacing
        while self._made and now - self._made[0][0] >= p.window:
            self._made.popleft()
        waits = [0.0]
        if len(self._made) >= p.max_requests:
            waits.append(self._made[-p.max_requests][0] + p.window - now)
        same = [t for t, c, _ in self._made if c == contract and now - t < p.burst_window]
        if len(same) >= p.burst:
            waits.append(same[-p.burst] + p.burst_window - now)
        twins = [t for t, _, r in self._made if r == request and now - t < p.identical_gap]
        if twins:
            waits.append(twins[-1] + p.identical_gap - now)
        return max(waits)

    def made(self, now: float, contract: str, request: str) -> None:
        self._made.append((now, contract, request))


@dataclass(frozen=True)
class Chunk:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def key(self) -> str:
        return f"{self.first}..{self.last}"


def chunks(first: date, last: date, days: int) -> list[Chunk]:
    """``first..last`` cut into consecutive chunks of at most ``days`` days, oldest first."""
    out, start = [], first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        out.append(Chunk(start, end))
        start = end + timedelta(days=1)
    return out


@dataclass(frozen=True)
class FetchReport:
    symbol: str
    chunks: int
    requested: int  # chunks asked of IB in this run
    resumed: int  # chunks taken from the saved state of an earlier run
    result: store.ImportResult


Bar = tuple[str, float, float, float, float, float]  # (YYYY-MM-DD, open, high, low, close, volume)


class HistoryFetcher:
    """Fetch daily bars for symbols over a range into a bar store (see the module docstring)."""

    def __init__(
        self,
        session: IBSession,
        into: str | Path,
        *,
        clock: Clock,
        pacing: HistoryPacing = HistoryPacing(),
        reconnect_wait: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session, self.into, self.clock = session, Path(into), clock
        self.pacing, self.reconnect_wait, self._sleep = pacing, reconnect_wait, sleep
        self.pacer = Pacer(pacing)
        self.requests = 0
        self.request_times: list[float] = []  # the clock's monotonic time of each request
        self.waited = 0.0  # seconds slept for pacing

    # ----- the run -----

    def fetch(self, symbols: Sequence[str], first: date, last: date) -> list[FetchReport]:
        if last < first:
            raise InvalidInput(
                [Problem("--to", 1, 1, "range", "", f"--to {last} is before --from {first}")],
                what="arguments",
            )
        reports = [self._symbol(s, first, last) for s in symbols]
        return reports

    def _symbol(self, symbol: str, first: date, last: date) -> FetchReport:
        contract = self.session.call(self._contract(symbol))
        state = self._load_state(symbol, first, last)
        plan = chunks(first, last, self.pacing.chunk_days)
        resumed = sum(c.key in state["chunks"] for c in plan)
        requested = 0
        for chunk in plan:
            if chunk.key in state["chunks"]:
                continue
            state["chunks"][chunk.key] = self._chunk(contract, symbol, chunk)
            requested += 1
            self._save_state(symbol, state)
        result = self._store(symbol, first, last, state)
        self._state_path(symbol).unlink(missing_ok=True)
        return FetchReport(symbol, len(plan), requested, resumed, result)

    def _chunk(self, contract: Any, symbol: str, chunk: Chunk) -> list[Bar]:
        budget = self._budget()
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            try:
                return self.session.call(self._request(contract, symbol, chunk), timeout=budget)
            except (ConnectionError, IBUnavailable) as exc:
                if attempt == RECONNECT_ATTEMPTS or not self._reconnected():
                    raise IBUnavailable(
                        f"connection to IB lost while fetching {symbol} {chunk.key} ({exc}); "
                        "the chunks fetched so far are saved: run the same command again to "
                        "resume"
                    ) from None
        raise AssertionError("unreachable")

    def _budget(self) -> float:
        c = self.session.config
        return (
            self.pacing.window
            + c.pacing_attempts * (c.pacing_max + c.request_timeout)
            + c.request_timeout
        )

    def _reconnected(self) -> bool:
        """Wait (up to ``reconnect_wait``) for the session's own reconnection. The first step
        is always taken: the client may not have noticed the drop yet."""
        waited, step = 0.0, 0.05
        while waited < self.reconnect_wait:
            self.session.call(asyncio.sleep(step))  # real time: the reconnection is real
            waited += step
            if self.session.is_connected():
                return True
        return False

    # ----- on the session loop -----

    async def _contract(self, symbol: str) -> Any:
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
        except mp.iblib.RequestError as exc:
            raise _no_contract(symbol, f"IB {exc.code}: {exc.message}") from None
        if len(details) != 1:
            raise _no_contract(symbol, f"IB knows {len(details)} contracts for it")
        return details[0].contract

    async def _request(self, contract: Any, symbol: str, chunk: Chunk) -> list[Bar]:
        end = f"{chunk.last:%Y%m%d} 23:59:59 US/Eastern"
        duration = f"{chunk.days} D"
        request_key = f"{symbol}|{end}|{duration}|TRADES"

        async def once() -> Any:
            await self._pace(symbol, request_key)
            self.requests += 1
            return await asyncio.wait_for(
                self.session.ib.reqHistoricalDataAsync(
                    contract, end, duration, "1 day", "TRADES", True, 1, timeout=0
                ),
                self.session.config.request_timeout,
            )

        try:
            bars = await self.session.paced(once, f"history {symbol} {chunk.key}")
        except mp.iblib.RequestError as exc:
            if exc.code == NO_DATA and "no data" in exc.message.lower():
                return []
            raise IBUnavailable(
                f"IB refused history for {symbol}: {exc.code} {exc.message}"
            ) from None
        except TimeoutError:
            raise IBUnavailable(f"IB did not answer the history request for {symbol}") from None
        return [_bar(b) for b in bars if chunk.first <= _day(b.date) <= chunk.last]

    async def _pace(self, symbol: str, request_key: str) -> None:
        while (wait := self.pacer.wait(self.clock.monotonic(), symbol, request_key)) > 0:
            self.waited += wait
            await self._sleep(wait)
        self.pacer.made(self.clock.monotonic(), symbol, request_key)
        self.request_times.append(self.clock.monotonic())

    # ----- state and store -----

    def _state_path(self, symbol: str) -> Path:
        return self.into / ".fetch" / f"{symbol}.json"

    def _load_state(self, symbol: str, first: date, last: date) -> dict:
        path = self._state_path(symbol)
        fresh = {"symbol": symbol, "first": str(first), "last": str(last), "chunks": {}}
        if not path.is_file():
            return fresh
        try:
            state = json.loads(path.read_text("utf-8"))
        except ValueError:
            return fresh  # an unreadable state is a fresh start, never a wrong resume
        same = (state.get("first"), state.get("last")) == (str(first), str(last))
        return state if same and isinstance(state.get("chunks"), dict) else fresh

    def _save_state(self, symbol: str, state: dict) -> None:
        path = self._state_path(symbol)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(path)

    def _store(self, symbol: str, first: date, last: date, state: dict) -> store.ImportResult:
        bars = sorted(
            {tuple(b) for part in state["chunks"].values() for b in part}, key=lambda b: b[0]
        )
        text = json.dumps(bars)
        o, hi, lo, c, v = (np.array([b[i] for b in bars], dtype=float) for i in range(1, 6))
        days = np.array([b[0] for b in bars], dtype="datetime64[D]")
        history = DailyHistory(symbol, days, o, hi, lo, c, v)
        checked = store.validated(
            history,
            rows_read=len(bars),
            source=f"ib:{symbol} TRADES 1 day {first}..{last}",
            source_format="ib",
            source_sha256=hashlib.sha256(text.encode()).hexdigest(),
        )
        return store.write_store([checked], self.into)[0]


def _no_contract(symbol: str, why: str) -> InvalidInput:
    return InvalidInput([Problem("SYMBOL", 1, 1, "no-contract", symbol, why)], what="arguments")


def _day(d: date | datetime) -> date:
    return d.date() if isinstance(d, datetime) else d


def _bar(b: Any) -> Bar:
    return (
        str(_day(b.date)),
        float(b.open),
        float(b.high),
        float(b.low),
        float(b.close),
        float(b.volume),
    )
