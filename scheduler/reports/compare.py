"""Two backtest runs side by side: ``compare_report(db_a, db_b) -> html``.

Each database is read the way the tearsheet reads it (read-only, no lease); the page shows
the constitution each run used, every metric of both runs with the difference B - A, the
sleeves, the total equity of both on one chart, rejections and week types. The governance
gate (``alluse propose``) uses ``compare_figures`` for its thresholds and this page as the
report it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scheduler.reports import charts
from scheduler.reports.figures import TOTAL, Tearsheet
from scheduler.reports.tearsheet import METRICS, build_tearsheet, environment


@dataclass(frozen=True)
class MetricPair:
    key: str
    label: str
    format: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


def _total_metrics(ts: Tearsheet) -> dict[str, float | None]:
    perf = ts.performance.get(TOTAL)
    values: dict[str, float | None] = {
        k: (getattr(perf, k) if perf else None) for k, _, _ in METRICS
    }
    s = ts.book.sleeves.get(TOTAL)
    values.update(
        {
            "pnl": s.pnl if s else None,
            "premium": s.premium if s else None,
            "win_rate": s.win_rate if s else None,
            "profit_factor": s.profit_factor if s else None,
            "deployed": ts.deployed.get(TOTAL),
            "trades_closed": float(ts.book.trades_closed),
            "orders_placed": float(ts.book.orders_placed),
            "kill_days": float(sum(m.mode == "kill" for m in ts.modes)),
            "safe_days": float(sum(m.mode == "safe" for m in ts.modes)),
        }
    )
    return values


_EXTRA = (
    ("pnl", "P&L", "money"),
    ("premium", "premium collected", "money"),
    ("win_rate", "win rate", "pct"),
    ("profit_factor", "profit factor", "ratio"),
    ("deployed", "average capital deployed", "pct"),
    ("trades_closed", "trades closed", "int"),
    ("orders_placed", "orders placed", "int"),
    ("safe_days", "SAFE days", "int"),
    ("kill_days", "kill-switch days", "int"),
)


def compare_figures(a: Tearsheet, b: Tearsheet) -> list[MetricPair]:
    """Every total-level metric of both runs, in display order."""
    va, vb = _total_metrics(a), _total_metrics(b)
    return [
        MetricPair(k, label, kind, va.get(k), vb.get(k)) for k, label, kind in (*METRICS, *_EXTRA)
    ]


def _context(a: Tearsheet, b: Tearsheet, labels: tuple[str, str]) -> dict[str, Any]:
    series = {
        labels[0]: a.equity[TOTAL] if TOTAL in a.equity else None,
        labels[1]: b.equity[TOTAL] if TOTAL in b.equity else None,
    }
    present = {k: v for k, v in series.items() if v is not None}
    return {
        "a": a,
        "b": b,
        "labels": labels,
        "pairs": compare_figures(a, b),
        "plotly_js": charts.plotly_js(),
        "chart": charts.compare_equity_chart(present) if present else "",
        "reasons": sorted(set(a.book.rejections) | set(b.book.rejections)),
        "week_types": sorted(set(a.week_types) | set(b.week_types)),
        "accounts": sorted((set(a.book.sleeves) | set(b.book.sleeves)) - {TOTAL}) + [TOTAL],
    }


def render_compare(a: Tearsheet, b: Tearsheet, labels: tuple[str, str] = ("A", "B")) -> str:
    return environment().get_template("compare.html").render(**_context(a, b, labels))


def compare_report(db_a: str, db_b: str, labels: tuple[str, str] | None = None) -> str:
    """The side-by-side HTML of two runs' databases (URLs or SQLite paths). ``labels`` name
    the runs on the page (default: A and B)."""
    a, b = build_tearsheet(db_a), build_tearsheet(db_b)
    return render_compare(a, b, labels or ("A", "B"))
