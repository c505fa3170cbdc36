"""The ledger on a database (``engine.execution.executor.LedgerStore``) and the paper venue's book.

``apply`` computes the new state with the pure ``engine.execution.ledger.apply`` and writes, in ONE
serialised transaction, the operations, their journal lines and the rows of whatever they
changed; the in-memory state moves only after the commit. A crash therefore leaves either all
of an ``apply`` or none of it, and loading gives back exactly the state that was committed
(one snapshot: REPEATABLE READ on PostgreSQL, so a concurrent commit is seen whole or not at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date, datetime
from itertools import islice
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import bindparam
from sqlalchemy.engine import Connection, Engine

from adapters.brokers.paper import BookChanges
from adapters.storage import audit_ledger, books_schema, ledger_schema
from adapters.storage.database import (
    create_db_engine,
    is_sqlite,
    read_connection,
    resolve_url,
    statement,
    write_transaction,
)
from adapters.storage.migrations import migrate
from adapters.storage.raw_sqlite import RawSqliteWriter
from engine.execution.broker import OrderRequest, OrderState
from engine.execution.ledger import (
    AccountMode,
    AccountState,
    ApplyFill,
    Entry,
    Flag,
    Holding,
    LedgerOp,
    LedgerState,
    MarkEquity,
    OrderRecord,
    Realised,
    apply,
    quarter_of,
)
from engine.execution.lots import Lot
from engine.market.instruments import ContractSpec


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def op_body(op: LedgerOp) -> str:
    return json.dumps(_jsonable(op), sort_keys=True, separators=(",", ":"))


class CycleWrites:
    """A backtest's ledger and paper-venue writes of one cycle, kept in order and written in ONE
    transaction when the cycle ends (D180, like its audit records: D93). Live and paper never
    use it: they write each ``apply`` in its own durable commit before anything acts.

    ``attached``: the cycle's audit log writes them inside its own transaction
    (``write_into``, scheduler/batched_log.py), so a cycle's ledger, venue book and records
    commit together; the store's ``end_cycle`` then leaves them to it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.attached = False
        self._ledger: list[Callable[[Connection], None]] = []
        self._book: BookChanges | None = None  # the venue's changes of this cycle, merged

    def ledger(self, write: Callable[[Connection], None]) -> None:
        self._ledger.append(write)

    def book(self, changes: BookChanges) -> None:
        self._book = changes if self._book is None else merged(self._book, changes)

    @property
    def pending(self) -> bool:
        return bool(self._ledger) or self._book is not None

    def flush(self) -> None:
        """Write what is pending in a transaction of its own."""
        if not self.pending:
            return
        where = "writing a cycle's ledger"
        with write_transaction(self.engine, "ledger_op", where) as conn:
            self.write_into(conn, where)

    def write_into(self, conn: Connection, where: str) -> None:
        """Write what is pending inside the caller's write transaction on this database."""
        writes, book = self._ledger, self._book
        self._ledger, self._book = [], None
        if not is_sqlite(self.engine):
            conn.exec_driver_sql("LOCK TABLE ledger_op IN SHARE ROW EXCLUSIVE MODE")
            if book is not None:
                conn.exec_driver_sql("LOCK TABLE paper_venue IN SHARE ROW EXCLUSIVE MODE")
            target = conn
        else:
            # a stand-in for the Connection: the writers use only execute(text, params) and
            # .first() on its result, which RawSqliteWriter gives on the driver itself
            target = cast(Connection, RawSqliteWriter(conn, where))
        for write in writes:
            write(target)
        if book is not None:
            _write_venue(target, book)


class SqlLedgerStore:
    """``writes``: a backtest's cycle-batched writes (``CycleWrites``, flushed by
    ``end_cycle``); None (live, paper, tools) writes each ``apply`` in its own transaction."""

    def __init__(self, engine: Engine, writes: CycleWrites | None = None):
        self.engine = engine
        self._writes = writes
        self._state = self._load()

    @classmethod
    def open(cls, url: str | None, *, per_cycle: bool = False) -> SqlLedgerStore:
        engine = create_db_engine(resolve_url(url))
        migrate(engine, [ledger_schema.COMPONENT, audit_ledger.COMPONENT, books_schema.COMPONENT])
        return cls(engine, CycleWrites(engine) if per_cycle else None)

    @property
    def writes(self) -> CycleWrites | None:
        return self._writes

    @property
    def state(self) -> LedgerState:
        return self._state

    def close(self) -> None:
        self._flush()
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def apply(self, ops: Sequence[LedgerOp], at: datetime) -> LedgerState:
        old = new = self._state
        done = []
        for op in ops:
            r = apply(new, op)
            if r.changed:
                done.append((op, r.entries, r.realised))
                new = r.state
        if not done:
            return old
        stamp = at.isoformat()
        marked = {op.account for op, _, _ in done if isinstance(op, MarkEquity)}
        before, after = _sides(old, new, marked)  # see _Side

        def write(conn: Connection) -> None:
            bodies = [op_body(op) for op, _, _ in done]  # once: the row and its chain link
            for (op, entries, realised), body in zip(done, bodies, strict=True):
                self._write_op(conn, op, body, entries, stamp, before)
                _write_realised(conn, realised)
            # the ledger's own hash chain, in the same transaction (docs/decision-log.md)
            audit_ledger.chain_ops(
                conn,
                [
                    (op.op_id, type(op).__name__, body, es)
                    for (op, es, _), body in zip(done, bodies, strict=True)
                ],
                stamp,
            )
            self._write_changes(conn, before, after)
            _write_books(conn, before, after)

        if self._writes is not None:  # a backtest's cycle: written when the cycle ends (D180)
            self._writes.ledger(write)
        else:
            with write_transaction(
                self.engine, "ledger_op", f"applying {len(done)} ledger operation(s)"
            ) as conn:
                write(conn)
        self._state = new
        return new

    def end_cycle(self) -> None:
        """Write the cycle's pending ledger and venue writes in one transaction (D180): nothing
        to do when the store writes each ``apply`` at once, or when the cycle's audit log
        writes them with its records (``CycleWrites.attached``)."""
        if self._writes is not None and not self._writes.attached:
            self._writes.flush()

    def _flush(self) -> None:
        """Before a read of the tables: what this store applied is written first."""
        if self._writes is not None:
            self._writes.flush()

    def _write_op(
        self,
        conn: Connection,
        op: LedgerOp,
        body: str,
        entries: Iterable[Entry],
        stamp: str,
        before: _Side,
    ) -> None:
        conn.execute(
            statement("INSERT INTO ledger_op (op_id, kind, body, at) VALUES (:i, :k, :b, :a)"),
            {"i": op.op_id, "k": type(op).__name__, "b": body, "a": stamp},
        )
        if entries:
            conn.execute(
                statement(
                    "INSERT INTO ledger_entry (op_id, line, account, bucket, amount, memo, at)"
                    " VALUES (:o, :l, :ac, :b, :am, :m, :a)"
                ),
                [
                    {
                        "o": e.op_id,
                        "l": n,
                        "ac": e.account,
                        "b": e.bucket,
                        "am": e.amount,
                        "m": e.memo,
                        "a": stamp,
                    }
                    for n, e in enumerate(entries)
                ],
            )
        if isinstance(op, ApplyFill):
            f = op.fill
            conn.execute(
                statement(
                    "INSERT INTO ledger_fill (execution_id, client_order_id, account, contract_key, side, quantity,"
                    " price, commission, at, body) VALUES (:e, :c, :ac, :k, :s, :q, :p, :cm, :a, :b)"
                ),
                {
                    "e": f.execution_id,
                    "c": f.client_order_id,
                    "ac": f.account,
                    "k": f.contract.key,
                    "s": f.side.value,
                    "q": f.quantity,
                    "p": f.price,
                    "cm": f.commission,
                    "a": f.at.isoformat(),
                    "b": f.model_dump_json(),
                },
            )
        if isinstance(op, MarkEquity):
            acct = before.accounts.get(op.account)
            hwm = max(acct.high_water_mark if acct else 0, op.equity)
            conn.execute(
                statement(
                    "INSERT INTO ledger_equity (account, at, equity, high_water_mark) VALUES (:a, :t, :e, :h)"
                ),
                {"a": op.account, "t": stamp, "e": op.equity, "h": hwm},
            )

    def _write_changes(self, conn: Connection, old: _Side, new: _Side) -> None:
        for k in _changed(old.accounts, new.accounts):
            conn.execute(statement("DELETE FROM ledger_account WHERE id = :i"), {"i": k})
            a = new.accounts[k]
            conn.execute(
                statement(
                    "INSERT INTO ledger_account VALUES (:id, :kind, :opened, :base, :hwm, :forks, :parent, :family,"
                    " :status, :quarter, :qse, :rq)"
                ),
                {
                    "id": a.id,
                    "kind": a.kind,
                    "opened": a.opened.isoformat(),
                    "base": a.base_equity,
                    "hwm": a.high_water_mark,
                    "forks": a.forks,
                    "parent": a.parent,
                    "family": a.family,
                    "status": a.status,
                    "quarter": a.quarter,
                    "qse": a.quarter_start_equity,
                    "rq": a.reinvested_quarter,
                },
            )
        for acct, key in _changed(old.holdings, new.holdings):
            conn.execute(
                statement("DELETE FROM ledger_position WHERE account = :a AND contract_key = :k"),
                {"a": acct, "k": key},
            )
            h = new.holdings.get((acct, key))
            if h is not None:
                conn.execute(
                    statement(
                        "INSERT INTO ledger_position VALUES (:a, :k, :c, :q, :p, :pu, :o, :r)"
                    ),
                    {
                        "a": acct,
                        "k": key,
                        "c": h.contract.model_dump_json(),
                        "q": h.quantity,
                        "p": h.avg_price,
                        "pu": h.purpose,
                        "o": h.opened.isoformat(),
                        "r": h.roll_debit,
                    },
                )
        for coid in _changed(old.orders, new.orders):
            conn.execute(
                statement("DELETE FROM ledger_order WHERE client_order_id = :c"), {"c": coid}
            )
            o = new.orders[coid]
            conn.execute(
                statement(
                    "INSERT INTO ledger_order VALUES (:c, :d, :a, :i, :k, :p, :f, :w, :r, :s, :fl, :av, :re)"
                ),
                {
                    "c": coid,
                    "d": o.request.decision_id,
                    "a": o.request.account,
                    "i": o.action_index,
                    "k": o.action_kind,
                    "p": o.purpose,
                    "f": o.funding,
                    "w": o.why,
                    "r": o.request.model_dump_json(),
                    "s": o.state.value,
                    "fl": o.filled,
                    "av": o.avg_fill_price,
                    "re": o.reason,
                },
            )
        if (old.mode, old.mode_reason, old.latched) != (new.mode, new.mode_reason, new.latched):
            conn.execute(statement("DELETE FROM ledger_mode WHERE id = 1"))
            conn.execute(
                statement("INSERT INTO ledger_mode VALUES (1, :m, :r, :l)"),
                {"m": new.mode, "r": new.mode_reason, "l": int(new.latched)},
            )

    # ------------------------------------------------------------------ reading

    def _load(self) -> LedgerState:
        with read_connection(self.engine, "loading the ledger") as conn:
            if not is_sqlite(self.engine):
                # One snapshot for all the SELECTs below: READ COMMITTED (PostgreSQL's default)
                # would let a commit land between them and load half of it. SQLite's read
                # transaction is a snapshot already.
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            accounts = {
                r[0]: AccountState(
                    id=r[0],
                    kind=r[1],
                    opened=date.fromisoformat(r[2]),
                    base_equity=r[3],
                    high_water_mark=r[4],
                    forks=r[5],
                    parent=r[6],
                    family=r[7],
                    status=r[8],
                    quarter=r[9],
                    quarter_start_equity=r[10],
                    reinvested_quarter=r[11],
                )
                for r in conn.execute(statement("SELECT * FROM ledger_account"))
            }
            balances = {
                (r[0], r[1]): int(r[2])
                for r in conn.execute(
                    statement(
                        "SELECT account, bucket, SUM(amount) FROM ledger_entry GROUP BY account, bucket"
                    )
                )
            }
            holdings = {}
            for r in conn.execute(statement("SELECT * FROM ledger_position")):
                h = Holding(
                    r[0],
                    ContractSpec.model_validate_json(r[2]),
                    r[3],
                    r[4],
                    r[5],
                    date.fromisoformat(r[6]),
                    r[7],
                )
                holdings[(r[0], r[1])] = h
            orders = {
                r[0]: OrderRecord(
                    OrderRequest.model_validate_json(r[8]),
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    OrderState(r[9]),
                    r[10],
                    r[11],
                    r[12],
                )
                for r in conn.execute(statement("SELECT * FROM ledger_order"))
            }
            orders = _with_ladders(conn, orders)
            applied = frozenset(
                r[0] for r in conn.execute(statement("SELECT op_id FROM ledger_op"))
            )
            mode = conn.execute(
                statement("SELECT mode, reason, latched FROM ledger_mode WHERE id = 1")
            ).first()
            books = _load_books(conn, holdings)
        m = {"mode": mode[0], "mode_reason": mode[1], "latched": bool(mode[2])} if mode else {}
        return LedgerState(
            accounts=accounts,
            balances=balances,
            holdings=holdings,
            orders=orders,
            applied=applied,
            **m,
            **books,
        )

    def realised_lines(self, account: str | None = None) -> list[Realised]:
        """The tax ledger's lines (closed lots) in the order they were realised."""
        self._flush()  # a reader sees what this store has applied
        return realised_lines(self.engine, account)

    def reload(self) -> LedgerState:
        self._flush()
        self._state = self._load()
        return self._state

    def entries_total(self) -> int:
        self._flush()
        with read_connection(self.engine, "summing the ledger") as conn:
            return int(
                conn.execute(
                    statement("SELECT COALESCE(SUM(amount), 0) FROM ledger_entry")
                ).scalar_one()
            )

    def last_at(self) -> datetime | None:
        """The latest time an operation was applied at (the ledger's own timeline: a paper or
        replay cycle's time, not the wall clock); None for an empty ledger."""
        self._flush()
        with read_connection(self.engine, "reading the ledger's last time") as conn:
            stamps = [r[0] for r in conn.execute(statement("SELECT DISTINCT at FROM ledger_op"))]
        return max((datetime.fromisoformat(s) for s in stamps), default=None)

    def mode_op(self) -> str | None:
        """The id of the ``SetMode`` operation that set the current mode (None: never set).
        A latch set by a decision's plan has the id ``mode:DECISION_ID:ACTION``."""
        s = self._state
        self._flush()
        with read_connection(self.engine, "reading mode changes") as conn:
            rows = conn.execute(
                statement("SELECT op_id, body, at FROM ledger_op WHERE kind = 'SetMode'")
            ).all()
        current = [
            (datetime.fromisoformat(at), op_id)
            for op_id, body, at in rows
            if (b := json.loads(body))["mode"] == s.mode
            and b["reason"] == s.mode_reason
            and b["latched"] == s.latched
        ]
        return max(current)[1] if current else None

    def notes_of(self, kind: str) -> list[dict[str, str]]:
        """The data of the ledger's ``Note`` operations of ``kind``, oldest first."""
        self._flush()
        with read_connection(self.engine, f"reading {kind} notes") as conn:
            rows = conn.execute(
                statement("SELECT body, at, op_id FROM ledger_op WHERE kind = 'Note'")
            ).all()
        notes = [(datetime.fromisoformat(at), op_id, json.loads(body)) for body, at, op_id in rows]
        return [
            {k: v for k, v in n["data"]}
            for _, _, n in sorted(notes, key=lambda t: (t[0], t[1]))
            if n["kind"] == kind
        ]

    def equity_history(self, account: str) -> list[tuple[str, int, int]]:
        self._flush()
        with read_connection(self.engine, "reading equity") as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    statement(
                        "SELECT at, equity, high_water_mark FROM ledger_equity WHERE account = :a ORDER BY at"
                    ),
                    {"a": account},
                )
            ]


def _with_ladders(conn: Connection, orders: dict[str, OrderRecord]) -> dict[str, OrderRecord]:
    """Working orders with their cancel-replace ladder, read from their intent operation (the
    ladder never changes after the intent; only the working order needs it, to continue)."""
    working = [c for c, o in orders.items() if o.is_open and o.request.order_type == "LMT"]
    if not working:
        return orders
    rows = conn.execute(
        statement("SELECT op_id, body FROM ledger_op WHERE op_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": [f"intent:{c}" for c in working]},
    )
    out = dict(orders)
    for op_id, body in rows:
        ladder = json.loads(body).get("order", {}).get("ladder") or ()
        coid = op_id[len("intent:") :]
        out[coid] = replace(out[coid], ladder=tuple(float(x) for x in ladder))
    return out


def realised_lines(engine: Engine, account: str | None = None) -> list[Realised]:
    """The tax ledger's lines (closed lots) in the order they were realised."""
    sql = "SELECT body FROM ledger_realised"
    params: dict[str, str] = {}
    if account is not None:
        sql += " WHERE account = :a"
        params["a"] = account
    with read_connection(engine, "reading realised P&L") as conn:
        rows = [
            json.loads(r[0])
            for r in conn.execute(statement(sql + " ORDER BY closed, op_id, line"), params)
        ]
    return [_realised_from(b) for b in rows]


def _realised_from(b: dict) -> Realised:
    return Realised(
        op_id=b["op_id"],
        line=b["line"],
        account=b["account"],
        contract=ContractSpec.model_validate(b["contract"]),
        purpose=b["purpose"],
        quantity=b["quantity"],
        opened=date.fromisoformat(b["opened"]),
        closed=date.fromisoformat(b["closed"]),
        open_price=b["open_price"],
        close_price=b["close_price"],
        gain=b["gain"],
        origin=b["origin"],
    )


def _write_realised(conn: Connection, realised: Sequence[Realised]) -> None:
    if not realised:
        return
    conn.execute(
        statement(
            "INSERT INTO ledger_realised (op_id, line, account, contract_key, quarter, gain, closed, body)"
            " VALUES (:o, :l, :a, :k, :q, :g, :c, :b)"
        ),
        [
            {
                "o": r.op_id,
                "l": r.line,
                "a": r.account,
                "k": r.contract.key,
                "q": quarter_of(r.closed),
                "g": r.gain,
                "c": r.closed.isoformat(),
                "b": json.dumps(_jsonable(r), sort_keys=True, separators=(",", ":")),
            }
            for r in realised
        ],
    )


def _write_books(conn: Connection, old: _Side, new: _Side) -> None:
    for acct, key in _changed(old.holdings, new.holdings):
        conn.execute(
            statement("DELETE FROM ledger_lot WHERE account = :a AND contract_key = :k"),
            {"a": acct, "k": key},
        )
        h = new.holdings.get((acct, key))
        if h is not None and h.lots:
            conn.execute(
                statement("INSERT INTO ledger_lot VALUES (:a, :k, :b)"),
                {"a": acct, "k": key, "b": json.dumps(_jsonable(list(h.lots)))},
            )
    for acct in _changed(old.account_modes, new.account_modes):
        conn.execute(statement("DELETE FROM ledger_account_mode WHERE account = :a"), {"a": acct})
        m = new.account_modes.get(acct)
        if m is not None:
            conn.execute(
                statement("INSERT INTO ledger_account_mode VALUES (:a, :m, :r, :s, :rl)"),
                {"a": acct, "m": m.mode, "r": m.reason, "s": m.since.isoformat(), "rl": m.release},
            )
    for name in _changed(old.flags, new.flags):
        conn.execute(statement("DELETE FROM ledger_flag WHERE name = :n"), {"n": name})
        f = new.flags.get(name)
        if f is not None:
            conn.execute(
                statement("INSERT INTO ledger_flag VALUES (:n, :v, :r, :s)"),
                {"n": name, "v": f.value, "r": f.reason, "s": f.since.isoformat()},
            )


def _load_books(conn: Connection, holdings: dict) -> dict:
    for acct, key, body in conn.execute(
        statement("SELECT account, contract_key, body FROM ledger_lot")
    ):
        h = holdings.get((acct, key))
        if h is not None:
            lots = tuple(
                Lot(x["quantity"], x["price"], date.fromisoformat(x["opened"]))
                for x in json.loads(body)
            )
            holdings[(acct, key)] = replace(h, lots=lots)
    modes = {
        r[0]: AccountMode(r[1], r[2], date.fromisoformat(r[3]), r[4])
        for r in conn.execute(
            statement("SELECT account, mode, reason, since, release FROM ledger_account_mode")
        )
    }
    flags = {
        r[0]: Flag(r[1], r[2], date.fromisoformat(r[3]))
        for r in conn.execute(statement("SELECT name, value, reason, since FROM ledger_flag"))
    }
    realised = {
        (r[0], r[1]): int(r[2])
        for r in conn.execute(
            statement(
                "SELECT account, quarter, SUM(gain) FROM ledger_realised GROUP BY account, quarter"
            )
        )
    }
    return {"account_modes": modes, "flags": flags, "realised": realised}


@dataclass(frozen=True)
class _Side:
    """What the table writes of one ``apply`` read of a state: the entries that differ from
    the other state, and the scalars. A backtest keeps a week of writes before it writes them
    (D211); whole states would keep every order ever placed, once per operation."""

    accounts: Mapping[str, AccountState]
    holdings: Mapping[tuple[str, str], Holding]
    orders: Mapping[str, OrderRecord]
    account_modes: Mapping[str, AccountMode]
    flags: Mapping[str, Flag]
    mode: str
    mode_reason: str
    latched: bool


def _sides(old: LedgerState, new: LedgerState, accounts: Iterable[str]) -> tuple[_Side, _Side]:
    """Both sides of the change from ``old`` to ``new`` (``accounts``: kept on the old side
    too, for the equity marks' high-water marks)."""
    changed = {
        name: _changed(getattr(old, name), getattr(new, name))
        for name in ("accounts", "holdings", "orders", "account_modes", "flags")
    }
    also = {"accounts": set(accounts)}

    def side(state: LedgerState, extra: Mapping[str, set]) -> _Side:
        def kept(name: str) -> dict:
            mine = getattr(state, name)
            return {k: mine[k] for k in (*changed[name], *extra.get(name, ())) if k in mine}

        return _Side(
            accounts=kept("accounts"),
            holdings=kept("holdings"),
            orders=kept("orders"),
            account_modes=kept("account_modes"),
            flags=kept("flags"),
            mode=state.mode,
            mode_reason=state.mode_reason,
            latched=state.latched,
        )

    return side(old, also), side(new, {})


def _changed(old: Mapping[Any, object], new: Mapping[Any, object]) -> list:
    """The keys whose value is not the same object in ``old`` and ``new`` (a missing key reads
    as None), sorted: one pass over ``new``, and the keys that left it."""
    if old is new:  # the operation left this mapping as it was (LedgerState keeps it)
        return []
    if len(new) >= len(old):
        # An operation makes ``{**old, key: value}``: old's keys in old's order, then any new
        # ones. Walked side by side, that needs no lookup per key (every order ever placed).
        changed = []
        for (k, v), (k_old, v_old) in zip(new.items(), old.items(), strict=False):
            if k is not k_old and k != k_old:
                break  # another order of keys: the general way below
            if v is not v_old:
                changed.append(k)
        else:
            changed += [k for k, v in islice(new.items(), len(old), None) if v is not None]
            return sorted(changed)
    changed = [k for k, v in new.items() if old.get(k) is not v]
    changed += [k for k in old.keys() - new.keys() if old[k] is not None]
    return sorted(changed)


class SqlVenueStore:
    """The paper venue's book: its orders (``paper_venue_order``) and fills
    (``paper_venue_fill``) a row each, written as they change, and the rest (positions, seeds,
    sequence) in ``paper_venue``'s one row. ``writes``: a backtest's cycle-batched writes (the
    ledger store's), where a save waits for the cycle's end; None writes each save at once."""

    def __init__(self, engine: Engine, writes: CycleWrites | None = None):
        self.engine = engine
        self._writes = writes

    def load(self) -> dict | None:
        if self._writes is not None:
            self._writes.flush()
        with read_connection(self.engine, "loading the paper venue") as conn:
            row = conn.execute(statement("SELECT book FROM paper_venue WHERE id = 1")).first()
            if row is None:
                return None
            book = json.loads(row[0])
            if "orders" in book:  # the whole book in one row (before ledger 2)
                return {**book, "whole": True}
            orders = conn.execute(statement("SELECT body FROM paper_venue_order ORDER BY place"))
            fills = conn.execute(statement("SELECT body FROM paper_venue_fill ORDER BY place"))
            book["orders"] = [json.loads(r[0]) for r in orders]
            book["fills"] = [json.loads(r[0]) for r in fills]
        return book

    def save(self, book: BookChanges | dict) -> None:
        """``book``: the venue's changes, or a whole book as the loaded dict (tools and tests
        that edit the book)."""
        changes = book if isinstance(book, BookChanges) else changes_of(book)
        if self._writes is not None:
            self._writes.book(changes)
            return
        with write_transaction(self.engine, "paper_venue", "saving the paper venue") as conn:
            _write_venue(conn, changes)


def changes_of(book: dict) -> BookChanges:
    """A whole book (the loaded form) as the changes that replace what is stored."""
    rest = {k: book[k] for k in ("positions", "seeds", "seq")}
    return BookChanges(
        tuple((n, o["request"]["client_order_id"], _json(o)) for n, o in enumerate(book["orders"])),
        tuple((n, _json(f)) for n, f in enumerate(book["fills"])),
        _json(rest),
        whole=True,
    )


def merged(old: BookChanges, new: BookChanges) -> BookChanges:
    """Two saves as one: the later text of an order wins, fills add up, the later rest."""
    if new.whole:
        return new
    orders = {place: (place, coid, body) for place, coid, body in old.orders}
    orders.update({place: (place, coid, body) for place, coid, body in new.orders})
    return BookChanges(
        tuple(orders[k] for k in sorted(orders)), old.fills + new.fills, new.rest, old.whole
    )


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_VENUE_DELETE = statement("DELETE FROM paper_venue WHERE id = 1")
_VENUE_INSERT = statement("INSERT INTO paper_venue (id, book) VALUES (1, :b)")
_VENUE_CLEAR = (
    statement("DELETE FROM paper_venue_order"),
    statement("DELETE FROM paper_venue_fill"),
)
_VENUE_ORDER = statement(
    "INSERT INTO paper_venue_order (place, client_order_id, body) VALUES (:p, :c, :b)"
    " ON CONFLICT (place) DO UPDATE SET body = excluded.body"
)
_VENUE_FILL = statement("INSERT INTO paper_venue_fill (place, body) VALUES (:p, :b)")


def _write_venue(conn: Connection, changes: BookChanges) -> None:
    conn.execute(_VENUE_DELETE)
    conn.execute(_VENUE_INSERT, {"b": changes.rest})
    if changes.whole:
        for clear in _VENUE_CLEAR:
            conn.execute(clear)
    for place, coid, body in changes.orders:
        conn.execute(_VENUE_ORDER, {"p": place, "c": coid, "b": body})
    for place, body in changes.fills:
        conn.execute(_VENUE_FILL, {"p": place, "b": body})
