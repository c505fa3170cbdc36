"""Week types and the weekly report (constitution §12), pure.

Each week gets exactly one label. The constitution's ``week_types`` lists the six labels with a
``precedence`` (1 wins); when several apply, the lowest number wins. v1.3 orders them by how
much the week departed from plan - Preservation (L3 stop-loss) > Hedged > Roll (L2) >
Assignment > Earnings-Filter > Calm-Income - so the label names the most severe thing that
happened. The order is read from the constitution, never hard-coded here; only the mapping
from pipeline events to labels is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from constitution.models import WeekType
from engine.cycle.report import CycleReport
from engine.execution.events import WeekEvent

CALM = "Calm-Income"

# Which label each pipeline event argues for, by the text's definitions (D67): the VIX tiers
# above 50 - Hedged Week, SAFE (> 65), the kill switch (> 80) - all have VIX > 50, which "also
# produces a Hedged Week"; any other SAFE (an L3 hold, the broker down, a user's pause) is
# capital preservation. FORK and MERGE do not label a week: a fork is good news, not an
# escalation. A week spent in SAFE or under the kill switch is never Calm-Income.
EVENT_LABEL: dict[WeekEvent, str] = {
    WeekEvent.L3_EXECUTED: "Preservation",
    WeekEvent.HALT: "Preservation",
    WeekEvent.HEDGE_DEPLOYED: "Hedged",
    WeekEvent.HEDGED_WEEK: "Hedged",
    WeekEvent.SAFE: "Hedged",
    WeekEvent.KILL: "Hedged",
    WeekEvent.L2_EXECUTED: "Roll",
    WeekEvent.ASSIGNMENT: "Assignment",
    WeekEvent.EARNINGS_SKIP: "Earnings-Filter",
}


def label_week(events: Iterable[WeekEvent], week_types: Iterable[WeekType]) -> str:
    """The week's one label: among the labels its events argue for, the one with the lowest
    precedence number; Calm-Income when there were none."""
    rank: dict[str, int] = {w.name: w.precedence for w in week_types}
    candidates = {EVENT_LABEL[e] for e in events if e in EVENT_LABEL}
    if not candidates:
        return CALM  # "no escalations": it applies only when nothing else does, whatever its rank
    return min(candidates, key=lambda name: (rank[name], name))


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


class WeekReport(BaseModel):
    """The weekly report (§1: cut at 16:30 on the week's last session)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    week_start: date
    cut_at: datetime
    week_type: str
    cycles: int
    events: dict[str, int] = Field(
        default_factory=dict
    )  # WeekEvent -> count of cycles reporting it
    trades: int = 0  # orders submitted
    fills: int = 0
    rejections: int = 0
    forks: int = 0
    merges: int = 0
    income: float = 0.0  # total equity change over the week (first cycle -> last)
    income_by_account: dict[str, float] = Field(default_factory=dict)
    market_modes: dict[str, int] = Field(default_factory=dict)  # mode -> cycles
    decision_ids: int = 0


def _equity_change(
    reports: list[CycleReport], opening: dict[str, float] | None
) -> dict[str, float]:
    first = dict(opening or {})
    for r in reports:
        for acct, eq in r.equity.items():
            first.setdefault(acct, eq)
    last: dict[str, float] = {}
    for r in reports:
        last.update(r.equity)
    return {a: round(last[a] - first[a], 2) for a in sorted(last) if a in first}


def build_report(
    reports: list[CycleReport],
    week_types: Iterable[WeekType],
    cut_at: datetime,
    opening_equity: dict[str, float] | None = None,
) -> WeekReport:
    """The week's report from its cycles. ``opening_equity`` is the equity at the end of the
    previous week (so income counts the Monday open too); without it, the first cycle's."""
    events = Counter(e for r in reports for e in set(r.events))
    income = _equity_change(reports, opening_equity)
    return WeekReport(
        week_start=week_start(cut_at.date()),
        cut_at=cut_at,
        week_type=label_week(events, week_types),
        cycles=len(reports),
        events={str(k): v for k, v in sorted(events.items())},
        trades=sum(r.orders_submitted for r in reports),
        fills=sum(r.fills for r in reports),
        rejections=sum(r.rejections for r in reports),
        forks=events.get(WeekEvent.FORK, 0),
        merges=events.get(WeekEvent.MERGE, 0),
        income=round(sum(income.values()), 2),
        income_by_account=income,
        market_modes=dict(sorted(Counter(r.market_mode for r in reports).items())),
        decision_ids=len({r.decision_id for r in reports}),
    )
