"""Early assignment at the paper venue (docs/decisions.md D82): a short American option deep in
the money close to expiry, whose bid is below its intrinsic value, is assigned before expiry,
recorded as ``origin`` ``assignment`` fills. Every threshold as a boundary pair."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from adapters.brokers.paper import EarlyAssignment, PaperBroker
from engine.execution.broker import OrderSide
from engine.market.instruments import ContractSpec, SecType
from engine.market.snapshot import MarketSnapshot, OptionChain, OptionContract, Quote
from tests.market.conftest import ny

TUESDAY = ny(date(2026, 11, 17), 10, 0)
FRIDAY = date(2026, 11, 20)


def _option(right: str = "P", strike: float = 105.0, expiry: date = FRIDAY, kind=SecType.OPTION):
    return ContractSpec(sec_type=kind, symbol="XYZ", right=right, strike=strike, expiry=expiry)


def _snapshot(at: datetime, spot: float, contract: ContractSpec, bid: float) -> MarketSnapshot:
    row = OptionContract(
        "XYZ",
        contract.expiry,
        contract.strike,
        "put" if contract.right == "P" else "call",
        bid,
        bid + 0.10,
        -0.99 if contract.right == "P" else 0.99,
        0.3,
        1000,
        1000,
    )
    return MarketSnapshot(
        as_of=at,
        quotes={"XYZ": Quote("XYZ", spot, at)},
        vix=Quote("VIX", 20.0, at),
        chains={"XYZ": OptionChain.from_contracts("XYZ", at, spot, [row])},
    )


def _short(contract: ContractSpec, qty: int = -2, **early) -> PaperBroker:
    broker = PaperBroker(early=EarlyAssignment(**early))
    broker.connect()
    broker.seed_position("s1", "REV", contract, qty, 1.50)
    return broker


def _assigned(broker: PaperBroker, at: datetime, spot: float, contract, bid: float) -> list:
    broker.sync(at, _snapshot(at, spot, contract, bid))
    return [f for f in broker.fills() if f.origin == "assignment"]


def test_a_deep_in_the_money_put_whose_bid_is_below_intrinsic_is_assigned_early():
    put = _option()
    broker = _short(put)

    fills = _assigned(broker, TUESDAY, 99.0, put, bid=5.90)  # intrinsic 6.00

    assert [(f.contract.sec_type, f.side, f.quantity, f.price) for f in fills] == [
        (SecType.OPTION, OrderSide.BUY, 2, 0.0),
        (SecType.STOCK, OrderSide.BUY, 200, 105.0),
    ]
    assert all(f.at == TUESDAY and f.client_order_id == "assignment" for f in fills)
    assert [(p.contract.sec_type, p.quantity) for p in broker.positions()] == [(SecType.STOCK, 200)]


def test_a_deep_in_the_money_call_is_called_away_early():
    call = _option("C", 95.0)
    broker = _short(call)

    fills = _assigned(broker, TUESDAY, 101.0, call, bid=5.95)  # intrinsic 6.00

    assert [(f.contract.sec_type, f.side, f.quantity) for f in fills] == [
        (SecType.OPTION, OrderSide.BUY, 2),
        (SecType.STOCK, OrderSide.SELL, 200),
    ]


@pytest.mark.parametrize(("spot", "assigned"), [(100.0, False), (99.99, True)])
def test_in_the_money_by_more_than_5_percent_of_the_price(spot, assigned):
    put = _option()  # strike 105: at 100 it is exactly 5 % of the price in the money

    assert bool(_assigned(_short(put), TUESDAY, spot, put, bid=0.0)) is assigned


@pytest.mark.parametrize(("bid", "assigned"), [(6.00, False), (5.99, True)])
def test_only_when_exercising_beats_selling_at_the_bid(bid, assigned):
    put = _option()

    assert bool(_assigned(_short(put), TUESDAY, 99.0, put, bid=bid)) is assigned


@pytest.mark.parametrize(
    ("expiry", "assigned"), [(date(2026, 11, 21), True), (date(2026, 11, 22), False)]
)
def test_only_in_the_4_calendar_days_before_expiry(expiry, assigned):
    put = _option(expiry=expiry)  # from Tuesday the 17th: Saturday is 4 days out, Sunday 5

    assert bool(_assigned(_short(put), TUESDAY, 99.0, put, bid=5.0)) is assigned


def test_not_on_the_expiry_day_itself_its_close_settles_it():
    put = _option()
    friday = ny(FRIDAY, 10, 0)

    assert _assigned(_short(put), friday, 99.0, put, bid=5.0) == []


@pytest.mark.parametrize(
    ("hh", "mm", "assigned"), [(9, 29, False), (9, 30, True), (15, 59, True), (16, 0, False)]
)
def test_only_during_the_session(hh, mm, assigned):
    put = _option()

    got = _assigned(_short(put), ny(date(2026, 11, 17), hh, mm), 99.0, put, bid=5.0)

    assert bool(got) is assigned


def test_european_index_options_and_long_options_are_never_assigned_early():
    spx = _option(kind=SecType.INDEX_OPTION)
    long_put = _option()

    assert _assigned(_short(spx), TUESDAY, 99.0, spx, bid=5.0) == []
    assert _assigned(_short(long_put, qty=2), TUESDAY, 99.0, long_put, bid=5.0) == []


def test_the_model_can_be_switched_off():
    put = _option()

    assert _assigned(_short(put, enabled=False), TUESDAY, 99.0, put, bid=5.0) == []


# --- in a backtest ------------------------------------------------------------------------


def _bars(folder, symbol: str, days, closes, opens=None) -> None:
    opens = closes if opens is None else opens
    rows = ["date,open,high,low,close,volume"]
    for d, o, c in zip(days, opens, closes, strict=True):
        rows.append(f"{d},{o:.2f},{max(o, c) * 1.004:.2f},{min(o, c) * 0.996:.2f},{c:.2f},5000000")
    (folder / f"{symbol}.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_a_gap_down_assigns_revs_put_before_its_expiry_in_a_backtest(tmp_path, capsys):
    """Rev sells NVDA puts on Wednesday 2026-11-18 for Friday; NVDA opens 12 % lower on
    Thursday; the holder exercises at the open, a day before expiry."""
    import json

    import numpy as np

    from adapters.storage.audit_store import AuditStore
    from engine.clock import FixedClock
    from engine.market import calendar
    from scheduler.cli import main

    days = [d.astype(date) for d in calendar.sessions_between(date(2026, 7, 1), date(2026, 11, 20))]
    rng = np.random.default_rng(3)
    closes = 140.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    thursday = days.index(date(2026, 11, 19))
    closes[thursday:] = closes[thursday - 1] * 0.87
    opens = np.concatenate(([closes[0]], closes[:-1]))
    opens[thursday] = closes[thursday - 1] * 0.88  # the gap
    data = tmp_path / "bars"
    data.mkdir()
    _bars(data, "NVDA", days, closes, opens)
    _bars(data, "VIX", days, np.full(len(days), 18.0))
    db = tmp_path / "bt.db"

    code = main(
        ["backtest", "--data", str(data), "--from", "2026-11-18", "--to", "2026-11-20"]
        + ["--db", str(db), "--no-progress"]
    )

    assert code == 0, capsys.readouterr().err
    store = AuditStore.open(f"sqlite:///{db}", FixedClock(TUESDAY))
    fills = [json.loads(r.body) for r in store.rows() if r.record_type == "link"]
    fills = [f["link"]["data"] for f in fills if f["link"]["kind"] == "fill"]
    early = [
        f
        for f in fills
        if f["origin"] == "assignment"
        and f["contract"]["sec_type"] == "OPT"
        and f["at"] < f["contract"]["expiry"]
    ]
    assert early and {f["contract"]["symbol"] for f in early} == {"NVDA"}
    assert all(f["at"].startswith("2026-11-19T09:30") for f in early)
