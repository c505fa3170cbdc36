"""Daily-bar files as users have them: recognise the layout, name the symbol, read the rows.

Layouts (recognised from the header row, case- and bracket-insensitive):

| format | header | notes |
|---|---|---|
| ``yahoo`` | Date, Open, High, Low, Close, Adj Close, Volume | ``Close`` is used (split-adjusted, not dividend-adjusted: options strike on it); ``null`` rows are bad rows |
| ``stooq`` | ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>`` | Stooq's bulk ``.txt`` files; ``<PER>`` must be ``D``; the symbol is ``<TICKER>`` |
| ``ib`` | date, open, high, low, close, volume, average (or wap), barCount | bars exported from IB (``util.df(bars)``, ``alluse data fetch``) |
| ``ohlc`` | date, open, high, low, close[, volume] | Cboe's VIX history, Stooq's CSV download, the bar store itself |
| ``close-only`` | date, close | e.g. the S&P 500 close history |

Dates are ``YYYY-MM-DD``, ``YYYYMMDD`` or anything pandas reads unambiguously; a time of day
other than midnight means the file is not daily bars. Nothing here judges the values:
``adapters.market_data.store`` validates them.

The symbol of a file is, in order: its ``<TICKER>`` column (Stooq), Yahoo's index names
(``^GSPC`` is SPX, ``^VIX`` VIX), or the file name - ``AAPL.csv``, or a lower-case name whose
other words only describe the file (``vix-daily.csv``, ``spx-daily-close.csv``, ``aapl.us.txt``,
``AAPL_1D.csv``). Any other name needs the symbol given (``SYMBOL=FILE`` or ``--symbol``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from constitution.errors import InvalidInput, Problem

OHLCV = ("open", "high", "low", "close", "volume")
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
BAR_SUFFIXES = (".csv", ".txt", ".parquet", ".pq")
# Words a file name may add to its symbol without being part of it.
DESCRIPTIVE = frozenset(
    {"daily", "day", "d", "1d", "d1", "close", "closes", "ohlc", "ohlcv", "eod", "bars", "us"}
)
# Yahoo's names for the indexes (file names like ^GSPC.csv); Stooq writes ^SPX.
YAHOO_INDEXES = {"GSPC": "SPX", "SPX": "SPX", "VIX": "VIX", "DJI": "DJI", "NDX": "NDX"}
_COLUMN_ALIASES = {"vol": "volume", "wap": "average", "adj_close": "adj close"}


def located(path: Path | str, code: str, message: str, line: int = 1) -> InvalidInput:
    return InvalidInput([Problem(str(path), line, 1, code, "", message)], what="bar file")


@dataclass(frozen=True)
class RawBars:
    """A bar file's rows in canonical columns, before any check: ``day`` is NaT where the date
    was unreadable; ``line`` is each row's line in the file (the header is line 1)."""

    path: Path
    format: str
    symbol_hint: str | None  # from the file's content (Stooq's <TICKER>), if any
    day: pd.Series  # datetime64[ns], NaT for unreadable dates
    prices: dict[str, np.ndarray]  # OHLCV columns as floats (NaN: missing or unreadable)
    line: np.ndarray  # int
    close_only: bool


def read_raw(path: Path) -> RawBars:
    """Read a bar file in any of the layouts above (``InvalidInput`` for an unreadable file)."""
    frame = _read_frame(path)
    cols = {_canonical(c): c for c in frame.columns}
    fmt = _format(cols, path)
    missing = [c for c in ("date", "close") if c not in cols]
    if missing:
        raise located(
            path, "missing-columns", f"needs columns date and close; missing {', '.join(missing)}"
        )
    close_only = not all(c in cols for c in ("open", "high", "low"))
    if fmt == "stooq":
        _check_stooq_period(frame, cols, path)
    day = _dates(frame[cols["date"]], path)
    prices = {c: _numbers(frame, cols, c, close_only) for c in OHLCV}
    return RawBars(
        path=path,
        format="close-only" if close_only and fmt == "ohlc" else fmt,
        symbol_hint=_stooq_symbol(frame, cols) if fmt == "stooq" else None,
        day=day,
        prices=prices,
        line=np.arange(len(frame)) + 2,
        close_only=close_only,
    )


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise located(path, "not-found", "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path).astype(str)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except ImportError as exc:
        raise located(
            path, "parquet-unavailable", f"reading Parquet needs pyarrow or fastparquet ({exc})"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise located(path, "unreadable", text) from None
    raise located(
        path, "unknown-format", f"expected .csv, .txt or .parquet, got {suffix or 'none'}"
    )


def _canonical(column: object) -> str:
    name = str(column).strip().strip("<>").strip().lower()
    return _COLUMN_ALIASES.get(name.replace(" ", "_"), name)


def _format(cols: Mapping[str, object], path: Path) -> str:
    if "ticker" in cols and "per" in cols:
        return "stooq"
    if "adj close" in cols:
        return "yahoo"
    if "barcount" in cols or "average" in cols:
        return "ib"
    return "ohlc"


def _check_stooq_period(frame: pd.DataFrame, cols: Mapping[str, object], path: Path) -> None:
    periods = set(frame[cols["per"]].str.strip().str.upper())
    if periods - {"D"}:
        raise located(
            path,
            "not-daily",
            f"Stooq period {', '.join(sorted(periods - {'D'}))}: only daily bars (D) are used",
        )


def _stooq_symbol(frame: pd.DataFrame, cols: Mapping[str, object]) -> str | None:
    tickers = set(frame[cols["ticker"]].str.strip())
    return normalise_symbol(tickers.pop()) if len(tickers) == 1 else None


def _dates(text: pd.Series, path: Path) -> pd.Series:
    text = text.astype(str).str.strip()
    if len(text) and text.str.fullmatch(r"\d{8}").all():
        days = pd.to_datetime(text, errors="coerce", format="%Y%m%d")
    else:
        days = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(days.dt, "tz", None) is not None:
        days = days.dt.tz_localize(None)
    timed = days.notna() & (days != days.dt.normalize())
    if timed.any():
        first = int(np.flatnonzero(timed.to_numpy())[0])
        raise located(
            path,
            "not-daily",
            f"{text.iloc[first]!r} has a time of day: daily bars are needed",
            line=first + 2,
        )
    return days


def _numbers(
    frame: pd.DataFrame, cols: Mapping[str, object], name: str, close_only: bool
) -> np.ndarray:
    if name not in cols or (close_only and name in ("open", "high", "low")):
        return np.full(len(frame), np.nan)
    # Unreadable numbers (Yahoo's "null") become NaN here and are reported row by row.
    return pd.to_numeric(frame[cols[name]], errors="coerce").to_numpy(float)


def normalise_symbol(text: str) -> str | None:
    """``^GSPC`` -> SPX, ``AAPL.US`` -> AAPL, ``msft`` -> MSFT; None if it is no ticker."""
    name = text.strip().upper()
    if name.startswith("^"):
        return YAHOO_INDEXES.get(name[1:], name[1:] if SYMBOL_RE.match(name[1:]) else None)
    if name.endswith(".US"):
        name = name[:-3]
    return name if SYMBOL_RE.match(name) else None


def symbol_from_name(path: Path) -> str | None:
    """The symbol a bar file's name gives, or None (see the module docstring)."""
    stem = path.name
    for suffix in BAR_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if stem.startswith("^"):
        return normalise_symbol(stem.split(".")[0])
    if SYMBOL_RE.match(stem):  # AAPL.csv, BRK.B.csv: upper case is a ticker as written
        return stem
    first, *rest = re.split(r"[-_. ]+", stem)
    if rest and all(word.lower() in DESCRIPTIVE for word in rest):
        return normalise_symbol(first)
    return None
