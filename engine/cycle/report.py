"""The contract between the scheduler and one pipeline cycle.

A cycle is: facts (market data + ledger) -> decision -> audit log (before acting) -> risk ->
orders -> fills -> ledger. The scheduler decides *when* (live wall clock or replay clock) and
reads back only this report: the protocol levels that set the monitoring interval, the events
that label the week, and equity for backtest metrics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.execution.events import WeekEvent


class CycleReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    decision_id: str
    constitution_version: str
    constitution_digest: str
    market_mode: str  # active | hedged | safe | kill
    account_levels: dict[str, int] = Field(default_factory=dict)  # account id -> 0..3
    account_modes: dict[str, str] = Field(default_factory=dict)
    action_counts: dict[str, int] = Field(default_factory=dict)  # action kind -> count
    orders_submitted: int = 0
    fills: int = 0
    rejections: int = 0
    events: tuple[WeekEvent, ...] = ()
    equity: dict[str, float] = Field(default_factory=dict)  # account id -> equity after the cycle
    quiet: bool = (
        False  # inputs unchanged since the decision in force: not re-decided (engine.cycle.quiet)
    )

    @property
    def highest_level(self) -> int:
        return max(self.account_levels.values(), default=0)


class Cycle(Protocol):
    def run(self, at: datetime) -> CycleReport:
        """Run one full cycle as of ``at`` (aware). Must be safe to call again after a crash:
        decisions are idempotent by decision id, orders by client order id."""
