"""Fixtures: a stub gateway on 127.0.0.1 (ephemeral port) and IB adapters connected to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest

from engine.clock import FixedClock
from engine.execution.broker import BrokerEvent, OrderRequest, OrderSide
from engine.market import calendar
from engine.market.instruments import ContractSpec, SecType

from .live_world import FAST
from .market import Underlying
from .tws_stub import TwsStub

ACCOUNTS = {"GEN": "DU111", "REV": "DU222", "COM": "DU333", "MINI-1": "DU444"}
WEEK = ("20250110", "20250117")
SESSIONS = [d.astype(date) for d in calendar.sessions_between(date(2024, 11, 1), date(2025, 1, 3))]
BARS = tuple(
    (f"{d:%Y%m%d}", 195.0 + i * 0.2, 197.0 + i * 0.2, 193.0 + i * 0.2, 196.0 + i * 0.2, 1_000_000)
    for i, d in enumerate(SESSIONS)
)
VIX_BARS = tuple((f"{d:%Y%m%d}", 16.0, 17.0, 15.0, 16.0, 0) for d in SESSIONS)


def underlyings() -> list[Underlying]:
    return [
        Underlying(
            "AAPL", 200.0, 0.28, WEEK, (180.0, 185.0, 190.0, 195.0, 200.0, 205.0, 210.0), BARS
        ),
        Underlying("MSFT", 420.0, 0.25, WEEK, (400.0, 410.0, 420.0, 430.0, 440.0)),
        Underlying(
            "NVDA", 140.0, 0.50, WEEK, (120.0, 125.0, 130.0, 135.0, 140.0, 145.0, 150.0), BARS
        ),
        Underlying("SPY", 590.0, 0.15, WEEK, (570.0, 575.0, 580.0, 585.0, 590.0, 600.0), BARS),
        Underlying(
            "SPX", 5900.0, 0.16, ("20250620", "20250627"), (5000.0, 5100.0, 5200.0, 5300.0), BARS
        ),
        Underlying("VIX", 16.0, 0.90, ("20250716",), (20.0, 21.0, 25.0), VIX_BARS),
    ]


@pytest.fixture
def stub() -> Iterator[TwsStub]:
    gw = TwsStub(accounts=tuple(ACCOUNTS.values()))
    for u in underlyings():
        gw.add_underlying(u)
    gw.set_position("DU333", "MSFT", 200, 410.0)
    gw.start()
    yield gw
    gw.close()


class Recorder:
    """Collects BrokerEvents (delivered on the adapter's loop thread) for assertions."""

    def __init__(self) -> None:
        self.events: list[BrokerEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: BrokerEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[BrokerEvent]], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not pred(self.events):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def kinds(self) -> list[str]:
        with self._cond:
            return [e.kind for e in self.events]

    def fills(self, coid: str | None = None):
        with self._cond:
            return [
                e.fill
                for e in self.events
                if e.kind == "fill" and (coid is None or e.fill.client_order_id == coid)
            ]

    def states(self, coid: str) -> list[str]:
        with self._cond:
            return [
                e.status.state.value
                for e in self.events
                if e.kind == "status" and e.status.client_order_id == coid
            ]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2025, 1, 6, 15, 0, tzinfo=UTC))


@pytest.fixture
def make_broker(stub: TwsStub, clock: FixedClock):
    from adapters.ib.broker import IBBroker, IBConfig

    made = []

    def make(connect: bool = True, **overrides) -> tuple[IBBroker, Recorder]:
        settings = dict(FAST, port=stub.port, client_id=11, accounts=ACCOUNTS) | overrides
        broker = IBBroker(IBConfig(**settings), clock=clock)
        made.append(broker)
        rec = Recorder()
        broker.subscribe(rec)
        if connect:
            broker.connect()
        return broker, rec

    yield make
    for b in made:
        b.close()


def put(symbol: str, expiry: str, strike: float, kind: SecType = SecType.OPTION) -> ContractSpec:
    return ContractSpec(
        sec_type=kind,
        symbol=symbol,
        right="P",
        strike=strike,
        expiry=datetime.strptime(expiry, "%Y%m%d").date(),
    )


def call(symbol: str, expiry: str, strike: float, kind: SecType = SecType.OPTION) -> ContractSpec:
    return put(symbol, expiry, strike, kind).model_copy(update={"right": "C"})


def order(
    coid: str, account: str, contract: ContractSpec, side: str, qty: int, limit: float | None = 1.0
) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        decision_id=coid.split(":")[0],
        account=account,
        contract=contract,
        side=OrderSide(side),
        quantity=qty,
        order_type="LMT" if limit else "MKT",
        limit_price=limit,
    )


def today(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 15, 0, tzinfo=UTC)


def settled(rec: Recorder, *coids: str, state: str = "filled", timeout: float = 5.0) -> bool:
    """Wait until every order has reported ``state`` (from events, not from polling)."""
    return rec.wait_for(lambda ev: all(state in _states(ev, c) for c in coids), timeout)


def _states(events: list[BrokerEvent], coid: str) -> list[str]:
    return [
        e.status.state.value
        for e in events
        if e.kind == "status" and e.status.client_order_id == coid
    ]


@pytest.fixture
def make_market(stub: TwsStub, clock: FixedClock):
    from adapters.ib.broker import IBConfig
    from adapters.ib.market_data import IBMarketData, IBMarketDataSettings

    made = []

    def make(**settings) -> IBMarketData:
        config = IBConfig(**(dict(FAST, port=stub.port, client_id=21)))
        md = IBMarketData(
            config, clock=clock, settings=IBMarketDataSettings(**{"tick_wait": 1.0, **settings})
        )
        made.append(md)
        md.connect()
        return md

    yield make
    for md in made:
        md.close()
