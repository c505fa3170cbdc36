"""§10 realised vs unrealised P&L kept apart (FIFO lots, premium realised at close, expiry and
assignment), the tax reserve on realised gains only, and the tax ledger's terms and wash sales
(seed 001; docs/decisions.md D62)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.execution import lots
from engine.execution.books import quarter_books, tax_lines
from engine.execution.broker import Fill, OrderSide
from engine.execution.executor import MemoryLedgerStore
from engine.execution.ledger import (
    ApplyFill,
    Deposit,
    DepositShares,
    OpenAccount,
    quarter_of,
    stock,
)
from engine.execution.ledger_view import ledger_facts
from engine.market.instruments import ContractSpec, SecType
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote

NY = ZoneInfo("America/New_York")
D0 = date(2024, 1, 2)
PUT = ContractSpec(
    sec_type=SecType.OPTION, symbol="AAPL", expiry=date(2024, 1, 5), strike=180.0, right="P"
)


def _at(day: date, hh: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hh, tzinfo=NY)


def _fill(n, contract, side, qty, price, day, origin="order") -> ApplyFill:
    return ApplyFill(
        f"x{n}",
        Fill(
            client_order_id=origin if origin != "order" else f"c{n}",
            broker_order_id="",
            execution_id=f"x{n}",
            account="REV",
            contract=contract,
            side=side,
            quantity=qty,
            price=price,
            at=_at(day),
            origin=origin,
        ),
    )


def _store(*ops) -> MemoryLedgerStore:
    store = MemoryLedgerStore()
    store.apply(
        [OpenAccount("o", "REV", "rev", D0), Deposit("d", "REV", 300_000_00), *ops], _at(D0)
    )
    return store


def test_fifo_closes_the_oldest_lot_first_and_a_fill_through_zero_opens_a_new_one():
    held = (lots.Lot(100, 10.0, D0), lots.Lot(100, 12.0, date(2024, 2, 1)))
    left, closed = lots.net(held, -150, 15.0, date(2024, 3, 1))
    assert left == (lots.Lot(50, 12.0, date(2024, 2, 1)),)
    assert [(c.lot.price, c.quantity) for c in closed] == [(10.0, 100), (12.0, 50)]
    left, closed = lots.net(left, -80, 15.0, date(2024, 3, 2))
    assert left == (lots.Lot(-30, 15.0, date(2024, 3, 2)),) and closed[0].quantity == 50


def test_short_premium_is_realised_when_bought_back_and_when_it_expires():
    store = _store(
        _fill(1, PUT, OrderSide.SELL, 2, 3.00, D0),
        _fill(2, PUT, OrderSide.BUY, 1, 1.00, date(2024, 1, 3)),  # bought back: +200
        _fill(3, PUT, OrderSide.BUY, 1, 0.0, date(2024, 1, 5), "expiry"),  # expired: +300
    )
    assert [r.gain for r in store.realised] == [200_00, 300_00]
    assert [r.origin for r in store.realised] == ["order", "expiry"]
    assert store.state.realised_in("REV", "2024Q1") == 500_00


def test_an_assigned_put_realises_its_premium_and_the_shares_cost_the_strike():
    store = _store(
        _fill(1, PUT, OrderSide.SELL, 1, 2.50, D0),
        _fill(2, PUT, OrderSide.BUY, 1, 0.0, date(2024, 1, 5), "assignment"),
        _fill(3, stock("AAPL"), OrderSide.BUY, 100, 180.0, date(2024, 1, 5), "assignment"),
    )
    assert [(r.gain, r.origin) for r in store.realised] == [(250_00, "assignment")]
    shares = store.state.holdings[("REV", "AAPL")]
    assert shares.open_lots() == (lots.Lot(100, 180.0, date(2024, 1, 5)),)


def test_the_quarter_gains_the_rules_see_are_realised_not_marks():
    store = _store(
        DepositShares("s", "REV", stock("AAPL"), 100, 150.0),
        _fill(1, PUT, OrderSide.SELL, 1, 2.00, D0),
        _fill(2, PUT, OrderSide.BUY, 1, 0.50, date(2024, 1, 3)),  # +150 realised
    )
    at = _at(date(2024, 1, 4))
    view = MarketView(MarketSnapshot(as_of=at, quotes={"AAPL": Quote("AAPL", 190.0, at)}))
    [acct] = ledger_facts(store.state, view).accounts
    assert acct.quarter_gains == 150.0  # the +4,000 on the shares' mark is unrealised
    assert acct.equity == pytest.approx(300_000 + 150 + 19_000)


def test_the_tax_reserve_is_thirty_percent_of_realised_gains(bundled):
    from engine.execution import money
    from engine.execution.plan import Context
    from engine.execution.risk import Limits
    from engine.records.decision import Action, ConstitutionRef, Decision

    store = _store(
        _fill(1, PUT, OrderSide.SELL, 10, 2.00, D0),
        _fill(2, PUT, OrderSide.BUY, 10, 0.0, date(2024, 1, 5), "expiry"),  # +2,000 realised
    )
    at = _at(date(2024, 3, 28), 16)
    view = MarketView(MarketSnapshot(as_of=at))
    facts = {a.id: a.model_dump(mode="json") for a in ledger_facts(store.state, view).accounts}
    decision = Decision(
        decision_id="d-1",
        as_of=at.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={},
        fired=(),
        actions=(),
    )
    ctx = Context(bundled.model, decision, store.state, view, Limits("active", 1.0), facts, {})
    action = Action(
        kind="reserve_tax",
        account="REV",
        rule="reinvest.quarterly",
        clause="§10",
        salience=95,
        params={"fraction": 0.3},
        reason="t",
    )
    [op] = money.reserve_tax(ctx, 0, action).ops
    assert op.amount == 600_00 and op.dst_bucket == "tax_reserve"


def _share_loss(store_ops, rebuy_day: date | None):
    """Shares bought at 100 on D0, sold at 90 on 2024-03-01; bought again on ``rebuy_day``."""
    sold = date(2024, 3, 1)
    ops = [
        _fill(1, stock("MSFT"), OrderSide.BUY, 100, 100.0, D0),
        _fill(2, stock("MSFT"), OrderSide.SELL, 100, 90.0, sold),
    ]
    if rebuy_day is not None:
        ops.append(_fill(3, stock("MSFT"), OrderSide.BUY, 100, 91.0, rebuy_day))
    return _store(*ops)


@pytest.mark.parametrize(
    ("days_after", "flagged"), [(30, True), (31, False), (-30, True), (None, False)]
)
def test_a_share_loss_is_a_wash_sale_with_a_purchase_within_30_days_either_side(
    bundled, days_after, flagged
):
    sold = date(2024, 3, 1)
    rebuy = None if days_after is None else sold + timedelta(days=days_after)
    if rebuy is not None and rebuy < sold:  # bought before the sale: a second lot, sold later
        store = _store(
            _fill(1, stock("MSFT"), OrderSide.BUY, 100, 100.0, D0),
            _fill(3, stock("MSFT"), OrderSide.BUY, 100, 91.0, rebuy),
            _fill(2, stock("MSFT"), OrderSide.SELL, 100, 90.0, sold),
        )
    else:
        store = _share_loss([], rebuy)
    [line] = tax_lines(bundled.model, store.state, store.realised)
    assert line.gain == -1000.0 and line.wash_sale is flagged


@pytest.mark.parametrize(("held_days", "term"), [(365, "short"), (366, "long")])
def test_a_lot_held_more_than_a_year_is_long_term(bundled, held_days, term):
    store = _store(
        _fill(1, stock("MSFT"), OrderSide.BUY, 100, 100.0, D0),
        _fill(2, stock("MSFT"), OrderSide.SELL, 100, 120.0, D0 + timedelta(days=held_days)),
    )
    [line] = tax_lines(bundled.model, store.state, store.realised)
    assert (line.term, line.gain) == (term, 2000.0)


def test_the_quarter_books_keep_realised_and_unrealised_apart(bundled):
    store = _store(
        DepositShares("s", "REV", stock("AAPL"), 100, 150.0),
        _fill(1, PUT, OrderSide.SELL, 1, 2.00, D0),
        _fill(2, PUT, OrderSide.BUY, 1, 0.50, date(2024, 1, 3)),
    )
    at = _at(date(2024, 3, 28), 16)
    view = MarketView(MarketSnapshot(as_of=at, quotes={"AAPL": Quote("AAPL", 190.0, at)}))
    books = quarter_books(bundled.model, store.state, store.realised, view, quarter_of(at.date()))
    [rev] = books.accounts
    assert (rev.realised, rev.unrealised) == (150.0, 4000.0)
    assert [t.gain for t in books.tax_lines] == [150.0] and books.short_term_gain == 150.0
