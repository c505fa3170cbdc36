"""The paper venue's book on a database (ledger migration 2): orders and fills a row each,
saved as they change, so a save costs what changed and not the whole history; a restart gives
the same book; a book saved in the one-row form of before is read and rewritten."""

from __future__ import annotations

import json

from sqlalchemy import text

from adapters.brokers.paper import BookChanges, PaperBroker, PaperCosts
from adapters.storage.database import write_transaction
from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
from engine.execution.broker import OrderRequest, OrderSide, OrderState
from engine.market.instruments import ContractSpec, SecType
from tests.bundled_params import PARAMS
from tests.execution import helpers

THU = helpers.at(helpers.WEEK.replace(day=11), 10, 0)


class Recording(SqlVenueStore):
    """The real store, keeping what each save was handed."""

    def __init__(self, engine):
        super().__init__(engine)
        self.saves: list[BookChanges] = []

    def save(self, book):
        if isinstance(book, BookChanges):
            self.saves.append(book)
        super().save(book)


def _put(n: int, limit: float) -> OrderRequest:
    contract = ContractSpec(
        sec_type=SecType.OPTION, symbol="SPY", expiry=THU.date(), strike=1.0 + n, right="P"
    )
    return OrderRequest(
        client_order_id=f"d-{n}:0:o0",
        decision_id=f"d-{n}",
        account="GEN",
        contract=contract,
        side=OrderSide.SELL,
        quantity=1,
        limit_price=limit,
    )


def _book(broker: PaperBroker) -> tuple:
    return (
        [r.model_dump(mode="json") for r in broker.requests()],
        [s.model_dump(mode="json") for s in broker.orders()],
        [f.model_dump(mode="json") for f in broker.fills()],
        [p.model_dump(mode="json") for p in broker.positions()],
    )


def _venue(market, store, url):
    broker = PaperBroker(market, costs=PaperCosts(participation=1.0), store=store)
    broker.connect()
    broker.sync(THU, market.snapshot(THU, ("SPY",), PARAMS))
    return broker


def test_a_save_writes_what_changed_and_a_restart_reads_the_same_book(market, backend_url):
    ledger = SqlLedgerStore.open(backend_url)
    store = Recording(ledger.engine)
    broker = _venue(market, store, backend_url)
    for n in range(5):
        broker.submit(_put(n, 0.01))  # a penny bid for a put: fills at once
    broker.submit(_put(9, 500.0))  # far above any price: stays working
    filled = [s for s in broker.orders() if s.state is OrderState.FILLED]
    assert len(filled) == 5 and len(broker.fills()) >= 5
    before = len(store.saves)
    broker.cancel("d-9:0:o0")
    (cancel,) = store.saves[before:]
    assert [coid for _, coid, _ in cancel.orders] == ["d-9:0:o0"]  # the one that changed
    assert cancel.fills == () and not cancel.whole
    again = _venue(market, SqlVenueStore(ledger.engine), backend_url)
    assert _book(again) == _book(broker)
    ledger.close()


def test_a_book_saved_in_one_row_is_read_and_rewritten_in_rows(market, backend_url):
    ledger = SqlLedgerStore.open(backend_url)
    broker = _venue(market, SqlVenueStore(ledger.engine), backend_url)
    for n in range(3):
        broker.submit(_put(n, 0.01))
    book = SqlVenueStore(ledger.engine).load()
    assert book is not None and len(book["orders"]) == 3
    with write_transaction(ledger.engine, "paper_venue", "the old form") as conn:
        conn.execute(text("DELETE FROM paper_venue_order"))
        conn.execute(text("DELETE FROM paper_venue_fill"))
        conn.execute(text("UPDATE paper_venue SET book = :b WHERE id = 1"), {"b": json.dumps(book)})
    old = _venue(market, Recording(ledger.engine), backend_url)
    assert _book(old) == _book(broker)
    old.submit(_put(7, 500.0))  # the first save after it rewrites the whole book in rows
    assert old._store.saves[-1].whole
    with ledger.engine.connect() as conn:
        row = conn.execute(text("SELECT book FROM paper_venue WHERE id = 1")).scalar_one()
    assert "orders" not in json.loads(row)
    assert _book(_venue(market, SqlVenueStore(ledger.engine), backend_url)) == _book(old)
    ledger.close()


def test_changed_keys_are_those_whose_value_is_another_object():
    """``_changed`` (the ledger rows a write touches) against its definition."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from adapters.storage.ledger_store import _changed

    values = [object(), object(), object(), None]
    mapping = st.dictionaries(st.integers(0, 12), st.sampled_from(values), max_size=10)

    @settings(max_examples=500, deadline=None)
    @given(mapping, mapping)
    def check(old, new):
        keys = set(old) | set(new)
        assert _changed(old, new) == sorted(k for k in keys if old.get(k) is not new.get(k))

    check()


def test_changed_keys_of_a_mapping_an_operation_made_from_another():
    """``_changed`` where ``new`` is ``old`` with keys replaced and appended (what ledger
    operations make, in old's order), and where keys were removed or reordered."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from adapters.storage.ledger_store import _changed

    values = [object(), object(), None]
    old_maps = st.dictionaries(st.integers(0, 12), st.sampled_from(values), max_size=10)
    edits = st.lists(st.tuples(st.integers(0, 15), st.sampled_from(values)), max_size=4)

    @settings(max_examples=500, deadline=None)
    @given(old_maps, edits, st.sampled_from(["update", "drop first", "reversed"]))
    def check(old, changes, how):
        new = dict(old)
        for k, v in changes:
            new = {**new, k: v}
        if how == "drop first" and new:
            new.pop(next(iter(new)))
        elif how == "reversed":
            new = dict(reversed(list(new.items())))
        keys = set(old) | set(new)
        assert _changed(old, new) == sorted(k for k in keys if old.get(k) is not new.get(k))

    check()
