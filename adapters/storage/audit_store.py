"""The decision log on a database: append (write before act), links, reads, verification.

Appending computes the chain INSIDE a serialised write transaction (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL ``LOCK TABLE``): read the head, seal the record onto it, insert,
commit. ``synchronous=FULL`` makes the commit durable before ``record`` returns, so a
``Receipt`` in hand means the decision survives a crash or power cut.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import bindparam, column, inspect, select, table, text
from sqlalchemy.engine import Connection, Engine, make_url

from adapters.storage import audit_schema
from adapters.storage.checkpoints import Checkpointer, checkpointer_for
from adapters.storage.database import (
    create_db_engine,
    display_url,
    read_connection,
    resolve_url,
    sqlite_file_missing,
    write_transaction,
)
from adapters.storage.errors import StorageError
from adapters.storage.migrations import migrate
from engine.clock import Clock
from engine.records.audit import (
    COLUMNS,
    GENESIS_HASH,
    AuditRecord,
    Draft,
    ExecutionLink,
    RecordType,
    RunMode,
    StoredRow,
    UnknownDecision,
    draft_decision,
    draft_link,
    utc_stamp,
)
from engine.records.chain import VerifyReport, verify_chain
from engine.records.checkpoint import Checkpoint
from engine.records.decision import Decision
from engine.records.log import Receipt, existing_receipt
from engine.records.masking import DEFAULT_MASKS

_RECORDS = table("audit_record", *(column(c) for c in COLUMNS))
_SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM audit_record"
_INSERT = text(
    f"INSERT INTO audit_record ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
)
_HEAD = text("SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1")
_SAME_DECISION = text(
    f"{_SELECT_ALL} WHERE decision_id = :d AND record_type = 'decision' AND mode = :m ORDER BY seq LIMIT 1"
)
_SAME_DECISIONS = text(
    f"{_SELECT_ALL} WHERE decision_id IN :ids AND record_type = 'decision' AND mode = :m ORDER BY seq"
).bindparams(bindparam("ids", expanding=True))
# Written inside the same transaction as a new record (the alert outbox, approvals): what the
# record says happened and what must follow from it commit together or not at all.
Alongside = Callable[[Connection], None]

_ANY_DECISION = text(
    "SELECT 1 FROM audit_record WHERE decision_id = :d AND record_type = 'decision' LIMIT 1"
)


@dataclass(frozen=True)
class AuditQuery:
    """Filters of ``alluse audit list``; ``since``/``until`` compare the decision's as_of."""

    since: datetime | None = None
    until: datetime | None = None
    account: str | None = None
    rule: str | None = None
    kind: str | None = None
    mode: RunMode | None = None
    record_type: str | None = "decision"
    limit: int | None = 50


class AuditStore:
    """The audit tables of one database. Safe to share between threads; many processes may
    append to the same database at once."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        masks: Iterable[str] = DEFAULT_MASKS,
        secrets: Iterable[str] = (),
    ):
        self.engine = engine
        self.clock = clock
        self.masks = tuple(masks)
        self.secrets = tuple(secrets)  # masked by value wherever they appear (IB account codes)
        self._stored_digests: set[str] = set()
        self._checkpointer: Checkpointer | None | Literal[False] = False  # False: not built yet
        self._held_back: Callable[[], None] | None = None  # a batched log's flush (D211)

    def holds_back(self, flush: Callable[[], None]) -> None:
        """A log writing through this store keeps records back (a backtest's batched cycles,
        D211): every other append, checkpoint, read and close here calls its ``flush`` first,
        so the chain keeps the order things happened in and a reader sees them all."""
        self._held_back = flush

    def _settle(self) -> None:
        if self._held_back is not None:
            self._held_back()

    @classmethod
    def open(
        cls,
        url: str | None,
        clock: Clock,
        masks: Iterable[str] = DEFAULT_MASKS,
        *,
        create: bool = True,
        **engine_options: Any,
    ) -> AuditStore:
        """Connect (resolving ``url`` as ``--db``/``ALLUSE_DB``/default) and migrate.
        ``create=False`` (readers) changes nothing: it refuses a SQLite file that does not
        exist and a database that holds no ALL-USE audit log, and never migrates."""
        resolved = resolve_url(url)
        if create:
            engine = create_db_engine(resolved, **engine_options)
            migrate(engine, [audit_schema.COMPONENT])
            return cls(engine, clock, masks)
        missing = sqlite_file_missing(resolved)
        if missing is not None:
            raise StorageError(f"no audit log at {missing} (use --db URL or set ALLUSE_DB)")
        require_audit_log(resolved)
        engine = create_db_engine(resolved, **engine_options)
        if not _has_audit_tables(engine):
            engine.dispose()
            raise _not_an_audit_log(resolved)
        return cls(engine, clock, masks)

    def close(self) -> None:
        self._settle()
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def append_decision(
        self,
        decision: Decision,
        mode: RunMode,
        constitution_text: str,
        *,
        alongside: Alongside | None = None,
    ) -> Receipt:
        """Append ``decision``; ``alongside(conn)`` runs in the same transaction when the
        record is new (a decision recorded before already has what came with it)."""
        self._settle()
        draft = draft_decision(decision, mode, self.masks, self.secrets)  # outside the lock
        with write_transaction(
            self.engine, "audit_record", f"recording decision {decision.decision_id}"
        ) as conn:
            same = conn.execute(
                _SAME_DECISION, {"d": draft.decision_id, "m": draft.mode.value}
            ).first()
            if same is not None:
                return existing_receipt(same, draft)
            self._put_constitution(
                conn, decision.constitution.digest, decision.constitution.version, constitution_text
            )
            row = self._append(conn, draft)
            if alongside is not None:
                alongside(conn)
        self._stored_digests.add(decision.constitution.digest)
        return Receipt(seq=row.seq, hash=row.hash, decision_id=row.decision_id, created=True)

    def append_decisions(
        self, decisions: Sequence[Decision], mode: RunMode, constitution_texts: Mapping[str, str]
    ) -> list[Receipt]:
        """Many decisions in ONE durable commit (backtests, imports): the fsync that bounds
        single appends is paid once. ``constitution_texts`` maps digest -> source text."""
        self._settle()
        drafts = [draft_decision(d, mode, self.masks, self.secrets) for d in decisions]
        where = f"recording {len(drafts)} decisions"
        with write_transaction(self.engine, "audit_record", where) as conn:
            known = self._existing(conn, drafts, RunMode(mode))
            for d in {d.constitution.digest: d for d in decisions}.values():
                self._put_constitution(
                    conn,
                    d.constitution.digest,
                    d.constitution.version,
                    constitution_texts[d.constitution.digest],
                )
            receipts, rows = self._seal_batch(conn, drafts, known)
            if rows:
                conn.execute(_INSERT, [r._asdict() for r in rows])
        self._stored_digests.update(d.constitution.digest for d in decisions)
        return receipts

    def _existing(
        self, conn: Connection, drafts: list[Draft], mode: RunMode
    ) -> dict[str, Sequence]:
        ids = sorted({d.decision_id for d in drafts})
        found: dict[str, Sequence] = {}
        for start in range(0, len(ids), 500):  # stay under every driver's parameter limit
            rows = conn.execute(_SAME_DECISIONS, {"ids": ids[start : start + 500], "m": mode.value})
            for row in rows:
                found.setdefault(row[6], row)
        return found

    def _seal_batch(
        self, conn: Connection, drafts: list[Draft], known: dict[str, Sequence]
    ) -> tuple[list[Receipt], list[StoredRow]]:
        head = conn.execute(_HEAD).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
        now = self.clock.now()
        receipts: list[Receipt] = []
        rows: list[StoredRow] = []
        for draft in drafts:
            if draft.decision_id in known:
                receipts.append(existing_receipt(known[draft.decision_id], draft))
                continue
            seq += 1
            row = draft.seal(seq, prev, now)
            prev = row.hash
            known[draft.decision_id] = row
            rows.append(row)
            receipts.append(
                Receipt(seq=seq, hash=row.hash, decision_id=row.decision_id, created=True)
            )
        return receipts, rows

    def append_link(
        self, link: ExecutionLink, mode: RunMode, *, alongside: Alongside | None = None
    ) -> Receipt:
        """Append ``link``; ``alongside(conn)`` runs in the same transaction."""
        self._settle()
        draft = draft_link(link, mode, self.masks, self.secrets)
        with write_transaction(
            self.engine, "audit_record", f"recording a {link.kind} link of {link.decision_id}"
        ) as conn:
            if conn.execute(_ANY_DECISION, {"d": link.decision_id}).first() is None:
                raise UnknownDecision(
                    f"no decision {link.decision_id} in the log: execution must follow a recorded decision"
                )
            row = self._append(conn, draft)
            if alongside is not None:
                alongside(conn)
        return Receipt(seq=row.seq, hash=row.hash, decision_id=row.decision_id, created=True)

    # ------------------------------------------------------------------ one cycle at a time
    # (issue 18) A backtest's cycle keeps its records and writes them in one transaction when
    # the cycle ends (scheduler/batched_log.py, docs/decisions.md D93).

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (0, GENESIS_HASH) for an empty log."""
        with read_connection(self.engine, "reading the audit chain head") as conn:
            row = conn.execute(_HEAD).first()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    def recorded(self, decision_id: str, mode: RunMode) -> StoredRow | None:
        """The decision record of ``decision_id`` in ``mode``, if there is one."""
        with read_connection(self.engine, f"looking up decision {decision_id}") as conn:
            row = conn.execute(_SAME_DECISION, {"d": decision_id, "m": RunMode(mode).value}).first()
        return StoredRow(*row) if row is not None else None

    def append_drafts(
        self,
        drafts: Sequence[tuple[Draft, datetime]],
        mode: RunMode,
        constitutions: Mapping[str, tuple[str, str]],
        alongside: Alongside | None = None,
    ) -> list[StoredRow]:
        """``drafts`` (decisions and links, in order, each with the time it was made) sealed
        after the head and written in ONE transaction, with the constitution texts they name
        (digest -> (version, text)) and whatever ``alongside`` writes on the same connection
        (a backtest's ledger, D180). A decision already in the log refuses the whole batch:
        nothing is written."""
        where = f"recording {len(drafts)} records"
        with write_transaction(self.engine, "audit_record", where) as conn:
            if self._any_recorded(conn, [d for d, _ in drafts], RunMode(mode)):
                raise StorageError("a decision of this batch is already in the log")
            for digest, (version, source) in constitutions.items():
                self._put_constitution(conn, digest, version, source)
            head = conn.execute(_HEAD).first()
            seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
            rows = []
            for draft, made_at in drafts:
                seq += 1
                rows.append(draft.seal(seq, prev, made_at))
                prev = rows[-1].hash
            if rows:
                conn.execute(_INSERT, [r._asdict() for r in rows])
            if alongside is not None:
                alongside(conn)
        self._stored_digests.update(constitutions)
        return rows

    def _any_recorded(self, conn: Connection, drafts: Sequence[Draft], mode: RunMode) -> bool:
        decisions = [d for d in drafts if d.record_type is RecordType.DECISION]
        if len(decisions) == 1:  # one cycle: one plain lookup, no expanding IN list
            args = {"d": decisions[0].decision_id, "m": mode.value}
            return conn.execute(_SAME_DECISION, args).first() is not None
        return bool(decisions) and bool(self._existing(conn, decisions, mode))

    def _append(self, conn: Connection, draft: Draft) -> StoredRow:
        head = conn.execute(_HEAD).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        row = draft.seal(seq, prev, self.clock.now())
        conn.execute(_INSERT, row._asdict())
        return row

    def _put_constitution(self, conn: Connection, digest: str, version: str, source: str) -> None:
        if digest in self._stored_digests:
            return
        found = conn.execute(
            text("SELECT 1 FROM constitution_text WHERE digest = :d"), {"d": digest}
        ).first()
        if found is None:
            conn.execute(
                text(
                    "INSERT INTO constitution_text (digest, version, text, stored_at) VALUES (:d, :v, :t, :s)"
                ),
                {"d": digest, "v": version, "t": source, "s": utc_stamp(self.clock.now())},
            )

    def checkpoint(self, constitution_digest: str, final: bool = False) -> Checkpoint | None:
        """Write the signed checkpoint (outside the database) if a head moved since the last;
        ``final``: the writer is finishing (shutdown, the end of a backtest)."""
        self._settle()
        checkpointer = self._the_checkpointer()
        if checkpointer is None:
            return None  # an in-memory database: nothing outlives the process anyway
        return checkpointer.write(self.clock.now(), constitution_digest, final)

    def checkpoint_due(self) -> bool:
        """Whether ``checkpoint`` now would read the heads (a backtest: once per week, D72)."""
        checkpointer = self._the_checkpointer()
        return checkpointer is not None and checkpointer.due(self.clock.now())

    def _the_checkpointer(self) -> Checkpointer | None:
        if self._checkpointer is False:
            self._checkpointer = checkpointer_for(self.engine)
        return self._checkpointer

    # ------------------------------------------------------------------ reading

    def rows(self) -> Generator[StoredRow, None, None]:
        """Every row in seq order, streamed (a server-side cursor on PostgreSQL)."""
        self._settle()
        with read_connection(self.engine, "reading the audit log") as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).exec_driver_sql(
                f"{_SELECT_ALL} ORDER BY seq"
            )
            for row in result:
                yield StoredRow(*row)

    def verify(self, anchor: str | None = None) -> VerifyReport:
        rows = self.rows()
        try:
            return verify_chain(rows, anchor)
        finally:
            rows.close()  # verify may stop at the first problem: release the connection now

    def count(self) -> int:
        self._settle()
        with read_connection(self.engine, "counting audit records") as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM audit_record")).scalar_one())

    def get(self, seq: int) -> AuditRecord | None:
        self._settle()
        with read_connection(self.engine, f"reading record {seq}") as conn:
            row = conn.execute(text(f"{_SELECT_ALL} WHERE seq = :s"), {"s": seq}).first()
        return AuditRecord.from_row(row) if row else None

    def for_decision(self, decision_id: str) -> list[AuditRecord]:
        """The decision's records (one per mode it was recorded in) and its links, in order."""
        self._settle()
        with read_connection(self.engine, f"reading decision {decision_id}") as conn:
            rows = conn.execute(
                text(f"{_SELECT_ALL} WHERE decision_id = :d ORDER BY seq"), {"d": decision_id}
            ).all()
        return [AuditRecord.from_row(r) for r in rows]

    def query(self, q: AuditQuery) -> list[AuditRecord]:
        """Matching records, the most recent ``limit``, oldest first."""
        self._settle()
        stmt = select(*(_RECORDS.c[c] for c in COLUMNS))
        for condition in _conditions(q):
            stmt = stmt.where(condition)
        stmt = stmt.order_by(_RECORDS.c.seq.desc())
        if q.limit:
            stmt = stmt.limit(q.limit)
        with read_connection(self.engine, "listing audit records") as conn:
            rows = conn.execute(stmt).all()
        return [AuditRecord.from_row(r) for r in reversed(rows)]

    def iter_records(self, q: AuditQuery) -> Iterator[AuditRecord]:
        """Matching records oldest first, streamed (export)."""
        self._settle()
        stmt = select(*(_RECORDS.c[c] for c in COLUMNS))
        for condition in _conditions(q):
            stmt = stmt.where(condition)
        with read_connection(self.engine, "exporting audit records") as conn:
            for row in conn.execution_options(stream_results=True, yield_per=1000).execute(
                stmt.order_by(_RECORDS.c.seq)
            ):
                yield AuditRecord.from_row(row)

    def constitution_text(self, digest: str) -> str | None:
        with read_connection(self.engine, f"reading constitution {digest}") as conn:
            return conn.execute(
                text("SELECT text FROM constitution_text WHERE digest = :d"), {"d": digest}
            ).scalar()


def _not_an_audit_log(url: str) -> StorageError:
    return StorageError(
        f"{display_url(url)} is not an ALL-USE database (it holds no audit log); nothing was changed"
    )


def require_audit_log(url: str) -> None:
    """A SQLite file is looked at read-only, with nothing set on it, before it is opened as a
    database of ours: a reader must not change a file that is not ALL-USE's (not even its
    journal mode)."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return
    if parsed.database.startswith("file:"):
        return
    try:
        conn = sqlite3.connect(f"file:{quote(parsed.database)}?mode=ro", uri=True)
        try:
            names = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{parsed.database} is not an ALL-USE database ({exc}); nothing was changed"
        ) from None
    if not _AUDIT_TABLES <= names:
        raise _not_an_audit_log(url)


_AUDIT_TABLES = {"schema_version", "audit_record", "constitution_text"}


def _has_audit_tables(engine: Engine) -> bool:
    with read_connection(engine, "opening the audit log") as conn:
        names = set(inspect(conn).get_table_names())
        if not _AUDIT_TABLES <= names:
            return False
        return bool(
            conn.execute(text("SELECT 1 FROM schema_version WHERE component = 'audit'")).first()
        )


def _conditions(q: AuditQuery) -> list:
    c = _RECORDS.c
    out = []
    if q.record_type:
        out.append(c.record_type == q.record_type)
    if q.mode:
        out.append(c.mode == RunMode(q.mode).value)
    if q.since:
        out.append(c.as_of >= utc_stamp(_aware(q.since)))
    if q.until:
        out.append(c.as_of < utc_stamp(_aware(q.until)))
    for prefix, value in (("account", q.account), ("rule", q.rule), ("kind", q.kind)):
        if value:
            token = f"{prefix}:{'_'.join(value.split())}"
            out.append(c.search.contains(f" {token} ", autoescape=True))
    return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class SqlDecisionLog:
    """The ``engine.records.audit.DecisionLog`` port on an ``AuditStore``, bound to one mode."""

    def __init__(self, store: AuditStore, mode: RunMode):
        self.store = store
        self.mode = RunMode(mode)

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        return self.store.append_decision(decision, self.mode, constitution_text)

    def link(self, link: ExecutionLink) -> Receipt:
        return self.store.append_link(link, self.mode)

    def checkpoint(self, constitution_digest: str) -> None:
        self.store.checkpoint(constitution_digest)

    def close(self) -> None:
        self.store.close()


def open_decision_log(
    url: str | None,
    mode: RunMode,
    clock: Clock,
    masks: Iterable[str] = DEFAULT_MASKS,
    secrets: Iterable[str] = (),
) -> SqlDecisionLog:
    """What the composition root calls: ``open_decision_log(args.db, RunMode.PAPER, WallClock())``.
    ``secrets`` (a live run's IB account codes) are masked by value in every record."""
    store = AuditStore.open(url, clock, masks)
    store.secrets = tuple(secrets)
    return SqlDecisionLog(store, mode)
