"""A small market at the stub gateway for the live pipeline: Thursday 2025-01-16 (Gen's entry
day), three sub-accounts with cash, Com-Acc holding MSFT shares, Rev-Acc short an NVDA put."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from engine.clock import WallClock
from engine.market import calendar

from .market import Underlying
from .tws_stub import TwsStub

THURSDAY = date(2025, 1, 16)
OPEN_AT = datetime.combine(
    THURSDAY, time(10, 0), tzinfo=calendar.NEW_YORK
)  # in Gen's 09:45-11:00 window
ACCOUNTS = {"GEN": "DU111", "REV": "DU222", "COM": "DU333"}
CASH = {"GEN": 400_000.0, "REV": 300_000.0, "COM": 216_000.0}
# the IB adapter's timeouts and pacing against the loopback stub: seconds, not minutes
FAST = dict(
    connect_timeout=2.0,
    request_timeout=5.0,
    ack_timeout=1.0,
    reconnect_initial=0.05,
    reconnect_max=0.4,
    pacing_initial=0.05,
    pacing_max=0.4,
    commission_grace=0.3,
)
MARKET = dict(tick_wait=1.0, strike_window=0.03, chain_expiries=1)  # few lines: a fast stub market

_SESSIONS = [
    d.astype(date) for d in calendar.sessions_between(date(2024, 10, 1), date(2025, 1, 15))
]


def _bars(start: float, step: float = 0.1) -> tuple:
    return tuple(
        (
            f"{d:%Y%m%d}",
            start + i * step,
            start + i * step + 2,
            start + i * step - 2,
            start + i * step + 0.5,
            1_000_000,
        )
        for i, d in enumerate(_SESSIONS)
    )


def make_live_stub() -> TwsStub:
    """Not started: call ``start()`` (and ``close()``)."""
    gw = TwsStub(accounts=tuple(ACCOUNTS.values()), today=THURSDAY)
    weeks = ("20250117", "20250124")
    gw.add_underlying(
        Underlying("AAPL", 200.0, 0.28, weeks, tuple(195 + 0.5 * i for i in range(21)), _bars(195))
    )
    gw.add_underlying(
        Underlying("MSFT", 420.0, 0.25, weeks, (400.0, 410.0, 420.0, 430.0, 440.0), _bars(410))
    )
    gw.add_underlying(
        Underlying("NVDA", 140.0, 0.50, weeks, (120.0, 125.0, 130.0, 135.0, 140.0), _bars(135))
    )
    gw.add_underlying(
        Underlying("SPX", 5900.0, 0.16, ("20250620",), (5000.0, 5100.0), _bars(5800, 1.0))
    )
    gw.add_underlying(
        Underlying(
            "VIX",
            16.0,
            0.90,
            ("20250716",),
            (20.0, 25.0),
            tuple((f"{d:%Y%m%d}", 16.0, 17.0, 15.0, 16.0, 0) for d in _SESSIONS),
        )
    )
    for sub, code in ACCOUNTS.items():
        gw.set_account_value(code, "TotalCashValue", f"{CASH[sub]:.2f}")
    gw.set_position(ACCOUNTS["COM"], "MSFT", 200, 410.0)
    gw.set_option_position(
        ACCOUNTS["REV"], "NVDA", "20250124", 130.0, "P", -2, 95.0
    )  # 0.95 a share
    return gw


class ShiftedClock:
    """The wall clock moved to ``at``: it runs in real time (APScheduler's intervals pass for
    real) but reads as Thursday morning in New York."""

    def __init__(self, at: datetime = OPEN_AT):
        self._wall = WallClock()
        self._offset = at - self._wall.now()

    def now(self) -> datetime:
        return (self._wall.now() + self._offset).astimezone(UTC)

    def monotonic(self) -> float:
        return self._wall.monotonic()
