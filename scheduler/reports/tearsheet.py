"""The backtest tearsheet: one self-contained HTML file from a run's database.

``write_tearsheet(db_url, path)`` reads the database (read-only, no lease), computes every
figure (``scheduler.reports.figures``) and renders ``templates/tearsheet.html`` with plotly's
JavaScript inline: no CDN, the file opens offline. Every figure the tests check carries a
``data-figure`` name and a machine-readable ``data-value``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from adapters.storage.readers import ReadOnlyDatabase
from scheduler.reports import charts
from scheduler.reports.figures import TOTAL, Tearsheet, tearsheet
from scheduler.reports.metrics import Performance

METRICS: tuple[tuple[str, str, str], ...] = (
    # (Performance field, label, format)
    ("cagr", "CAGR", "pct"),
    ("volatility", "volatility (annualised)", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "max drawdown", "pct"),
    ("drawdown_days", "longest drawdown (days)", "int"),
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt(value: Any, kind: str = "num") -> str:
    """A figure for people: n/a when absent; money with thousands; fractions as percent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "int":
        return f"{int(value):,d}"
    return str(value)


def raw(value: Any) -> str:
    """The machine-readable ``data-value``: full precision, empty when absent."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("scheduler.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["raw"] = raw
    return env


def _metric_rows(ts: Tearsheet) -> list[dict[str, Any]]:
    names = [n for n in ts.performance if n != TOTAL] + [TOTAL]
    columns: list[tuple[str, Performance | None]] = [(n, ts.performance.get(n)) for n in names]
    if ts.benchmark_performance is not None:
        columns.append((f"benchmark ({ts.timeline.benchmark_symbol})", ts.benchmark_performance))
    return [
        {
            "key": key,
            "label": label,
            "format": kind,
            "cells": [(name, getattr(p, key) if p else None) for name, p in columns],
        }
        for key, label, kind in METRICS
    ]


def context(ts: Tearsheet) -> dict[str, Any]:
    names = [n for n in ts.performance if n != TOTAL] + [TOTAL]
    bench_label = f"S&P 500 buy-and-hold ({ts.timeline.benchmark_symbol})"
    years = sorted({y for y, _ in ts.monthly})
    return {
        "ts": ts,
        "names": names,
        "metric_rows": _metric_rows(ts),
        "metric_columns": [n for n in names]
        + ([f"benchmark ({ts.timeline.benchmark_symbol})"] if ts.benchmark_performance else []),
        "sleeves": [ts.book.sleeves[n] for n in names if n in ts.book.sleeves],
        "months": MONTHS,
        "years": years,
        "versions": sorted(ts.timeline.constitutions.items(), key=lambda kv: kv[1]),
        "plotly_js": charts.plotly_js(),
        "chart_equity": charts.equity_chart(ts.equity, ts.benchmark, bench_label)
        if not ts.equity.empty
        else "",
        "chart_drawdown": charts.drawdown_chart(ts.drawdown) if not ts.drawdown.empty else "",
        "chart_modes": charts.mode_chart(ts.modes) if ts.modes else "",
        "chart_premium_weekly": charts.bar_chart(
            {k.isoformat(): v for k, v in ts.premium_weekly.items()},
            "Premium collected per week",
            "chart-premium-weekly",
        )
        if ts.premium_weekly
        else "",
        "chart_premium_monthly": charts.bar_chart(
            ts.premium_monthly, "Premium collected per month", "chart-premium-monthly"
        )
        if ts.premium_monthly
        else "",
        "mode_counts": _mode_counts(ts),
    }


def _mode_counts(ts: Tearsheet) -> dict[str, int]:
    counts = {"active": 0, "hedged": 0, "safe": 0, "kill": 0}
    for m in ts.modes:
        counts[m.mode] = counts.get(m.mode, 0) + 1
    return counts


def render_tearsheet(ts: Tearsheet) -> str:
    return environment().get_template("tearsheet.html").render(**context(ts))


def build_tearsheet(db_url: str) -> Tearsheet:
    db = ReadOnlyDatabase.open(db_url)
    try:
        return tearsheet(db)
    finally:
        db.close()


def write_tearsheet(db_url: str, path: str | Path) -> Tearsheet:
    """Read ``db_url``, write the tearsheet to ``path`` (whole, or not at all)."""
    ts = build_tearsheet(db_url)
    write_html(path, render_tearsheet(ts))
    return ts


def write_html(path: str | Path, html: str) -> None:
    """Write through a temporary file and rename, so a reader never sees half a report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(target)
