"""The bar store: validated daily bars the backtest reads, with a manifest saying where they came from.

A store is a directory of ``SYMBOL.csv`` files (``date,open,high,low,close,volume`` or
``date,close``) and ``manifest.json``::

    {"format": "alluse-bars/1",
     "symbols": {"VIX": {"file": "VIX.csv", "sha256": "...", "rows": 9235,
                         "first": "1990-01-02", "last": "2026-07-23", "close_only": false,
                         "source": "/work/shared/data/vix-daily.csv", "source_format": "ohlc",
                         "source_sha256": "...", "findings": [...]}}}

Validation (``validate``), the same for ``alluse data import``, ``alluse data fetch --ib`` and a
folder of files given to ``--data`` directly:

* a row whose date cannot be read, or whose prices are not finite and positive (NaN, Yahoo's
  ``null``, 0, high < low, close outside [low, high]) is dropped and reported by line or date;
* dates must ascend: a file entirely newest-first is reversed (reported); any other disorder is
  an error naming the line;
* a date twice with the same prices is kept once (reported); with different prices it is an
  error naming both lines - which row is true cannot be known;
* sessions missing against the NYSE calendar are reported, never filled; rows on days that are
  not NYSE sessions are reported and kept out.

An error refuses the whole batch: nothing is written, so a store is never half-imported. Files
are written atomically (temporary file, then rename), the manifest last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.market_data import formats
from constitution.errors import InvalidInput, Problem
from engine.market import calendar
from engine.market.indicators import clean_history
from engine.market.snapshot import DailyHistory, DataQualityFinding, QualityCode

MANIFEST = "manifest.json"
STORE_FORMAT = "alluse-bars/1"


@dataclass(frozen=True)
class Validated:
    """A file's bars after the checks: clean rows, the findings, and where they came from."""

    symbol: str
    history: DailyHistory  # clean rows only
    rows_read: int
    source: str
    source_format: str
    source_sha256: str


@dataclass(frozen=True)
class ImportResult:
    symbol: str
    rows_read: int
    rows_stored: int
    close_only: bool
    stored_at: Path | None
    findings: tuple[DataQualityFinding, ...]
    first: str | None = None
    last: str | None = None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- validation -------------------------------------------------------------------------------


def validate(path: str | Path, symbol: str | None = None) -> Validated:
    """Read and check one bar file (``InvalidInput`` with located problems when it is unusable)."""
    path = Path(path)
    raw = formats.read_raw(path)
    name = symbol or raw.symbol_hint or formats.symbol_from_name(path)
    if name is None:
        raise formats.located(
            path,
            "bad-symbol",
            f"cannot tell the symbol from the name {path.name!r}: give it as SYMBOL={path}",
        )
    frame, findings = _ordered(raw, name)
    o, hi, lo, c, v = (frame[col].to_numpy(float) for col in formats.OHLCV)
    history = DailyHistory(
        name,
        frame["day"].to_numpy().astype("datetime64[D]"),
        o,
        hi,
        lo,
        c,
        v,
        close_only=raw.close_only,
        findings=tuple(findings),
    )
    return validated(
        history,
        rows_read=len(raw.line),
        source=str(path),
        source_format=raw.format,
        source_sha256=sha256_of(path),
    )


def validated(
    history: DailyHistory, *, rows_read: int, source: str, source_format: str, source_sha256: str
) -> Validated:
    """The row checks for bars in date order (a file's, once ordered; or a broker's)."""
    return Validated(
        symbol=history.symbol,
        history=clean_history(_sessions_only(history)),
        rows_read=rows_read,
        source=source,
        source_format=source_format,
        source_sha256=source_sha256,
    )


def _ordered(raw: formats.RawBars, symbol: str) -> tuple[pd.DataFrame, list[DataQualityFinding]]:
    findings: list[DataQualityFinding] = []
    frame = pd.DataFrame({"day": raw.day.dt.normalize(), **raw.prices, "line": raw.line})
    bad = frame["day"].isna()
    if bad.any():
        lines = ", ".join(str(n) for n in frame["line"][bad][:3])
        findings.append(
            DataQualityFinding(
                QualityCode.BAD_DATE, symbol, f"{int(bad.sum())} row(s) dropped, e.g. line {lines}"
            )
        )
        frame = frame[~bad]
    if len(frame) > 1 and frame["day"].is_monotonic_decreasing and frame["day"].nunique() > 1:
        findings.append(
            DataQualityFinding(QualityCode.UNSORTED_DATES, symbol, "newest first; reversed")
        )
        frame = frame.iloc[::-1]
    _check_ascending(frame, raw.path)
    frame, dropped = _without_repeats(frame, raw.path)
    if dropped:
        findings.append(
            DataQualityFinding(
                QualityCode.DUPLICATE_DATE,
                symbol,
                f"{dropped} identical repeated row(s) kept once",
            )
        )
    return frame, findings


def _check_ascending(frame: pd.DataFrame, path: Path) -> None:
    days = frame["day"].to_numpy()
    back = np.flatnonzero(days[1:] < days[:-1])
    if len(back):
        i = int(back[0]) + 1
        raise formats.located(
            path,
            "unsorted-dates",
            f"{_iso(days[i])} comes after {_iso(days[i - 1])}: dates must ascend",
            line=int(frame["line"].iloc[i]),
        )


def _without_repeats(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, int]:
    repeated = frame["day"].duplicated(keep=False)
    if not repeated.any():
        return frame, 0
    values = frame[list(formats.OHLCV)].fillna(-1.0)
    same = frame[repeated].assign(key=values[repeated].apply(tuple, axis=1))
    for _day, group in same.groupby("day", sort=True):
        if group["key"].nunique() > 1:
            a, b = group["line"].iloc[0], group["line"].iloc[1]
            raise formats.located(
                path,
                "duplicate-date",
                f"{_iso(group['day'].iloc[0])} twice with different prices (lines {a} and {b})",
                line=int(b),
            )
    keep = ~frame["day"].duplicated(keep="first")
    return frame[keep], int((~keep).sum())


def _sessions_only(h: DailyHistory) -> DailyHistory:
    """Rows on days that are not NYSE sessions are reported and left out (the replay would never
    ask for them, and a gap check cannot place them)."""
    inside = (h.days >= np.datetime64(calendar.CALENDAR_FIRST)) & (
        h.days <= np.datetime64(calendar.CALENDAR_LAST)
    )
    if not inside.any():
        return h
    sessions = calendar.sessions_between(
        h.days[inside][0].astype("O"), h.days[inside][-1].astype("O")
    )
    off = inside & ~np.isin(h.days, sessions)
    if not off.any():
        return h
    shown = ", ".join(str(d) for d in h.days[off][:3])
    more = f" and {int(off.sum()) - 3} more" if off.sum() > 3 else ""
    finding = DataQualityFinding(
        QualityCode.NOT_A_SESSION,
        h.symbol,
        f"{int(off.sum())} row(s) on days the NYSE was closed, left out: {shown}{more}",
    )
    keep = ~off
    return DailyHistory(
        h.symbol,
        h.days[keep],
        h.open[keep],
        h.high[keep],
        h.low[keep],
        h.close[keep],
        h.volume[keep],
        close_only=h.close_only,
        findings=(*h.findings, finding),
    )


def _iso(day: object) -> str:
    return str(pd.Timestamp(day).date())  # type: ignore[arg-type]


# --- writing ----------------------------------------------------------------------------------


def _write_atomic(target: Path, text: str) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a file


def _bars_text(h: DailyHistory) -> str:
    cols = ("close",) if h.close_only else formats.OHLCV
    frame = pd.DataFrame({"date": h.days.astype(str), **{c: getattr(h, c) for c in cols}})
    return frame.to_csv(index=False, float_format="%.6f", na_rep="", lineterminator="\n")


def _finding_json(f: DataQualityFinding) -> dict:
    return {"code": str(f.code), "subject": f.subject, "detail": f.detail}


def _empty_manifest() -> dict[str, Any]:
    return {"format": STORE_FORMAT, "symbols": {}}


def read_manifest(store: Path) -> dict[str, Any]:
    path = store / MANIFEST
    if not path.is_file():
        return _empty_manifest()
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (ValueError, OSError) as exc:
        raise formats.located(path, "bad-manifest", f"unreadable manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise formats.located(path, "bad-manifest", f"not an {STORE_FORMAT} manifest")
    return manifest


def write_store(batch: Sequence[Validated], store: str | Path) -> list[ImportResult]:
    """Write validated histories into ``store`` (one file each, then the manifest)."""
    store = Path(store)
    _refuse_repeats(batch)
    manifest = read_manifest(store) if store.is_dir() else _empty_manifest()
    empty = [v for v in batch if not len(v.history)]
    if empty:
        raise InvalidInput(
            [
                Problem(v.source, 1, 1, "no-usable-rows", v.symbol, "no row passed the checks")
                for v in empty
            ],
            what="bar file",
        )
    try:
        store.mkdir(parents=True, exist_ok=True)
        results = []
        for v in batch:
            target = store / f"{v.symbol}.csv"
            _write_atomic(target, _bars_text(v.history))
            manifest["symbols"][v.symbol] = _entry(v, target)
            results.append(_result(v, target))
        manifest["symbols"] = dict(sorted(manifest["symbols"].items()))
        _write_atomic(store / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:  # each file is replaced whole (_write_atomic), the manifest last
        reason = exc.strerror or str(exc)
        raise InvalidInput(
            [Problem(str(store), 1, 1, "store-unwritable", "", f"cannot write here: {reason}")],
            what="bar store",
        ) from None
    return results


def _refuse_repeats(batch: Sequence[Validated]) -> None:
    seen: dict[str, str] = {}
    problems = []
    for v in batch:
        if v.symbol in seen:
            problems.append(
                Problem(v.source, 1, 1, "same-symbol", v.symbol, f"{seen[v.symbol]} is also it")
            )
        seen[v.symbol] = v.source
    if problems:
        raise InvalidInput(problems, what="bar file")


def _entry(v: Validated, target: Path) -> dict:
    h = v.history
    return {
        "file": target.name,
        "sha256": sha256_of(target),
        "rows": len(h),
        "first": str(h.days[0]),
        "last": str(h.days[-1]),
        "close_only": h.close_only,
        "source": v.source,
        "source_format": v.source_format,
        "source_sha256": v.source_sha256,
        "findings": [_finding_json(f) for f in h.findings],
    }


def _result(v: Validated, target: Path | None) -> ImportResult:
    h = v.history
    return ImportResult(
        symbol=v.symbol,
        rows_read=v.rows_read,
        rows_stored=len(h),
        close_only=h.close_only,
        stored_at=target,
        findings=h.findings,
        first=str(h.days[0]) if len(h) else None,
        last=str(h.days[-1]) if len(h) else None,
    )


def import_files(
    jobs: Iterable[tuple[str | Path, str | None]], store: str | Path
) -> list[ImportResult]:
    """Validate every (file, symbol-or-None) first; write them only if all are usable."""
    problems: list[Problem] = []
    batch: list[Validated] = []
    for path, symbol in jobs:
        try:
            batch.append(validate(path, symbol))
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems, what="bar file")
    return write_store(batch, store)


# --- reading ----------------------------------------------------------------------------------


def open_bars(path: str | Path) -> dict[str, DailyHistory]:
    """Histories from a bar store (a directory with a manifest), a folder of bar files in any
    layout ``formats`` reads (e.g. ../shared/data), or one bar file."""
    path = Path(path)
    if path.is_file():
        v = validate(path)
        return {v.symbol: v.history}
    if not path.is_dir():
        raise formats.located(path, "not-found", "no such bar store, folder or file")
    if (path / MANIFEST).is_file():
        return _load_manifest_store(path)
    return _load_folder(path)


def _load_manifest_store(store: Path) -> dict[str, DailyHistory]:
    manifest = read_manifest(store)
    out, problems = {}, []
    for symbol, entry in manifest["symbols"].items():
        file = store / entry["file"]
        if not file.is_file() or sha256_of(file) != entry["sha256"]:
            problems.append(
                Problem(
                    str(file),
                    1,
                    1,
                    "store-modified",
                    symbol,
                    "missing or changed since it was imported (sha256 differs from the "
                    "manifest); import it again",
                )
            )
            continue
        out[symbol] = validate(file, symbol).history
    if problems:
        raise InvalidInput(problems, what="bar store")
    return out


def bar_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in formats.BAR_SUFFIXES and not p.name.startswith(".")
    )


def _load_folder(folder: Path) -> dict[str, DailyHistory]:
    files = bar_files(folder)
    if not files:
        raise formats.located(folder, "no-bars", "no bar files (.csv, .txt, .parquet) here")
    problems: list[Problem] = []
    batch: list[Validated] = []
    for f in files:
        try:
            batch.append(validate(f))
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems, what="bar files")
    _refuse_repeats(batch)
    return {v.symbol: v.history for v in batch}


def manifest_entries(store: str | Path) -> Mapping[str, dict]:
    return read_manifest(Path(store))["symbols"]
