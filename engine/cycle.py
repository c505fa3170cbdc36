"""The contract between the scheduler and one pipeline cycle.

A cycle is: facts (market data + ledger) -> decision -> audit log (before acting) -> risk ->
orders -> fills -> ledger. The scheduler decides *when* (live wall clock or replay clock) and
reads back only this report: the protocol levels that set the monitoring interval, the events
that label the week, and equity for backtest metrics.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class WeekEvent(StrEnum):
    """Events that decide the week type (constitution.week_types)."""

    L2_EXECUTED = "l2_executed"  # a roll at L2 was made -> Roll
    L3_EXECUTED = "l3_executed"  # a stop-loss exit at L3 -> Preservation
    HEDGE_DEPLOYED = "hedge_deployed"  # -> Hedged
    HEDGED_WEEK = "hedged_week"  # VIX > 50 -> Hedged
    ASSIGNMENT = "assignment"  # shares assigned / called away -> Assignment
    EARNINGS_SKIP = "earnings_skip"  # CSPs skipped for earnings -> Earnings-Filter
    FORK = "fork"
    MERGE = "merge"
    SAFE = "safe"
    KILL = "kill"


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
    quiet: bool = False  # inputs unchanged since the decision in force: not re-decided (engine.quiet)

    @property
    def highest_level(self) -> int:
        return max(self.account_levels.values(), default=0)


class Cycle(Protocol):
    def run(self, at: datetime) -> CycleReport:
        """Run one full cycle as of ``at`` (aware). Must be safe to call again after a crash:
        decisions are idempotent by decision id, orders by client order id."""
