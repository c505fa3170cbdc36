"""Daily-bar checks and ATR(5) with the constitution's fallbacks.

ATR is Wilder's: the first value is the mean of the first ``period`` true ranges (the first
bar's true range is high - low, as TA-Lib and talipp do), then
``atr[t] = (atr[t-1] * (period - 1) + tr[t]) / period``. Over history that has closes only, the
true range degenerates to ``|close[t] - close[t-1]|`` (the first bar has none and is skipped);
the result is reported with source ``close_to_close`` so nobody mistakes it for a full ATR.

Fallbacks (constitution §8, ``protocol.atr``): a Wilder value whose refresh is more than
``stale_hours`` old is replaced by that value x ``stale_multiplier`` (``stale_fallback``); with
no value at all, ``fallback_pct_of_price`` of the price (``price_fallback``). v1.3: 24 h, x1.1,
2 %. Every one of them comes in ``engine.market.params.AtrParams``; none has a default here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from engine.market import calendar
from engine.market.params import AtrParams
from engine.market.snapshot import AtrReading, DailyHistory, DataQualityFinding, QualityCode

# --- bar checks -----------------------------------------------------------------------------


def _bad_rows(h: DailyHistory) -> list[tuple[np.ndarray, QualityCode, str]]:
    """Masks of rows that must not reach an indicator, each with its finding."""
    cols = (h.close,) if h.close_only else (h.open, h.high, h.low, h.close)
    with np.errstate(invalid="ignore"):
        non_finite = np.logical_or.reduce([~np.isfinite(c) for c in cols])
        non_positive = ~non_finite & np.logical_or.reduce([c <= 0 for c in cols])
        checks = [
            (non_finite, QualityCode.NON_FINITE_PRICE, "NaN or infinite price"),
            (non_positive, QualityCode.NON_POSITIVE_PRICE, "zero or negative price"),
        ]
        if not h.close_only:
            ok = ~(non_finite | non_positive)
            hl = ok & (h.high < h.low)
            outside = ok & ~hl & ((h.close > h.high) | (h.close < h.low))
            checks += [
                (hl, QualityCode.HIGH_BELOW_LOW, "high below low"),
                (outside, QualityCode.CLOSE_OUTSIDE_RANGE, "close outside [low, high]"),
            ]
    return checks


def _describe(days: np.ndarray, what: str, limit: int = 3) -> str:
    shown = ", ".join(str(d) for d in days[:limit])
    more = f" and {len(days) - limit} more" if len(days) > limit else ""
    return f"{len(days)} bar(s) dropped, {what}: {shown}{more}"


def clean_history(h: DailyHistory, check_gaps: bool = True) -> DailyHistory:
    """Drop bars an indicator must not see; record a finding for each kind of problem.

    Gaps (sessions missing between the first and last bar, by the NYSE calendar) are reported,
    not filled: an invented bar would be a silently wrong number.
    """
    findings = list(h.findings)
    drop = np.zeros(len(h), dtype=bool)
    for mask, code, what in _bad_rows(h):
        if mask.any():
            findings.append(DataQualityFinding(code, h.symbol, _describe(h.days[mask], what)))
            drop |= mask
    if not h.close_only:
        with np.errstate(invalid="ignore"):
            odd_open = ~drop & ((h.open > h.high) | (h.open < h.low))
        if odd_open.any():  # Cboe's early VIX opens often are; the ATR does not use the open
            detail = _describe(h.days[odd_open], "open outside [low, high]").replace(
                "dropped", "kept"
            )
            findings.append(DataQualityFinding(QualityCode.OPEN_OUTSIDE_RANGE, h.symbol, detail))
    kept = h if not drop.any() else _take(h, ~drop)
    if check_gaps and len(kept) > 1:
        missing = _missing(kept.days)
        if len(missing):
            detail = _describe(missing, "sessions missing").replace("bar(s) dropped, ", "")
            findings.append(DataQualityFinding(QualityCode.HISTORY_GAP, h.symbol, detail))
    if h.close_only and len(kept) and not any(f.code is QualityCode.CLOSE_ONLY for f in findings):
        findings.append(
            DataQualityFinding(
                QualityCode.CLOSE_ONLY, h.symbol, "closes only: close-to-close true range"
            )
        )
    return kept.with_findings(tuple(findings))


def usable_rows(h: DailyHistory) -> np.ndarray:
    """The rows ``clean_history(h)`` keeps (each row is judged on its own)."""
    bad = np.zeros(len(h), dtype=bool)
    for mask, _, _ in _bad_rows(h):
        bad |= mask
    return ~bad


def _missing(days: np.ndarray) -> np.ndarray:
    first, last = days[0].astype(date), days[-1].astype(date)
    # Parts of the history outside the calendar's range cannot be checked for gaps.
    lo, hi = max(first, calendar.CALENDAR_FIRST), min(last, calendar.CALENDAR_LAST)
    if lo >= hi:
        return np.array([], dtype="datetime64[D]")
    return calendar.missing_sessions(
        days[(days >= np.datetime64(lo)) & (days <= np.datetime64(hi))]
    )


def _take(h: DailyHistory, mask: np.ndarray) -> DailyHistory:
    return DailyHistory(
        h.symbol,
        h.days[mask],
        h.open[mask],
        h.high[mask],
        h.low[mask],
        h.close[mask],
        h.volume[mask],
        close_only=h.close_only,
        findings=h.findings,
    )


# --- ATR ------------------------------------------------------------------------------------


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Wilder's true range; the first bar, having no previous close, uses high - low."""
    tr = high - low
    if len(tr) > 1:
        prev = close[:-1]
        tr[1:] = np.maximum.reduce([tr[1:], np.abs(high[1:] - prev), np.abs(low[1:] - prev)])
    return tr


def close_to_close_range(close: np.ndarray) -> np.ndarray:
    """|close[t] - close[t-1]| (one shorter than ``close``)."""
    return np.abs(np.diff(close))


def wilder(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing; NaN until ``period`` values exist."""
    n = len(values)
    out = np.full(n, np.nan)
    if n < period:
        return out
    # A recursive filter: one tight Python loop over floats is faster here than any numpy
    # trick that stays exact (closed forms underflow over decades of bars).
    keep = 1.0 - 1.0 / period
    alpha = 1.0 / period
    acc = float(values[:period].mean())
    out[period - 1] = acc
    tail = values[period:].tolist()
    res = out[period:]
    for i, v in enumerate(tail):
        acc = acc * keep + v * alpha
        res[i] = acc
    return out


def atr_series(h: DailyHistory, period: int) -> tuple[np.ndarray, np.ndarray]:
    """(days, ATR) over clean bars. Close-only history: close-to-close, first day dropped."""
    if h.close_only:
        return h.days[1:], wilder(close_to_close_range(h.close), period)
    return h.days, wilder(true_range(h.high, h.low, h.close), period)


@dataclass(frozen=True, slots=True)
class AtrBasis:
    """The heavy half of an ATR reading: the last valid Wilder value through ``cutoff``.

    It depends only on the bars and the cutoff, so a replay computes it once per refresh and
    asks ``reading_at`` for every tick in between (the age check is the only part that moves).
    """

    symbol: str
    cutoff: date
    value: float | None  # None: fewer than ``period`` usable bars
    last_bar: date | None
    close_only: bool
    findings: tuple[DataQualityFinding, ...]
    period: int


def atr_basis(history: DailyHistory, cutoff: date, period: int) -> AtrBasis:
    usable = history.until(cutoff)
    days, atr = atr_series(usable, period)
    valid = np.flatnonzero(np.isfinite(atr) & (atr > 0))
    value = last_bar = None
    if len(valid):
        value, last_bar = float(atr[valid[-1]]), days[valid[-1]].astype(date)
    return AtrBasis(
        history.symbol, cutoff, value, last_bar, usable.close_only, tuple(history.findings), period
    )


def reading_at(basis: AtrBasis, at: datetime, price: float | None, atr: AtrParams) -> AtrReading:
    """The reading ``basis`` gives at ``at``: as computed, x``stale_factor`` once stale, or a
    fraction of ``price`` when there is no ATR at all."""
    findings = list(basis.findings)
    if basis.value is not None and basis.last_bar is not None:  # a value has its last bar
        age = at - calendar.refresh_after(basis.last_bar, atr.refresh)
        if age <= atr.stale_after:
            return AtrReading(
                basis.value,
                "close_to_close" if basis.close_only else "wilder",
                basis.last_bar,
                tuple(findings),
            )
        findings.append(
            DataQualityFinding(
                QualityCode.STALE_ATR,
                basis.symbol,
                f"ATR through {basis.last_bar} is {age.total_seconds() / 3600:.1f} h past its refresh; x{atr.stale_factor}",
            )
        )
        return AtrReading(
            basis.value * atr.stale_factor, "stale_fallback", basis.last_bar, tuple(findings)
        )
    ok_price = price is not None and np.isfinite(price) and price > 0
    findings.append(
        DataQualityFinding(
            QualityCode.NO_ATR,
            basis.symbol,
            f"fewer than {basis.period} usable bars before {basis.cutoff}; "
            + (f"{atr.price_fraction:.0%} of price" if ok_price else "and no usable price"),
        )
    )
    value = float(price) * atr.price_fraction if ok_price and price is not None else None
    return AtrReading(value, "price_fallback", None, tuple(findings))


def atr_reading(
    history: DailyHistory, at: datetime, price: float | None, atr: AtrParams
) -> AtrReading:
    """The ATR in force at ``at`` with its source, from history up to the last refresh.

    Only bars dated before the refresh in force at ``at`` are used (no look-ahead).
    ``history`` should already be clean (``clean_history``); its findings are carried along.
    """
    cutoff, _ = calendar.atr_bar_cutoff(at, atr.refresh)
    return reading_at(atr_basis(history, cutoff, atr.period), at, price, atr)
