"""Daily bars from files, and the replay market over them (``BarMarketData``).

``read_bars`` reads a bar file in any layout ``adapters.market_data.formats`` knows (Yahoo,
Stooq, IB exports, OHLC, close-only) leniently: unreadable dates, duplicate or unsorted rows are
repaired-and-reported, bad prices are kept and reported later by
``engine.market.indicators.clean_history``. Only an unreadable *file* (missing, wrong format, no
date/close columns) is ``InvalidInput``. ``alluse data import`` is stricter: see
``adapters.market_data.store``, which also owns the bar store (``import_bars``, ``load_store``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from adapters.market_data import formats, store
from adapters.market_data.store import ImportResult
from engine.market import calendar
from engine.market.indicators import (
    AtrBasis,
    atr_basis,
    clean_history,
    reading_at,
    usable_rows,
)
from engine.market.options import DEFAULT_CHAIN_MODEL, ChainModel, synthetic_chain
from engine.market.params import AtrParams, MarketParams
from engine.market.snapshot import (
    TRIGGER_HISTORY_CLOSES,
    AtrReading,
    DailyHistory,
    DataQualityFinding,
    MarketSnapshot,
    OptionChain,
    QualityCode,
    Quote,
    TriggerReading,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

OHLCV = formats.OHLCV
SYMBOL_RE = formats.SYMBOL_RE.pattern
__all__ = ["BarMarketData", "FileMarketData", "ImportResult", "import_bars", "load_store"]


def read_bars(path: str | Path, symbol: str) -> DailyHistory:
    """Bars of ``symbol`` from a bar file, repaired-and-reported (see the module docstring)."""
    raw = formats.read_raw(Path(path))
    findings: list[DataQualityFinding] = []
    frame = pd.DataFrame({"day": raw.day.dt.normalize(), **raw.prices})
    bad_date = frame["day"].isna().to_numpy()
    if bad_date.any():
        rows = ", ".join(str(n) for n in raw.line[bad_date][:3])
        findings.append(
            DataQualityFinding(
                QualityCode.BAD_DATE,
                symbol,
                f"{int(bad_date.sum())} row(s) dropped, e.g. line {rows}",
            )
        )
        frame = frame[~bad_date]
    if not frame["day"].is_monotonic_increasing:
        findings.append(
            DataQualityFinding(
                QualityCode.UNSORTED_DATES, symbol, "rows were not in date order; sorted"
            )
        )
        frame = frame.sort_values("day", kind="stable")
    dup = frame["day"].duplicated(keep="last")
    if dup.any():
        shown = ", ".join(str(d.date()) for d in frame["day"][dup][:3])
        findings.append(
            DataQualityFinding(
                QualityCode.DUPLICATE_DATE,
                symbol,
                f"{int(dup.sum())} duplicate date(s), last row kept: {shown}",
            )
        )
        frame = frame[~dup]
    opens, highs, lows, closes, volumes = (frame[c].to_numpy(float) for c in OHLCV)
    return DailyHistory(
        symbol,
        frame["day"].to_numpy().astype("datetime64[D]"),
        opens,
        highs,
        lows,
        closes,
        volumes,
        close_only=raw.close_only,
        findings=tuple(findings),
    )


def import_bars(path: str | Path, symbol: str | None, into: str | Path) -> ImportResult:
    """Validate one bar file and store its clean rows in the bar store ``into``."""
    return store.import_files([(path, symbol)], into)[0]


def load_store(path: str | Path) -> dict[str, DailyHistory]:
    """Every history of a bar store, a folder of bar files, or one file (``store.open_bars``)."""
    return store.open_bars(path)


# --- chains made elsewhere -----------------------------------------------------------------


class ChainSource(Protocol):
    """What the bars give, made ahead (``adapters.market_data.chain_feed.ChainFeed``): told
    where to walk once (``begin``), then asked by key."""

    def begin(self, first: date, refresh: time, period: int, symbols: tuple[str, ...]) -> None: ...

    def chain(self, key: str, priced_at: datetime) -> OptionChain | None: ...

    def value(self, key: str, day: date) -> tuple[bool, Any]: ...

    def close(self) -> None: ...


def feed_key(key: tuple) -> str:
    """A cache key (a chain's, an ATR basis', a volatility scale's) as text both ends of a
    feed make alike: ``json.dumps(list(key))`` with exact floats (JSON's round-trip), dates
    and instants in ISO form - written part by part, since ``json.dumps`` with a ``default``
    builds a new encoder at each of the ~45,000 keys of the README's two years."""
    return "[" + ", ".join([_key_part(v) for v in key]) + "]"


_JSON_TEXT = json.encoder.encode_basestring_ascii  # json.dumps's own, for its default options


def _key_part(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _JSON_TEXT(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    if kind is int:
        return repr(value)
    if kind is date or kind is datetime:
        return '"' + value.isoformat() + '"'
    if value is None:
        return "null"
    return json.dumps(value, default=_iso)  # anything else (NaN, a subclass): as before


def _iso(value: date) -> str:  # date and datetime
    return value.isoformat()


# --- snapshots from bars --------------------------------------------------------------------


def _completed(at: datetime) -> date:
    """The last day whose close is known at ``at``."""
    day = calendar.new_york_date(at)
    close = calendar.session_close(day)
    return day if close is not None and at >= close else day - timedelta(days=1)


def _consecutive_above(closes: np.ndarray, level: float) -> int:
    below = np.flatnonzero(~(closes > level))
    return int(len(closes) - (below[-1] + 1)) if len(below) else len(closes)


class BarMarketData:
    """A ``MarketDataPort`` over daily bars, for replays, demos and tests.

    Replay semantics: at ``at`` during session D the quote is D's *open* (known at 09:30;
    using D's close would look ahead) - for close-only bars the last close before D, the only
    price known before D closes - after D's close it is D's close; the quote is stamped
    ``at`` because in a replay the simulated market is the live one. A day with no bar gives
    no quote (the facts then fall back to the last close, flagged). Chains are modelled
    (``engine.market.options.synthetic_chain``) from the quote and VIX, unless ``chains=False``,
    and priced at the instant the quote's price is from (the session's open, or its close):
    a daily bar knows the market at those two instants only, so the whole picture - spot,
    volatility and option prices - is as of the same instant all session (docs/decisions.md
    D26). That also makes every tick
    of a session share one set of chains, histories and ATR values, which are computed once
    per session and reused (``_memo``, cleared each day).
    """

    def __init__(
        self,
        histories: Mapping[str, DailyHistory],
        *,
        vix_symbol: str = "VIX",
        index_symbol: str | None = None,
        earnings: Mapping[str, Sequence[date]] | None = None,
        chains: bool = True,
        chain_model: ChainModel = DEFAULT_CHAIN_MODEL,
        lookback_sessions: int = 60,
    ) -> None:
        self._h = dict(histories)
        self._vix = vix_symbol
        self._index = index_symbol or index_of(self._h)
        self._earnings = {
            s: np.array(sorted(d), dtype="datetime64[D]") for s, d in (earnings or {}).items()
        }
        self._chains, self._model, self._lookback = chains, chain_model, lookback_sessions
        self._memo: dict[tuple, Any] = {}  # values of several kinds, by key
        self._token = object()  # tells this adapter's content keys from any other's
        self._memo_day: date | None = None
        # a close's trigger readings, kept across days: each day's trigger history reads the
        # last TRIGGER_HISTORY_CLOSES closes, which the days before it read already
        self._by_close: dict[tuple, TriggerReading] = {}
        self._usable: dict[str, np.ndarray] = {}  # symbol -> _last_usable's index
        self._feed: ChainSource | None = None  # chains made ahead (feed_chains), once begun
        self._feed_waiting: ChainSource | None = None  # given, not yet told where to walk
        self._atr_params: AtrParams | None = None  # the last snapshot's (what a feed is told)

    def _cached(self, key: tuple, compute: Callable[[], T]) -> T:
        """``compute()`` once per key while the New York date stays the same (bounded memory:
        a replay only moves forward, and a day's keys are useless the next day)."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    def _start_day(self, day: date) -> None:
        if day != self._memo_day:
            self._memo.clear()
            self._memo_day = day

    def history(self, symbol: str, first: date, last: date) -> DailyHistory:
        h = self._h.get(symbol)
        if h is None:
            empty = np.array([], dtype=float)
            return DailyHistory(
                symbol, np.array([], dtype="datetime64[D]"), empty, empty, empty, empty, empty
            )
        return h.between(first, last)

    def _recent(self, symbol: str, last: date) -> DailyHistory | None:
        def compute() -> DailyHistory | None:
            h = self._h.get(symbol)
            if h is None:
                return None
            upto = h.until(last)
            return clean_history(upto.slice(max(len(upto) - self._lookback, 0), len(upto)))

        return self._cached(("recent", symbol, last), compute)

    def _price(self, symbol: str, at: datetime, day: date) -> float | None:
        """The bar price in force at ``at``: during session D, D's open (OHLC) or the last close
        before D (closes only: D's close is not known until D closes, nor is whether there will
        be one); from D's close on, D's close (D80)."""
        h = self._h.get(symbol)
        opened, close = calendar.session_open(day), calendar.session_close(day)
        if h is None or opened is None or close is None or at < opened:
            return None
        i = int(np.searchsorted(h.days, np.datetime64(day, "D")))
        has_bar = i < len(h) and h.days[i] == np.datetime64(day, "D")
        if at >= close:
            return float(h.close[i]) if has_bar else None
        if h.close_only:
            return float(h.close[i - 1]) if i > 0 else None
        return float(h.open[i]) if has_bar else None

    def _quote(
        self, symbol: str, at: datetime, day: date, priced_at: datetime | None
    ) -> Quote | None:
        price = self._cached(("price", symbol, priced_at), lambda: self._price(symbol, at, day))
        return None if price is None else Quote(symbol, price, at)

    def _last_close(self, symbol: str, at: datetime) -> tuple[date, float] | None:
        completed = _completed(at)

        def compute() -> tuple[date, float] | None:  # _recent(symbol, completed)'s last close,
            # without cleaning it: the last usable row of its window
            h = self._h.get(symbol)
            if h is None:
                return None
            n = int(np.searchsorted(h.days, np.datetime64(completed, "D"), side="right"))
            i = int(self._last_usable(symbol, h)[n - 1]) if n else -1
            if i < max(n - self._lookback, 0):
                return None
            return h.days[i].astype(date), float(h.close[i])

        return self._cached(("last_close", symbol, completed), compute)

    def _last_usable(self, symbol: str, h: DailyHistory) -> np.ndarray:
        """Per row of ``h``, the index of the last usable row up to it (-1: none yet); made
        once per symbol (``usable_rows`` judges each row on its own)."""
        found = self._usable.get(symbol)
        if found is None:
            rows = np.where(usable_rows(h), np.arange(len(h)), -1)
            found = self._usable[symbol] = np.maximum.accumulate(rows) if len(h) else rows
        return found

    def _atr(
        self, symbol: str, at: datetime, cutoff: date, price: float | None, p: AtrParams
    ) -> AtrReading | None:
        basis = self._atr_basis(symbol, cutoff, p.period)
        return None if basis is None else reading_at(basis, at, price, p)

    def _atr_basis(self, symbol: str, cutoff: date, period: int) -> AtrBasis | None:
        def compute() -> AtrBasis | None:
            recent = self._recent(symbol, cutoff)
            return None if recent is None else atr_basis(recent, cutoff, period)

        key = ("atr", symbol, cutoff, period)
        return self._cached(key, partial(self._fed, key, compute))

    def _earnings_week(self, day: date) -> frozenset[str]:
        monday = np.datetime64(day - timedelta(days=day.weekday()), "D")
        return frozenset(
            s for s, d in self._earnings.items() if ((d >= monday) & (d < monday + 7)).any()
        )

    def _chain(self, key: tuple) -> OptionChain:
        """The chain priced from ``key`` (``_chain_key``), made once a session."""
        return self._cached(key, partial(self._made_chain, key))

    def _chain_key(
        self,
        symbol: str,
        quote: Quote | None,
        vix: Quote | None,
        priced_at: datetime | None,
        scale: float | None,
    ) -> tuple | None:
        """What ``symbol``'s chain is priced from, or None when it has none."""
        if not self._chains or quote is None or vix is None or priced_at is None:
            return None
        if not all(math.isfinite(v) and v > 0 for v in (quote.last, vix.last)):
            return None
        return ("chain", symbol, quote.last, vix.last, priced_at, scale)

    def _made_chain(self, key: tuple) -> OptionChain:
        _, symbol, spot, vix, priced_at, scale = key
        feed = self._feed_for(priced_at)
        made = None if feed is None else feed.chain(feed_key(key), priced_at)
        if made is None:
            made = synthetic_chain(symbol, spot, vix, priced_at, self._model, scale)
        return made

    def _fed(self, key: tuple, compute: Callable[[], T]) -> T:
        """What the feed made under ``key`` (an ATR basis, a volatility scale), else
        ``compute()``."""
        if self._feed is not None and self._memo_day is not None:
            found, value = self._feed.value(feed_key(key), self._memo_day)
            if found:
                return value  # made by the same code under the same key
        return compute()

    # --- a chain feed: the chains made ahead, in another process (a backtest's) -------------

    def has_bars_beyond_the_indices(self) -> bool:
        """Whether the bars hold a symbol besides the VIX and the index (a stock's, an
        ETF's): what a backtest's chains are mostly priced from."""
        return bool(set(self._h) - {self._vix, self._index})

    def feed_chains(self, feed: ChainSource) -> None:
        """Take chains, ATR bases and volatility scales from ``feed`` (a backtest's
        ``adapters.market_data.chain_feed``), told where to walk at the first chain needed
        (the first day and the ATR settings are known then); what it does not have is made
        here. Only for the documented chain model, the one a feed makes."""
        if self._model == DEFAULT_CHAIN_MODEL:
            self._feed_waiting = feed
        else:
            feed.close()

    def _feed_for(self, priced_at: datetime) -> ChainSource | None:
        atr = self._atr_params
        if self._feed is None and self._feed_waiting is not None and atr is not None:
            symbols = tuple(sorted(set(self._h) - {self._vix}))
            feed, self._feed_waiting = self._feed_waiting, None
            feed.begin(calendar.new_york_date(priced_at), atr.refresh, atr.period, symbols)
            self._feed = feed
        return self._feed

    def made_ahead(
        self, at: datetime, symbols: Sequence[str], refresh: time, period: int
    ) -> list[tuple[str, Any]]:
        """What a snapshot at ``at`` computes from the bars alone, by feed key (``feed_key``):
        each symbol's ATR basis and volatility scale, then its chain - what a chain feed
        sends ahead. The same quotes, cutoffs and cache as ``snapshot``."""
        day = calendar.new_york_date(at)
        self._start_day(day)
        cutoff, _ = calendar.atr_bar_cutoff(at, refresh)
        priced_at = _priced_at(at, day)
        vix = self._quote(self._vix, at, day, priced_at)
        out: list[tuple[str, Any]] = []
        for s in symbols:
            scale = self._vol_scale(s, cutoff)
            out.append((feed_key(("atr", s, cutoff, period)), self._atr_basis(s, cutoff, period)))
            out.append((feed_key(("scale", s, cutoff)), scale))
            key = self._chain_key(s, self._quote(s, at, day, priced_at), vix, priced_at, scale)
            if key is not None:
                out.append((feed_key(key), self._chain(key)))
        return out

    def close(self) -> None:
        """End the chain feed, if one runs."""
        for feed in (self._feed, self._feed_waiting):
            if feed is not None:
                feed.close()
        self._feed = self._feed_waiting = None

    def _vol_scale(self, symbol: str, cutoff: date) -> float | None:
        """``symbol``'s realised volatility over the index's, from the ``lookback`` sessions
        through ``cutoff`` (bars before today: no look-ahead); None when either history is
        too short (the chain then uses the fixed ``VOL_SCALE``)."""
        if symbol == self._index:
            return 1.0

        def compute() -> float | None:
            own = self._realised(symbol, cutoff)
            index = self._realised(self._index, cutoff)
            if own is None or index is None or index <= 0:
                return None
            return round(min(max(own / index, MIN_SCALE), MAX_SCALE), 4)

        key = ("scale", symbol, cutoff)
        return self._cached(key, partial(self._fed, key, compute))

    def _realised(self, symbol: str, cutoff: date) -> float | None:
        def compute() -> float | None:
            recent = self._recent(symbol, cutoff)
            if recent is None:
                return None
            closes = recent.close[np.isfinite(recent.close) & (recent.close > 0)]
            returns = np.diff(np.log(closes))
            return float(np.std(returns, ddof=1)) if len(returns) >= MIN_RETURNS else None

        return self._cached(("realised", symbol, cutoff), compute)

    def _index_drawdown(self, cutoff: date) -> float | None:
        h = self._h.get(self._index)
        if h is None:
            return None
        closes = h.until(cutoff).close[-252:]
        closes = closes[np.isfinite(closes) & (closes > 0)]
        return float(1 - closes[-1] / closes.max()) if len(closes) else None

    def _vix_closes_above(self, completed: date, level: float) -> int:
        vix_h = self._h.get(self._vix)
        closes = vix_h.until(completed).close if vix_h is not None else np.array([])
        return _consecutive_above(closes[np.isfinite(closes)], level)

    def _trigger_history(self, completed: date, vix_above: float) -> tuple[TriggerReading, ...]:
        """The trigger inputs at the last ``TRIGGER_HISTORY_CLOSES`` sessions through
        ``completed``, oldest first (each as that close's own snapshot would give them)."""
        if self._h.get(self._vix) is None:
            return ()
        day = completed if calendar.is_session(completed) else calendar.previous_session(completed)
        days = [day]
        while len(days) < TRIGGER_HISTORY_CLOSES and days[-1] > calendar.CALENDAR_FIRST:
            try:
                days.append(calendar.previous_session(days[-1]))
            except calendar.CalendarRangeError:
                break
        return tuple(self._reading(d, vix_above) for d in reversed(days))

    def _reading(self, day: date, vix_above: float) -> TriggerReading:
        key = (day, vix_above)
        found = self._by_close.get(key)
        if found is None:
            found = TriggerReading(
                day, self._vix_closes_above(day, vix_above), self._index_drawdown(day)
            )
            if len(self._by_close) >= 4 * TRIGGER_HISTORY_CLOSES:  # a replay moves forward
                del self._by_close[next(iter(self._by_close))]
            self._by_close[key] = found
        return found

    def snapshot(
        self, at: datetime, symbols: Sequence[str], params: MarketParams
    ) -> MarketSnapshot:
        day = calendar.new_york_date(at)
        self._start_day(day)
        self._atr_params = params.atr
        cutoff, _ = calendar.atr_bar_cutoff(at, params.atr.refresh)
        completed = _completed(at)
        priced_at = _priced_at(at, day)
        key = (
            "snapshot",
            tuple(symbols),
            cutoff,
            completed,
            priced_at,
            params.atr,
            params.vix_above,
        )
        cached = self._memo.get(key)
        if cached is not None and cached[1] is not None and at <= cached[1]:
            return _restamped(cached[0], at)
        snap = self._build(at, symbols, day, (cutoff, completed, priced_at), params)
        until = _unchanged_until(snap, params.atr)
        if until is not None:  # the same content until then: say so, for engine.cycle.quiet
            snap = replace(
                snap,
                content_key=(self._token, key),
                content_until=min(until, _phase_end(at, day, params.atr.refresh)),
            )
        self._memo[key] = (snap, until)
        return snap

    def _build(
        self,
        at: datetime,
        symbols: Sequence[str],
        day: date,
        cuts: tuple[date, date, datetime | None],  # ATR cutoff, last completed day, priced at
        params: MarketParams,
    ) -> MarketSnapshot:
        cutoff, completed, priced_at = cuts
        quotes, atr, chains, last_close, scales = {}, {}, {}, {}, {}
        vix_quote = self._quote(self._vix, at, day, priced_at)
        for s in symbols:
            q = self._quote(s, at, day, priced_at)
            if q is not None:
                quotes[s] = q
            lc = self._last_close(s, at)
            if lc is not None:
                last_close[s] = lc
            price = q.last if q is not None else (lc[1] if lc else None)
            reading = self._atr(s, at, cutoff, price, params.atr)
            if reading is not None:
                atr[s] = reading
            scale = self._vol_scale(s, cutoff)
            if scale is not None:
                scales[s] = scale
            if (key := self._chain_key(s, q, vix_quote, priced_at, scale)) is not None:
                chains[s] = self._chain(key)
        findings = (
            tuple(
                DataQualityFinding(QualityCode.MISSING_QUOTE, s, "symbol not in the bar store")
                for s in symbols
                if s not in self._h
            )
            + self._index_findings()
        )
        return MarketSnapshot(
            as_of=at,
            quotes=quotes,
            vix=vix_quote,
            atr5=atr,
            chains=chains,
            earnings_this_week=self._cached(("earnings", day), lambda: self._earnings_week(day)),
            last_close=last_close,
            vix_last_close=self._last_close(self._vix, at),
            vix_closes_above_30=self._cached(
                ("vix_above", completed, params.vix_above),
                lambda: self._vix_closes_above(completed, params.vix_above),
            ),
            spx_drawdown=self._cached(
                ("drawdown", completed), lambda: self._index_drawdown(completed)
            ),
            trigger_history=self._cached(
                ("triggers", completed, params.vix_above),
                lambda: self._trigger_history(completed, params.vix_above),
            ),
            findings=findings,
            vol_scales=scales,
        )

    def _index_findings(self) -> tuple[DataQualityFinding, ...]:
        if self._index == INDEX or self._index not in self._h:
            return ()  # the index itself; or none at all, which the facts builder reports
        return (
            DataQualityFinding(
                QualityCode.INDEX_PROXY,
                "spx_drawdown",
                f"from {self._index}, an ETF proxy for the S&P 500 index (no {INDEX} bars)",
            ),
        )


MIN_RETURNS = 20  # daily returns needed for a realised-volatility ratio
MIN_SCALE, MAX_SCALE = 0.5, 5.0  # bounds on an underlying's vol over the index's
INDEX = "SPX"  # the S&P 500 index: spx_drawdown is its fall from its 52-week high
INDEX_PROXY = "SPY"  # the ETF that tracks it, used (and named) when there are no SPX bars


def index_of(histories: Mapping[str, DailyHistory]) -> str:
    """The symbol the index facts come from: SPX when the bars have it, else its ETF proxy."""
    return INDEX if INDEX in histories else INDEX_PROXY


def _unchanged_until(snap: MarketSnapshot, p: AtrParams) -> datetime | None:
    """Until when the same bars give the same snapshot (apart from its time stamps): the first
    instant an ATR reading would go stale; None when one already is (its note names the age,
    which moves with every tick)."""
    limit = datetime.max.replace(tzinfo=calendar.NEW_YORK)
    for reading in snap.atr5.values():
        if reading.source == "stale_fallback":
            return None
        if reading.last_bar is not None:
            limit = min(limit, calendar.refresh_after(reading.last_bar, p.refresh) + p.stale_after)
    return limit


def _phase_end(at: datetime, day: date, atr_refresh: time) -> datetime:
    """The next instant after ``at`` the bar picture of ``day`` may change: the session's
    open, the ATR refresh, the close, or midnight (the key of ``snapshot`` moves there)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=calendar.NEW_YORK)
    refresh = datetime.combine(day, atr_refresh, tzinfo=calendar.NEW_YORK)
    marks = (calendar.session_open(day), refresh, calendar.session_close(day), midnight)
    return min(m for m in marks if m is not None and m > at)


def _restamped(snap: MarketSnapshot, at: datetime) -> MarketSnapshot:
    """``snap`` as seen at ``at``: the bar prices are the same, the quotes are stamped now (a
    replay's market is the live one, as in ``_quote``)."""
    quotes = {s: Quote(q.symbol, q.last, at, q.bid, q.ask) for s, q in snap.quotes.items()}
    vix = (
        None
        if snap.vix is None
        else Quote(snap.vix.symbol, snap.vix.last, at, snap.vix.bid, snap.vix.ask)
    )
    return replace(snap, as_of=at, quotes=quotes, vix=vix)


def _priced_at(at: datetime, day: date) -> datetime | None:
    """The instant whose bar price is in force at ``at``: none before the open, the open
    during the session, the close after it."""
    opens, closes = calendar.session_open(day), calendar.session_close(day)
    if opens is None or closes is None or at < opens:
        return None
    return closes if at >= closes else opens


class FileMarketData(BarMarketData):
    """``BarMarketData`` over a bar store (``alluse data import``), or a folder of bar files
    read as the import would read them (``--data ../shared/data``)."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(load_store(path), **kwargs)
