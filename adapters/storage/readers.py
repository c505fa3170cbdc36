"""Read-only queries over an ALL-USE database, for reports and the dashboard.

A ``ReadOnlyDatabase`` never migrates, never writes and never takes the writer's lease: a
SQLite file is opened with ``mode=ro`` (a WAL reader: it never blocks the daemon's writer and
the writer never blocks it); PostgreSQL reads in ``READ ONLY`` transactions. Every method is
one short read transaction. Tables that a database does not have yet (an older database, or a
component that has not run there) read as empty, so the readers stay tolerant of absent data.

Rows come back as frozen values with dollars as floats (the ledger stores cents).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from adapters.storage.audit_store import AuditStore
from adapters.storage.database import create_db_engine, display_url, is_sqlite, resolve_url
from adapters.storage.errors import StorageError, translated
from engine.clock import Clock
from engine.market.instruments import ContractSpec
from engine.records.audit import utc_stamp


@dataclass(frozen=True)
class EquityMark:
    account: str
    at: datetime
    equity: float
    high_water_mark: float


@dataclass(frozen=True)
class FillRow:
    execution_id: str
    client_order_id: str
    account: str
    contract_key: str
    symbol: str
    sec_type: str
    right: str | None
    strike: float | None
    expiry: str | None
    multiplier: int
    side: str  # BUY | SELL
    quantity: int
    price: float
    commission: float
    at: datetime
    origin: str  # order | expiry | assignment


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    decision_id: str
    account: str
    action_kind: str
    purpose: str
    side: str
    quantity: int
    contract_key: str
    limit_price: float | None
    state: str
    filled: int
    avg_fill_price: float | None
    reason: str


@dataclass(frozen=True)
class PositionRow:
    account: str
    contract_key: str
    symbol: str
    sec_type: str
    right: str | None
    strike: float | None
    expiry: str | None
    multiplier: int
    quantity: int  # signed: negative is short
    avg_price: float
    purpose: str
    opened: str


@dataclass(frozen=True)
class AccountRow:
    id: str
    kind: str
    opened: str
    base_equity: float
    high_water_mark: float
    forks: int
    parent: str | None
    status: str
    cash: float


@dataclass(frozen=True)
class LedgerOpRow:
    op_id: str
    kind: str
    at: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class DecisionBody:
    """A decision record's columns and its parsed body (``body["decision"]``)."""

    seq: int
    decision_id: str
    as_of: str
    mode: str
    recorded_at: str
    decision: dict[str, Any]


@dataclass(frozen=True)
class NoteRow:
    seq: int
    decision_id: str
    ref: str
    data: dict[str, Any]


@dataclass(frozen=True)
class DecisionFilter:
    """The dashboard's decision filters. ``since``/``until`` compare the decision's as_of
    (UTC); account, rule and kind match the record's search facets; ``verdict`` is
    ``denied`` (some action was denied) or ``approved`` (actions, none denied); ``text``
    is a substring of the decision id or of the record body."""

    since: datetime | None = None
    until: datetime | None = None
    account: str | None = None
    rule: str | None = None
    kind: str | None = None
    verdict: str | None = None
    text: str | None = None
    mode: str | None = None
    before_seq: int | None = None  # paging: records older than this one
    limit: int = 50


@dataclass(frozen=True)
class MarkedPosition:
    """A holding with the mark the latest decision's facts carry (None: no mark known)."""

    position: PositionRow
    mark: float | None
    marked_at: str | None
    source: str = "facts"  # facts (a decision's) | fill (the holding's last fill) | "" (none)

    @property
    def side(self) -> str:
        return "short" if self.position.quantity < 0 else "long"

    @property
    def market_value(self) -> float | None:
        p = self.position
        return None if self.mark is None else p.quantity * p.multiplier * self.mark

    @property
    def cost(self) -> float:
        p = self.position
        return p.quantity * p.multiplier * p.avg_price

    @property
    def pnl(self) -> float | None:
        """Unrealised: market value less what the holding cost (a short's cost is its credit)."""
        value = self.market_value
        return None if value is None else value - self.cost


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def read_only_url(url: str) -> str:
    """``url`` for a reader: a SQLite file as a read-only URI (``mode=ro``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    path = Path(database)
    if not path.exists():
        raise StorageError(f"no ALL-USE database at {path} (use --db URL or set ALLUSE_DB)")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


class ReadOnlyDatabase:
    """The read side of one database (see the module docstring)."""

    def __init__(self, engine: Engine, url: str):
        self.engine = engine
        self.url = url
        self._tables: frozenset[str] | None = None

    @classmethod
    def open(cls, url: str | None) -> ReadOnlyDatabase:
        resolved = resolve_url(url)
        return cls(create_db_engine(read_only_url(resolved)), resolved)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        return display_url(self.url)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _read(self, where: str) -> Iterator[Connection]:
        """One short read transaction (rolled back); PostgreSQL's is declared READ ONLY."""
        with translated(where), self.engine.connect() as conn, conn.begin() as txn:
            if not is_sqlite(self.engine):
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
            txn.rollback()

    def tables(self) -> frozenset[str]:
        if self._tables is None:
            with translated("listing tables"):
                self._tables = frozenset(inspect(self.engine).get_table_names())
        return self._tables

    def has(self, *names: str) -> bool:
        return set(names) <= self.tables()

    def audit(self, clock: Clock) -> AuditStore:
        """The audit store's readers on this engine (no migration: nothing is written)."""
        if not self.has("audit_record"):
            raise StorageError(f"{self.display_url} holds no audit log (no ALL-USE database?)")
        return AuditStore(self.engine, clock)

    def ping(self) -> bool:
        with self._read("checking the database") as conn:
            return conn.execute(text("SELECT 1")).scalar_one() == 1

    # ------------------------------------------------------------------ ledger

    def equity(self) -> list[EquityMark]:
        if not self.has("ledger_equity"):
            return []
        with self._read("reading equity") as conn:
            rows = conn.execute(
                text("SELECT account, at, equity, high_water_mark FROM ledger_equity")
            ).all()
        marks = [EquityMark(r[0], _when(r[1]), r[2] / 100, r[3] / 100) for r in rows]
        return sorted(marks, key=lambda m: (m.at, m.account))

    def accounts(self) -> list[AccountRow]:
        if not self.has("ledger_account", "ledger_entry"):
            return []
        with self._read("reading accounts") as conn:
            cash: dict[str, int] = dict(
                conn.execute(
                    text(
                        "SELECT account, SUM(amount) FROM ledger_entry WHERE bucket = 'cash'"
                        " GROUP BY account"
                    )
                ).all()
            )
            rows = conn.execute(
                text(
                    "SELECT id, kind, opened, base_equity, high_water_mark, forks, parent, status"
                    " FROM ledger_account ORDER BY id"
                )
            ).all()
        return [
            AccountRow(
                r[0], r[1], r[2], r[3] / 100, r[4] / 100, r[5], r[6], r[7], cash.get(r[0], 0) / 100
            )
            for r in rows
        ]

    def balances(self) -> dict[tuple[str, str], float]:
        if not self.has("ledger_entry"):
            return {}
        with self._read("reading balances") as conn:
            rows = conn.execute(
                text(
                    "SELECT account, bucket, SUM(amount) FROM ledger_entry GROUP BY account, bucket"
                )
            ).all()
        return {(r[0], r[1]): int(r[2]) / 100 for r in rows}

    def fills(self) -> list[FillRow]:
        if not self.has("ledger_fill"):
            return []
        with self._read("reading fills") as conn:
            rows = conn.execute(text("SELECT body FROM ledger_fill")).all()
        fills = [_fill(json.loads(r[0])) for r in rows]
        return sorted(fills, key=lambda f: (f.at, f.execution_id))

    def orders(self) -> list[OrderRow]:
        if not self.has("ledger_order"):
            return []
        with self._read("reading orders") as conn:
            rows = conn.execute(
                text(
                    "SELECT client_order_id, decision_id, account, action_kind, purpose, request,"
                    " state, filled, avg_fill_price, reason FROM ledger_order ORDER BY client_order_id"
                )
            ).all()
        return [_order(r) for r in rows]

    def order_states(self) -> dict[str, int]:
        if not self.has("ledger_order"):
            return {}
        with self._read("counting orders") as conn:
            rows = conn.execute(
                text("SELECT state, COUNT(*) FROM ledger_order GROUP BY state")
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def positions(self) -> list[PositionRow]:
        if not self.has("ledger_position"):
            return []
        with self._read("reading positions") as conn:
            rows = conn.execute(
                text(
                    "SELECT account, contract_key, contract, quantity, avg_price, purpose, opened"
                    " FROM ledger_position ORDER BY account, contract_key"
                )
            ).all()
        return [_position(r) for r in rows]

    def ledger_ops(self, *kinds: str) -> list[LedgerOpRow]:
        if not self.has("ledger_op"):
            return []
        clause = " WHERE kind IN (" + ", ".join(f":k{i}" for i in range(len(kinds))) + ")"
        with self._read("reading ledger operations") as conn:
            rows = conn.execute(
                text("SELECT op_id, kind, at, body FROM ledger_op" + (clause if kinds else "")),
                {f"k{i}": k for i, k in enumerate(kinds)},
            ).all()
        ops = [LedgerOpRow(r[0], r[1], _when(r[2]), json.loads(r[3])) for r in rows]
        return sorted(ops, key=lambda o: (o.at, o.op_id))

    def mode(self) -> tuple[str, str, bool] | None:
        """(mode, reason, latched) of the ledger, None when never set."""
        if not self.has("ledger_mode"):
            return None
        with self._read("reading the mode") as conn:
            row = conn.execute(
                text("SELECT mode, reason, latched FROM ledger_mode WHERE id = 1")
            ).first()
        return (row[0], row[1], bool(row[2])) if row else None

    # ------------------------------------------------------------------ audit log

    def decisions(self, mode: str | None = None, page: int = 500) -> Iterator[DecisionBody]:
        """Every decision record, oldest first (bodies parsed, not validated). Read a page at
        a time, each page its own short transaction, so a long report never holds a read
        snapshot open against the writer."""
        if not self.has("audit_record"):
            return
        where = "record_type = 'decision' AND seq > :after" + (" AND mode = :m" if mode else "")
        query = text(
            "SELECT seq, decision_id, as_of, mode, recorded_at, body FROM audit_record"
            f" WHERE {where} ORDER BY seq LIMIT :n"
        )
        after = 0
        while True:
            with self._read("reading decisions") as conn:
                rows = conn.execute(query, {"after": after, "m": mode, "n": page}).all()
            for r in rows:
                body = json.loads(r[5])["decision"]
                yield DecisionBody(r[0], r[1], r[2] or "", r[3], r[4], body)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def notes(self, ref: str | None = None) -> list[NoteRow]:
        """Note links (rejections, weekly reports, resets), oldest first."""
        if not self.has("audit_record"):
            return []
        with self._read("reading notes") as conn:
            rows = conn.execute(
                text(
                    "SELECT seq, decision_id, body FROM audit_record WHERE record_type = 'link'"
                    " AND search LIKE '% link:note %' ORDER BY seq"
                )
            ).all()
        notes = [
            NoteRow(r[0], r[1], (b := json.loads(r[2])["link"])["ref"], b["data"]) for r in rows
        ]
        return [n for n in notes if ref is None or n.ref == ref]

    def search_decisions(self, f: DecisionFilter) -> list[DecisionBody]:
        """Matching decision records, newest first, at most ``f.limit``."""
        if not self.has("audit_record"):
            return []
        where, params = _decision_where(f)
        with self._read("searching decisions") as conn:
            rows = conn.execute(
                text(
                    "SELECT seq, decision_id, as_of, mode, recorded_at, body FROM audit_record"
                    f" WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :limit"
                ),
                {**params, "limit": max(1, min(f.limit, 500))},
            ).all()
        return [
            DecisionBody(r[0], r[1], r[2] or "", r[3], r[4], json.loads(r[5])["decision"])
            for r in rows
        ]

    def latest_decision(self, mode: str | None = None) -> DecisionBody | None:
        found = self.search_decisions(DecisionFilter(mode=mode, limit=1))
        return found[0] if found else None

    def marked_positions(self, mode: str | None = None) -> list[MarkedPosition]:
        """The ledger's holdings, marked with the latest decision's facts: an option at the
        mark the facts carried for it, shares at the underlying's price. A holding the latest
        facts do not show yet (opened by that very decision) is marked at its last fill."""
        latest = self.latest_decision(mode)
        marks = _marks(latest.decision) if latest else {}
        at = latest.decision.get("as_of", latest.as_of) if latest else None
        fills: dict[tuple[str, str], FillRow] = {}
        for f in self.fills():  # oldest first: the last fill wins
            fills[(f.account, f.contract_key)] = f
        out = []
        for p in self.positions():
            key = (p.account, p.contract_key)
            if key in marks:
                out.append(MarkedPosition(p, marks[key], at, "facts"))
            elif key in fills:
                out.append(MarkedPosition(p, fills[key].price, fills[key].at.isoformat(), "fill"))
            else:
                out.append(MarkedPosition(p, None, None, ""))
        return out

    def decision_count(self) -> dict[str, int]:
        """Decision records by mode."""
        if not self.has("audit_record"):
            return {}
        with self._read("counting decisions") as conn:
            rows = conn.execute(
                text(
                    "SELECT mode, COUNT(*) FROM audit_record WHERE record_type = 'decision'"
                    " GROUP BY mode"
                )
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def decision_stamps(self, limit: int = 10_000) -> list[tuple[str, str, str]]:
        """(mode, as_of, recorded_at) of the latest ``limit`` decisions (latency figures)."""
        if not self.has("audit_record"):
            return []
        with self._read("reading decision times") as conn:
            rows = conn.execute(
                text(
                    "SELECT mode, as_of, recorded_at FROM audit_record WHERE record_type = 'decision'"
                    " AND as_of IS NOT NULL ORDER BY seq DESC LIMIT :n"
                ),
                {"n": limit},
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def links(self, decision_id: str) -> list[tuple[int, str, str, dict[str, Any]]]:
        """(seq, kind, ref, data) of a decision's execution links, in order."""
        if not self.has("audit_record"):
            return []
        with self._read(f"reading links of {decision_id}") as conn:
            rows = conn.execute(
                text(
                    "SELECT seq, body FROM audit_record WHERE decision_id = :d AND record_type = 'link'"
                    " ORDER BY seq"
                ),
                {"d": decision_id},
            ).all()
        out = []
        for seq, body in rows:
            link = json.loads(body)["link"]
            out.append((int(seq), link["kind"], link.get("ref", ""), link.get("data", {})))
        return out

    def decision_by(self, ident: str) -> DecisionBody | None:
        """A decision by id (``d-...``) or by sequence number (a link's number finds its decision)."""
        if not self.has("audit_record"):
            return None
        number = ident.lstrip("#")
        params: dict[str, Any]
        if number.isdigit():
            clause, params = (
                "decision_id = (SELECT decision_id FROM audit_record WHERE seq = :s)",
                {"s": int(number)},
            )
        else:
            clause, params = "decision_id = :d", {"d": ident}
        with self._read(f"reading decision {ident}") as conn:
            row = conn.execute(
                text(
                    "SELECT seq, decision_id, as_of, mode, recorded_at, body FROM audit_record"
                    f" WHERE {clause} AND record_type = 'decision' ORDER BY seq LIMIT 1"
                ),
                params,
            ).first()
        if row is None:
            return None
        return DecisionBody(
            row[0], row[1], row[2] or "", row[3], row[4], json.loads(row[5])["decision"]
        )

    def neighbours(self, seq: int) -> tuple[int | None, int | None]:
        """Sequence numbers of the decisions before and after ``seq``."""
        with self._read("reading neighbours") as conn:
            before = conn.execute(
                text(
                    "SELECT MAX(seq) FROM audit_record WHERE record_type = 'decision' AND seq < :s"
                ),
                {"s": seq},
            ).scalar()
            after = conn.execute(
                text(
                    "SELECT MIN(seq) FROM audit_record WHERE record_type = 'decision' AND seq > :s"
                ),
                {"s": seq},
            ).scalar()
        return before, after

    def record_hashes(self, seq: int) -> tuple[str, str] | None:
        """(hash, prev_hash) of record ``seq``."""
        with self._read(f"reading record {seq}") as conn:
            row = conn.execute(
                text("SELECT hash, prev_hash FROM audit_record WHERE seq = :s"), {"s": seq}
            ).first()
        return (row[0], row[1]) if row else None

    def action_verdicts(self, kind: str) -> dict[str, int]:
        """How many actions of ``kind`` the decisions hold, by verdict (approved, denied, no
        verdict); only the decisions whose search facets name the kind are parsed."""
        counts: dict[str, int] = {}
        before: int | None = None
        while True:
            page = self.search_decisions(DecisionFilter(kind=kind, before_seq=before, limit=500))
            for d in page:
                verdicts = {v["action"]: v["approved"] for v in d.decision.get("verdicts", ())}
                for i, a in enumerate(d.decision.get("actions", ())):
                    if a["kind"] == kind:
                        v = verdicts.get(i)
                        key = "no verdict" if v is None else "approved" if v else "denied"
                        counts[key] = counts.get(key, 0) + 1
            if len(page) < 500:
                return counts
            before = page[-1].seq

    def alert_decisions(self, after_seq: int = 0, limit: int = 500) -> list[DecisionBody]:
        """Decisions with an ``alert`` action, oldest first, after ``after_seq``."""
        if not self.has("audit_record"):
            return []
        with self._read("reading alerts") as conn:
            rows = conn.execute(
                text(
                    "SELECT seq, decision_id, as_of, mode, recorded_at, body FROM audit_record"
                    " WHERE record_type = 'decision' AND seq > :after AND search LIKE '% kind:alert %'"
                    " ORDER BY seq LIMIT :n"
                ),
                {"after": after_seq, "n": limit},
            ).all()
        return [
            DecisionBody(r[0], r[1], r[2] or "", r[3], r[4], json.loads(r[5])["decision"])
            for r in rows
        ]

    def head(self) -> tuple[int, str] | None:
        if not self.has("audit_record"):
            return None
        with self._read("reading the chain head") as conn:
            row = conn.execute(
                text("SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1")
            ).first()
        return (int(row[0]), row[1]) if row else None

    # ------------------------------------------------------------------ scheduler journal

    def cycle_counts(self) -> dict[str, int]:
        """Cycles the scheduler journal holds, by reason (empty for a backtest's database)."""
        if not self.has("scheduler_cycle"):
            return {}
        with self._read("counting cycles") as conn:
            rows = conn.execute(
                text("SELECT reason, COUNT(*) FROM scheduler_cycle GROUP BY reason")
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def scheduler_events(self, limit: int = 50) -> list[tuple[str, str, dict[str, Any]]]:
        """The journal's latest events (at, kind, detail), newest first."""
        if not self.has("scheduler_event"):
            return []
        with self._read("reading scheduler events") as conn:
            rows = conn.execute(
                text("SELECT at, kind, detail FROM scheduler_event ORDER BY id DESC LIMIT :n"),
                {"n": limit},
            ).all()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def last_cycle_at(self) -> str | None:
        if not self.has("scheduler_cycle"):
            return None
        with self._read("reading the last cycle") as conn:
            return conn.execute(text("SELECT MAX(at) FROM scheduler_cycle")).scalar()


def _token(prefix: str, value: str) -> str:
    """A search facet as the audit record stores it (engine.records.audit.search_keys)."""
    return f" {prefix}:{'_'.join(value.split())} "


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _decision_where(f: DecisionFilter) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = ["record_type = 'decision'"]
    params: dict[str, Any] = {}
    if f.mode:
        where.append("mode = :mode")
        params["mode"] = f.mode
    if f.since:
        where.append("as_of >= :since")
        params["since"] = utc_stamp(f.since)
    if f.until:
        where.append("as_of < :until")
        params["until"] = utc_stamp(f.until)
    if f.before_seq:
        where.append("seq < :before")
        params["before"] = f.before_seq
    for prefix, value in (("account", f.account), ("rule", f.rule), ("kind", f.kind)):
        if value:
            where.append(f"search LIKE :{prefix} ESCAPE '\\'")
            params[prefix] = _like(_token(prefix, value))
    if f.verdict == "denied":
        where.append("search LIKE '% verdict:denied %'")
    elif f.verdict == "approved":
        where.append("search LIKE '% kind:%' AND search NOT LIKE '% verdict:denied %'")
    if f.text:
        where.append("(decision_id LIKE :text ESCAPE '\\' OR body LIKE :text ESCAPE '\\')")
        params["text"] = _like(f.text)
    return where, params


_RIGHTS = {"put": "P", "call": "C"}


def _marks(decision: dict[str, Any]) -> dict[tuple[str, str], float]:
    """(account, contract key) -> mark, from one decision's facts."""
    facts = decision.get("facts", {})
    prices = {s: u.get("price") for s, u in facts.get("market", {}).get("underlyings", {}).items()}
    out: dict[tuple[str, str], float] = {}
    for a in facts.get("accounts", ()):
        for p in a.get("positions", ()):
            if p["right"] == "stock":
                key, mark = p["symbol"], prices.get(p["symbol"])
            else:
                key = f"{p['symbol']} {p['expiry']} {float(p['strike']):g}{_RIGHTS[p['right']]}"
                mark = p.get("mark")
            if mark is not None:
                out[(a["id"], key)] = float(mark)
    return out


def _contract_fields(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": c["symbol"],
        "sec_type": c["sec_type"],
        "right": c.get("right"),
        "strike": c.get("strike"),
        "expiry": c.get("expiry"),
        "multiplier": int(c.get("multiplier") or 1),
    }


def _fill(b: dict[str, Any]) -> FillRow:
    return FillRow(
        execution_id=b["execution_id"],
        client_order_id=b["client_order_id"],
        account=b["account"],
        contract_key=_key(b["contract"]),
        side=b["side"],
        quantity=int(b["quantity"]),
        price=float(b["price"]),
        commission=float(b.get("commission", 0.0)),
        at=_when(b["at"]),
        origin=b.get("origin") or "order",
        **_contract_fields(b["contract"]),
    )


def _key(c: dict[str, Any]) -> str:
    return ContractSpec.model_validate(c).key


def _order(r: Any) -> OrderRow:
    req = json.loads(r[5])
    return OrderRow(
        client_order_id=r[0],
        decision_id=r[1],
        account=r[2],
        action_kind=r[3],
        purpose=r[4],
        side=req["side"],
        quantity=int(req["quantity"]),
        contract_key=_key(req["contract"]),
        limit_price=req.get("limit_price"),
        state=r[6],
        filled=int(r[7]),
        avg_fill_price=r[8],
        reason=r[9],
    )


def _position(r: Any) -> PositionRow:
    c = json.loads(r[2])
    return PositionRow(
        account=r[0],
        contract_key=r[1],
        quantity=int(r[3]),
        avg_price=float(r[4]),
        purpose=r[5],
        opened=r[6],
        **_contract_fields(c),
    )
