"""Daily bars from files (CSV, or Parquet when pyarrow/fastparquet is installed).

Columns: ``date, open, high, low, close, volume`` (case-insensitive; ``date`` and ``close``
required). A file with ``date`` and ``close`` only is accepted as close-only history and
flagged. ``read_bars`` never raises for bad *values*: unreadable dates, duplicate or unsorted
rows are repaired-and-reported, bad prices are kept and reported later by
``engine.indicators.clean_history``. Only an unreadable *file* (missing, wrong format, no
date/close columns) is ``InvalidInput``.

``import_bars`` checks a file and stores its clean rows in a bar store (a directory of
``SYMBOL.csv`` files in canonical form); ``BarMarketData`` serves snapshots from bars in
memory, with replay semantics (see its docstring).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from constitution.errors import InvalidInput, Problem
from engine import calendar
from engine.indicators import STALE_AFTER, atr_basis, clean_history, last_valid_close, reading_at
from engine.market import (
    DailyHistory,
    DataQualityFinding,
    MarketSnapshot,
    OptionChain,
    QualityCode,
    Quote,
)
from engine.options import DEFAULT_CHAIN_MODEL, ChainModel, synthetic_chain

OHLCV = ("open", "high", "low", "close", "volume")
SYMBOL_RE = r"^[A-Z][A-Z0-9.\-]{0,9}$"


def _problem(path: Path | str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(str(path), 1, 1, code, "", message)], what="bar file")


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise _problem(path, "not-found", "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except ImportError as exc:
        raise _problem(path, "parquet-unavailable", f"reading Parquet needs pyarrow or fastparquet ({exc})") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise _problem(path, "unreadable", str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    raise _problem(path, "unknown-format", f"expected .csv or .parquet, got {suffix or 'no suffix'}")


def _column(df: pd.DataFrame, cols: dict, name: str, close_only: bool) -> np.ndarray:
    if name not in cols or (close_only and name in ("open", "high", "low")):
        return np.full(len(df), np.nan)
    # Unreadable numbers become NaN here and are reported by clean_history, row by row.
    return pd.to_numeric(df[cols[name]], errors="coerce").to_numpy(float)


def _frame_to_history(df: pd.DataFrame, symbol: str, source: str) -> DailyHistory:
    cols = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("date", "close") if c not in cols]
    if missing:
        raise _problem(source, "missing-columns", f"needs columns date and close; missing {', '.join(missing)}")
    close_only = not all(c in cols for c in ("open", "high", "low"))
    findings: list[DataQualityFinding] = []
    days = pd.to_datetime(df[cols["date"]].astype(str).str.strip(), errors="coerce", format="mixed")
    bad_date = days.isna().to_numpy()
    if bad_date.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad_date)[:3])  # +2: header, 1-based
        findings.append(DataQualityFinding(QualityCode.BAD_DATE, symbol, f"{int(bad_date.sum())} row(s) dropped, e.g. line {rows}"))
    numbers = {c: _column(df, cols, c, close_only) for c in OHLCV}
    frame = pd.DataFrame({"day": days.dt.normalize(), **numbers})[~bad_date]
    if not frame["day"].is_monotonic_increasing:
        findings.append(DataQualityFinding(QualityCode.UNSORTED_DATES, symbol, "rows were not in date order; sorted"))
        frame = frame.sort_values("day", kind="stable")
    dup = frame["day"].duplicated(keep="last")
    if dup.any():
        shown = ", ".join(str(d.date()) for d in frame["day"][dup][:3])
        findings.append(DataQualityFinding(QualityCode.DUPLICATE_DATE, symbol, f"{int(dup.sum())} duplicate date(s), last row kept: {shown}"))
        frame = frame[~dup]
    return DailyHistory(
        symbol,
        frame["day"].to_numpy().astype("datetime64[D]"),
        *(frame[c].to_numpy(float) for c in OHLCV),
        close_only=close_only,
        findings=tuple(findings),
    )


def read_bars(path: str | Path, symbol: str) -> DailyHistory:
    """Bars of ``symbol`` from a CSV or Parquet file (see the module docstring)."""
    path = Path(path)
    return _frame_to_history(_read_frame(path), symbol, str(path))


# --- the bar store --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    symbol: str
    rows_read: int
    rows_stored: int
    close_only: bool
    stored_at: Path | None
    findings: tuple[DataQualityFinding, ...]


def _write_store(h: DailyHistory, store: Path) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    cols = ("close",) if h.close_only else OHLCV
    frame = pd.DataFrame({"date": h.days.astype(str), **{c: getattr(h, c) for c in cols}})
    target = store / f"{h.symbol}.csv"
    tmp = target.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, float_format="%.6f", na_rep="")
    tmp.replace(target)  # atomic: a reader never sees half a file
    return target


def import_bars(path: str | Path, symbol: str, store: str | Path) -> ImportResult:
    """Check a bar file and store its clean rows as ``store/SYMBOL.csv`` (plus a quality report).

    Nothing is stored when no row survives the checks.
    """
    raw = read_bars(path, symbol)
    clean = clean_history(raw)
    store = Path(store)
    target = _write_store(clean, store) if len(clean) else None
    if target is not None:
        report = [{"code": str(f.code), "subject": f.subject, "detail": f.detail} for f in clean.findings]
        (store / f"{symbol}.quality.json").write_text(json.dumps({"source": str(path), "findings": report}, indent=2))
    return ImportResult(symbol, len(raw), len(clean), clean.close_only, target, clean.findings)


def load_store(store: str | Path) -> dict[str, DailyHistory]:
    """Every ``SYMBOL.csv`` in a bar store."""
    store = Path(store)
    if not store.is_dir():
        raise _problem(store, "not-found", "no such bar store (run `alluse data import` first)")
    return {p.stem: read_bars(p, p.stem) for p in sorted(store.glob("*.csv"))}


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
    using D's close would look ahead), after D's close it is D's close; the quote is stamped
    ``at`` because in a replay the simulated market is the live one. A day with no bar gives
    no quote (the facts then fall back to the last close, flagged). Chains are modelled
    (``engine.options.synthetic_chain``) from the quote and VIX, unless ``chains=False``,
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
        index_symbol: str = "SPY",
        earnings: Mapping[str, Sequence[date]] | None = None,
        chains: bool = True,
        chain_model: ChainModel = DEFAULT_CHAIN_MODEL,
        lookback_sessions: int = 60,
    ) -> None:
        self._h = dict(histories)
        self._vix, self._index = vix_symbol, index_symbol
        self._earnings = {s: np.array(sorted(d), dtype="datetime64[D]") for s, d in (earnings or {}).items()}
        self._chains, self._model, self._lookback = chains, chain_model, lookback_sessions
        self._memo: dict[tuple, object] = {}
        self._token = object()  # tells this adapter's content keys from any other's
        self._memo_day: date | None = None

    def _cached(self, key: tuple, compute):
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
            return DailyHistory(symbol, np.array([], dtype="datetime64[D]"), empty, empty, empty, empty, empty)
        return h.between(first, last)

    def _recent(self, symbol: str, last: date) -> DailyHistory | None:
        def compute():
            h = self._h.get(symbol)
            if h is None:
                return None
            upto = h.until(last)
            return clean_history(upto.slice(max(len(upto) - self._lookback, 0), len(upto)))

        return self._cached(("recent", symbol, last), compute)

    def _price(self, symbol: str, at: datetime, day: date) -> float | None:
        """The bar price in force at ``at`` (open during the session, close after it)."""
        h = self._h.get(symbol)
        close = calendar.session_close(day)
        if h is None or close is None or at < calendar.session_open(day):
            return None
        i = int(np.searchsorted(h.days, np.datetime64(day, "D")))
        if i >= len(h) or h.days[i] != np.datetime64(day, "D"):
            return None
        return float(h.close[i] if (at >= close or h.close_only) else h.open[i])

    def _quote(self, symbol: str, at: datetime, day: date, priced_at: datetime | None) -> Quote | None:
        price = self._cached(("price", symbol, priced_at), lambda: self._price(symbol, at, day))
        return None if price is None else Quote(symbol, price, at)

    def _last_close(self, symbol: str, at: datetime) -> tuple[date, float] | None:
        completed = _completed(at)

        def compute():  # what _recent(symbol, completed) would end with, without cleaning it all
            h = self._h.get(symbol)
            if h is None:
                return None
            upto = h.until(completed)
            return last_valid_close(upto.slice(max(len(upto) - self._lookback, 0), len(upto)))

        return self._cached(("last_close", symbol, completed), compute)

    def _atr(self, symbol: str, at: datetime, cutoff: date, price: float | None):
        def compute():
            recent = self._recent(symbol, cutoff)
            return None if recent is None else atr_basis(recent, cutoff)

        basis = self._cached(("atr", symbol, cutoff), compute)
        return None if basis is None else reading_at(basis, at, price)

    def _earnings_week(self, day: date) -> frozenset[str]:
        monday = np.datetime64(day - timedelta(days=day.weekday()), "D")
        return frozenset(s for s, d in self._earnings.items() if ((d >= monday) & (d < monday + 7)).any())

    def _chain(self, symbol: str, quote: Quote | None, vix: Quote | None, priced_at: datetime | None) -> OptionChain | None:
        if not self._chains or quote is None or vix is None or priced_at is None:
            return None
        if not all(math.isfinite(v) and v > 0 for v in (quote.last, vix.last)):
            return None
        key = ("chain", symbol, quote.last, vix.last, priced_at)
        return self._cached(key, lambda: synthetic_chain(symbol, quote.last, vix.last, priced_at, self._model))

    def _index_drawdown(self, cutoff: date) -> float | None:
        h = self._h.get(self._index)
        if h is None:
            return None
        closes = h.until(cutoff).close[-252:]
        closes = closes[np.isfinite(closes) & (closes > 0)]
        return float(1 - closes[-1] / closes.max()) if len(closes) else None

    def _vix_closes_above_30(self, completed: date) -> int:
        vix_h = self._h.get(self._vix)
        closes = vix_h.until(completed).close if vix_h is not None else np.array([])
        return _consecutive_above(closes[np.isfinite(closes)], 30.0)

    def snapshot(self, at: datetime, symbols: Sequence[str]) -> MarketSnapshot:
        day = calendar.new_york_date(at)
        self._start_day(day)
        cutoff, _ = calendar.atr_bar_cutoff(at)
        completed = _completed(at)
        priced_at = _priced_at(at, day)
        key = ("snapshot", tuple(symbols), cutoff, completed, priced_at)
        cached = self._memo.get(key)
        if cached is not None and cached[1] is not None and at <= cached[1]:
            return _restamped(cached[0], at)
        snap = self._build(at, symbols, day, cutoff, completed, priced_at)
        until = _unchanged_until(snap)
        if until is not None:  # the same content until then: say so, for engine.quiet
            snap = replace(snap, content_key=(self._token, key))
        self._memo[key] = (snap, until)
        return snap

    def _build(self, at: datetime, symbols: Sequence[str], day: date, cutoff: date, completed: date,
               priced_at: datetime | None) -> MarketSnapshot:
        quotes, atr, chains, last_close = {}, {}, {}, {}
        vix_quote = self._quote(self._vix, at, day, priced_at)
        for s in symbols:
            q = self._quote(s, at, day, priced_at)
            if q is not None:
                quotes[s] = q
            lc = self._last_close(s, at)
            if lc is not None:
                last_close[s] = lc
            reading = self._atr(s, at, cutoff, q.last if q is not None else (lc[1] if lc else None))
            if reading is not None:
                atr[s] = reading
            if (c := self._chain(s, q, vix_quote, priced_at)) is not None:
                chains[s] = c
        findings = tuple(
            DataQualityFinding(QualityCode.MISSING_QUOTE, s, "symbol not in the bar store")
            for s in symbols if s not in self._h
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
            vix_closes_above_30=self._cached(("vix30", completed), lambda: self._vix_closes_above_30(completed)),
            spx_drawdown=self._cached(("drawdown", completed), lambda: self._index_drawdown(completed)),
            findings=findings,
        )


def _unchanged_until(snap: MarketSnapshot) -> datetime | None:
    """Until when the same bars give the same snapshot (apart from its time stamps): the first
    instant an ATR reading would go stale; None when one already is (its note names the age,
    which moves with every tick)."""
    limit = datetime.max.replace(tzinfo=calendar.NEW_YORK)
    for reading in snap.atr5.values():
        if reading.source == "stale_fallback":
            return None
        if reading.last_bar is not None:
            limit = min(limit, calendar.refresh_after(reading.last_bar) + STALE_AFTER)
    return limit


def _restamped(snap: MarketSnapshot, at: datetime) -> MarketSnapshot:
    """``snap`` as seen at ``at``: the bar prices are the same, the quotes are stamped now (a
    replay's market is the live one, as in ``_quote``)."""
    quotes = {s: Quote(q.symbol, q.last, at, q.bid, q.ask) for s, q in snap.quotes.items()}
    vix = None if snap.vix is None else Quote(snap.vix.symbol, snap.vix.last, at, snap.vix.bid, snap.vix.ask)
    return replace(snap, as_of=at, quotes=quotes, vix=vix)


def _priced_at(at: datetime, day: date) -> datetime | None:
    """The instant whose bar price is in force at ``at``: none before the open, the open
    during the session, the close after it."""
    opens, closes = calendar.session_open(day), calendar.session_close(day)
    if opens is None or closes is None or at < opens:
        return None
    return closes if at >= closes else opens


class FileMarketData(BarMarketData):
    """``BarMarketData`` over a bar store written by ``import_bars``."""

    def __init__(self, store: str | Path, **kwargs) -> None:
        super().__init__(load_store(store), **kwargs)
