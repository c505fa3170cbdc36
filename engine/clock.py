"""The only place in ALL-USE that reads the wall clock.

Everything else receives time from a ``Clock``: live runs use ``WallClock``; backtests, tests
and dry runs use ``FixedClock`` / ``ReplayClock`` so decisions are reproducible byte for byte.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime (UTC)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for measuring durations."""


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return _time.monotonic()


@dataclass
class FixedClock:
    """A clock that only moves when told to (tests, replay, dry runs)."""

    at: datetime
    _mono: float = 0.0

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self._mono

    def advance_to(self, at: datetime) -> None:
        if at < self.at:
            raise ValueError(f"clock cannot go back from {self.at} to {at}")
        self._mono += (at - self.at).total_seconds()
        self.at = at
