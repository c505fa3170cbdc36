"""Events of a cycle that label the week (constitution ``week_types``)."""

from __future__ import annotations

from enum import StrEnum


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
    SAFE = "safe"  # SAFE from a VIX tier (VIX > 65, so VIX > 50: a Hedged Week)
    KILL = "kill"  # the kill switch (VIX > 80, so a Hedged Week)
    HALT = "halt"  # SAFE for another reason: an L3 hold, the broker down, a user's pause
