"""D25: a live ledger is opened from what the broker reports (cash and positions), nothing
invented; the live arguments' parsers; a dropped socket inside a cycle is a RetryError."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from constitution.errors import RetryError
from engine.execution.broker import BrokerPosition
from engine.execution.executor import MemoryLedgerStore
from engine.execution.ledger import CASH, stock, total
from engine.market.instruments import ContractSpec, SecType
from scheduler.live import (
    BrokerAccount,
    LiveCycle,
    LiveRefused,
    accounts_from,
    opening_ops,
    parse_address,
)

AT = datetime(2025, 1, 16, 15, 0, tzinfo=UTC)


def _opt(
    symbol: str, expiry: date, strike: float, right: str, kind: SecType = SecType.OPTION
) -> ContractSpec:
    return ContractSpec(sec_type=kind, symbol=symbol, expiry=expiry, strike=strike, right=right)


def _pos(account: str, contract: ContractSpec, qty: int, cost: float) -> BrokerPosition:
    return BrokerPosition(account=account, contract=contract, quantity=qty, avg_cost=cost)


SHORT_PUT = _opt("AAPL", date(2025, 1, 24), 195.0, "P")
SPX_PUT = _opt("SPX", date(2025, 6, 20), 5000.0, "P", SecType.INDEX_OPTION)
LEAP_CALL = _opt("MSFT", date(2026, 1, 16), 500.0, "C")
NEAR_PUT = _opt("MSFT", date(2025, 2, 21), 380.0, "P")
BROKER = [
    BrokerAccount(
        "GEN", 400_000.0, (_pos("GEN", SHORT_PUT, -3, 1.50), _pos("GEN", SPX_PUT, 1, 60.0))
    ),
    BrokerAccount(
        "COM",
        216_000.0,
        (
            _pos("COM", stock("MSFT"), 200, 410.0),
            _pos("COM", LEAP_CALL, 2, 25.0),
            _pos("COM", NEAR_PUT, 1, 4.0),
        ),
    ),
    BrokerAccount("MINI-1", 50_000.0),
]


def test_opening_books_the_brokers_cash_and_positions_and_nothing_else():
    store = MemoryLedgerStore()
    store.apply(opening_ops(BROKER, AT), AT)
    s = store.state

    assert {a: (x.kind, x.opened, x.parent) for a, x in s.accounts.items()} == {
        "GEN": ("gen", date(2025, 1, 16), None),
        "COM": ("com", date(2025, 1, 16), None),
        "MINI-1": ("mini", date(2025, 1, 16), "GEN"),
    }
    # cash equals what IB reports, whatever premiums the positions carried
    assert {a: s.balance(a, CASH) for a in s.accounts} == {
        "GEN": 40_000_000,
        "COM": 21_600_000,
        "MINI-1": 5_000_000,
    }
    assert {k: (h.quantity, h.avg_price, h.purpose) for k, h in s.holdings.items()} == {
        ("GEN", SHORT_PUT.key): (-3, 1.50, "income"),
        ("GEN", SPX_PUT.key): (1, 60.0, "hedge"),
        ("COM", "MSFT"): (200, 410.0, "stock"),
        ("COM", LEAP_CALL.key): (2, 25.0, "leap"),  # a year out: a LEAP rung
        ("COM", NEAR_PUT.key): (1, 4.0, "hedge"),
    }
    # base equity = cash + the positions at IB's cost (short premium is owed back, longs paid for)
    assert s.accounts["GEN"].base_equity == 40_000_000 - 3 * 150 * 100 + 60 * 100 * 100
    assert (
        s.accounts["COM"].base_equity == 21_600_000 + 200 * 410 * 100 + 2 * 2500 * 100 + 400 * 100
    )
    assert s.accounts["MINI-1"].base_equity == 5_000_000
    assert total(s) == 0  # balanced: the opening fills' counterparty is the market


def test_opening_is_idempotent_by_operation_id():
    store = MemoryLedgerStore()
    store.apply(opening_ops(BROKER, AT), AT)
    once = store.state
    store.apply(opening_ops(BROKER, AT), AT)
    assert store.state == once


def test_an_account_that_is_not_an_all_use_sleeve_is_refused():
    with pytest.raises(LiveRefused, match="U999 is not an ALL-USE sub-account"):
        opening_ops([BrokerAccount("U999", 1.0)], AT)


def test_live_argument_parsers():
    assert parse_address("127.0.0.1:7497") == ("127.0.0.1", 7497)
    assert parse_address("gw.local:4001") == ("gw.local", 4001)
    assert [
        parse_address(x) for x in ("7497", ":7497", "host:", "host:0", "host:70000", "host:x", None)
    ] == [None] * 7
    assert accounts_from(["gen=DU1", "MINI-2=DU2"]) == ({"GEN": "DU1", "MINI-2": "DU2"}, [])
    mapping, bad = accounts_from(["GEN=DU1", "GEN=DU3", "REV=DU1", "X=DU4", "COM"])
    assert mapping == {"GEN": "DU1", "REV": "DU1"}
    assert (
        len(bad) == 4
        and "GEN is mapped twice" in bad
        and "two sub-accounts map to the same IB account code" in bad
    )


class _Dropping:
    def __init__(self, error: Exception):
        self.error = error

    def run(self, at):
        raise self.error


class _Connected:
    def is_connected(self) -> bool:
        return True


def test_a_socket_dropped_inside_a_cycle_is_a_retry_error_other_errors_pass_through():
    cycle = LiveCycle(_Dropping(ConnectionError("Not connected")), _Connected(), lambda at: None)
    with pytest.raises(
        RetryError, match="connection to IB lost during the cycle at 2025-01-16T15:00:00"
    ):
        cycle.run(AT)
    with pytest.raises(ValueError):
        LiveCycle(_Dropping(ValueError("a bug")), _Connected(), lambda at: None).run(AT)
