"""The tearsheet's charts, with plotly. Each returns an HTML fragment (a ``div`` and the
script that draws it); the page embeds plotly.js once, inline (``plotly_js``), so the file
opens offline."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from scheduler.reports.timeline import ModeDay

MODE_COLOURS = {
    "hedged": "rgba(255,165,0,0.25)",
    "safe": "rgba(220,20,60,0.25)",
    "kill": "rgba(0,0,0,0.35)",
}
_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 360,
    "template": "plotly_white",
}


def plotly_js() -> str:
    return get_plotlyjs()


def _html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(**_LAYOUT)
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)


def equity_chart(
    equity: pd.DataFrame,
    benchmark: pd.Series | None,
    benchmark_label: str,
    div_id: str = "chart-equity",
) -> str:
    fig = go.Figure()
    for name in equity.columns:
        series = equity[name].dropna()
        fig.add_trace(
            go.Scatter(
                x=series.index,
                y=series.values,
                name=name,
                mode="lines",
                line={"width": 3 if name == "total" else 1.5},
            )
        )
    if benchmark is not None:
        fig.add_trace(
            go.Scatter(
                x=benchmark.index,
                y=benchmark.values,
                name=benchmark_label,
                mode="lines",
                line={"dash": "dash", "color": "grey"},
            )
        )
    fig.update_layout(title="Equity per sleeve and total", yaxis_title="$")
    return _html(fig, div_id)


def drawdown_chart(drawdown: pd.Series, div_id: str = "chart-drawdown") -> str:
    fig = go.Figure(
        go.Scatter(
            x=drawdown.index,
            y=-100 * drawdown.to_numpy(),
            fill="tozeroy",
            mode="lines",
            name="drawdown",
            line={"color": "crimson"},
        )
    )
    fig.update_layout(title="Drawdown of total equity", yaxis_title="% below peak")
    return _html(fig, div_id)


def _spans(modes: list[ModeDay]) -> list[tuple[date, date, str]]:
    """Consecutive days in the same non-active mode, as (first, last, mode)."""
    spans: list[tuple[date, date, str]] = []
    for m in modes:
        if m.mode == "active":
            continue
        if spans and spans[-1][2] == m.mode and (m.day - spans[-1][1]).days <= 4:
            spans[-1] = (spans[-1][0], m.day, m.mode)
        else:
            spans.append((m.day, m.day, m.mode))
    return spans


def mode_chart(modes: list[ModeDay], div_id: str = "chart-modes") -> str:
    days = [m.day for m in modes if m.vix is not None]
    vix = [m.vix for m in modes if m.vix is not None]
    fig = go.Figure(
        go.Scatter(x=days, y=vix, mode="lines", name="VIX", line={"color": "steelblue"})
    )
    for first, last, mode in _spans(modes):
        fig.add_vrect(
            x0=first,
            x1=last + timedelta(days=1),
            fillcolor=MODE_COLOURS.get(mode, "grey"),
            line_width=0,
            layer="below",
        )
    for mode, colour in MODE_COLOURS.items():  # legend entries for the bands
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=mode,
                marker={"color": colour, "size": 12, "symbol": "square"},
            )
        )
    fig.update_layout(title="Market mode (Hedged / SAFE / kill) over VIX", yaxis_title="VIX")
    return _html(fig, div_id)


def bar_chart(values: dict, title: str, div_id: str) -> str:
    keys = [str(k) if not isinstance(k, tuple) else f"{k[0]}-{k[1]:02d}" for k in values]
    fig = go.Figure(go.Bar(x=keys, y=list(values.values()), marker={"color": "seagreen"}))
    fig.update_layout(title=title, yaxis_title="$", xaxis_type="category")
    return _html(fig, div_id)


def compare_equity_chart(series: dict[str, pd.Series], div_id: str = "chart-compare") -> str:
    """Total equity of each run, one line per run."""
    fig = go.Figure()
    for label, values in series.items():
        values = values.dropna()
        fig.add_trace(go.Scatter(x=values.index, y=values.values, name=label, mode="lines"))
    fig.update_layout(title="Total equity, run by run", yaxis_title="$")
    return _html(fig, div_id)
