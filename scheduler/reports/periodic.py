"""The monthly and quarterly reports of §11, pure, and the text form of all three.

* **Monthly** (the month's last session, at the report cut): CAGR year to date, drawdown
  (deepest peak-to-trough of total equity year to date, and per account), Sharpe and Sortino
  of daily returns year to date (annualised with sqrt(252), risk-free rate 0: D63).
* **Quarterly** (the quarter's last session, after the cut's evaluation - the quarter's
  reinvestment is done by then): the books of ``engine.execution.books`` - the tax ledger,
  realised vs unrealised P&L, the tax reserve and what was reinvested, hedges, the LEAP ladder.

The scheduler records each as a ``note`` link in the audit log (``event``: ``monthly_report``,
``quarterly_report``; the weekly one is ``weekly_report``), so a report is stored once, in the
hash chain, beside the decision of its cut; ``alluse report`` prints them. The bodies are the
models below as JSON: a renderer (text here, HTML later) reads the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from engine.cycle.report import CycleReport
from scheduler.cadence import NEW_YORK as _NY

TRADING_DAYS = 252


class MonthReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    month: str  # 2024-03
    cut_at: datetime
    start_equity: float  # the year's opening (the last equity before January 1, or the first)
    end_equity: float
    cagr_ytd: float | None
    drawdown_ytd: float
    drawdown_by_account: dict[str, float] = Field(default_factory=dict)
    sharpe_ytd: float | None = None
    sortino_ytd: float | None = None
    sessions: int = 0


def daily_closes(reports: Sequence[CycleReport]) -> list[tuple[date, dict[str, float]]]:
    """The last equity each New York date reported, in date order."""
    out: dict[date, dict[str, float]] = {}
    for r in reports:
        if r.equity:
            out[r.at.astimezone(_NY).date()] = dict(r.equity)
    return sorted(out.items())


def _ratios(totals: Sequence[float]) -> tuple[float | None, float | None]:
    returns = [b / a - 1 for a, b in zip(totals, totals[1:], strict=False) if a > 0]
    if len(returns) < 2:
        return None, None
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((x - mean) ** 2 for x in returns) / (len(returns) - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in returns) / len(returns))
    scale = math.sqrt(TRADING_DAYS)
    sharpe = round(mean / sd * scale, 4) if sd > 0 else None
    sortino = round(mean / down * scale, 4) if down > 0 else None
    return sharpe, sortino


def build_month_report(
    reports: Sequence[CycleReport], opening: CycleReport | None, cut_at: datetime
) -> MonthReport:
    """``reports``: the cycles of the year to date; ``opening``: the last cycle before it."""
    from scheduler.backtest import cagr, max_drawdown  # the backtest summary's arithmetic

    days = daily_closes(reports)
    totals = [sum(eq.values()) for _, eq in days]
    start = (
        sum(opening.equity.values())
        if opening and opening.equity
        else (totals[0] if totals else 0.0)
    )
    series = [start, *totals]
    first_at = opening.at if opening else (reports[0].at if reports else cut_at)
    accounts = sorted({a for _, eq in days for a in eq})
    sharpe, sortino = _ratios(series)
    return MonthReport(
        month=cut_at.astimezone(_NY).strftime("%Y-%m"),
        cut_at=cut_at,
        start_equity=round(start, 2),
        end_equity=round(totals[-1], 2) if totals else round(start, 2),
        cagr_ytd=cagr(start, totals[-1], first_at, cut_at) if totals else None,
        drawdown_ytd=round(max_drawdown(series), 6),
        drawdown_by_account={
            a: round(max_drawdown(eq[a] for _, eq in days if a in eq), 6) for a in accounts
        },
        sharpe_ytd=sharpe,
        sortino_ytd=sortino,
        sessions=len(days),
    )


# --------------------------------------------------------------------------- text


def render(kind: str, body: dict) -> str:
    return {"weekly": render_week, "monthly": render_month, "quarterly": render_quarter}[kind](body)


def render_week(b: dict) -> str:
    lines = [
        f"week of {b['week_start']}: {b['week_type']} (cut {b['cut_at']})",
        f"  trades {b['trades']}, fills {b['fills']}, rejections {b['rejections']}, "
        f"forks {b['forks']}, merges {b['merges']}",
        f"  income ${b['income']:,.2f}"
        + "".join(f"  {a} {v:+,.2f}" for a, v in sorted(b.get("income_by_account", {}).items())),
        f"  market modes {b.get('market_modes', {})}; events {b.get('events', {})}",
    ]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def render_month(b: dict) -> str:
    lines = [
        f"month {b['month']} (cut {b['cut_at']}, {b['sessions']} sessions this year)",
        f"  equity ${b['start_equity']:,.2f} at the year's start -> ${b['end_equity']:,.2f}",
        f"  CAGR YTD {_pct(b['cagr_ytd'])}; drawdown YTD {_pct(b['drawdown_ytd'])}; "
        f"Sharpe {_num(b['sharpe_ytd'])}; Sortino {_num(b['sortino_ytd'])}",
        "  drawdown by account: "
        + ", ".join(f"{a} {_pct(v)}" for a, v in sorted(b.get("drawdown_by_account", {}).items())),
    ]
    return "\n".join(lines)


def render_quarter(b: dict) -> str:
    lines = [f"quarter {b['quarter']} (books as of {b['as_of']})", "  accounts:"]
    for a in b["accounts"]:
        lines.append(
            f"    {a['account']:<8} realised {a['realised']:>+13,.2f}  unrealised {a['unrealised']:>+13,.2f}"
            f"  tax reserve {a['tax_reserve']:>12,.2f}  LEAP fund {a['leap_fund']:>11,.2f}"
            + (
                f"  reinvested: reserve {a['reserved_this_quarter']:,.2f}, LEAPs {a['leaps_this_quarter']:,.2f},"
                f" contracts {a['contracts_this_quarter']:,.2f}"
                if a["reinvested"]
                else ""
            )
        )
    lines.append(
        f"  tax ledger: {len(b['tax_lines'])} line(s); short term {b['short_term_gain']:+,.2f}, "
        f"long term {b['long_term_gain']:+,.2f}; wash sales flagged {b['wash_sales']}"
    )
    for t in b["tax_lines"]:
        lines.append(
            f"    {t['closed']} {t['account']:<8} {t['contract']:<28} {t['quantity']:>7} "
            f"{t['open_price']:.2f} -> {t['close_price']:.2f} {t['gain']:>+12,.2f} {t['term']}"
            f"{' WASH' if t['wash_sale'] else ''} ({t['origin']})"
        )
    for x in b.get("leap_ledger", ()):
        lines.append(
            f"  LEAP ledger {x['role']:<9}: {x['rungs']} rung(s), {x['contracts']} contract(s), cost "
            f"{x['cost']:,.2f}, value {x['value']:,.2f}, unrealised {x['unrealised']:+,.2f}, "
            f"realised this quarter {x['realised_this_quarter']:+,.2f}"
        )
    for title, key in (("hedges", "hedges"), ("LEAP ladder", "leap_ladder")):
        lines.append(f"  {title}: {len(b[key])}")
        for h in b[key]:
            left = "" if h["months_left"] is None else f", {h['months_left']:.1f} months left"
            lines.append(
                f"    {h['account']:<8} {h['contract']:<28} {h['quantity']:>5} cost {h['cost']:.2f}"
                f" mark {_num(h['mark'])} unrealised {h['unrealised']:+,.2f}{left} {h['role']}"
            )
    return "\n".join(lines)
