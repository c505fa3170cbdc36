"""Checking the ledger against its hash chain (``alluse audit verify``).

Four checks, stopping at the first problem:

1. the links form a chain (``engine.records.ledger_link.walk_links``);
2. every link's operation is in ``ledger_op`` and its digest matches the operation row and its
   journal lines (a forged, altered or removed journal line, even a balanced one, breaks it);
3. every operation and every journal line belongs to a link (nothing written beside the chain);
4. the ledger's current-state tables (accounts, positions, orders, mode, balances) equal the
   state the chained operations produce when applied in order with the pure
   ``engine.execution.ledger.apply``: a forged position or account row is found here.

The chain's head goes into the signed checkpoint, which is what catches a ledger cut short or
re-chained as a whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from adapters.storage.audit_ledger import COLUMNS, TABLE
from adapters.storage.database import read_connection
from adapters.storage.ledger_store import SqlLedgerStore
from constitution.errors import StopError
from engine.execution.ledger import LedgerOp, LedgerState, apply
from engine.records.audit import GENESIS_HASH
from engine.records.ledger_link import (
    EntryLine,
    LedgerLink,
    LedgerProblem,
    LedgerReport,
    op_digest,
    walk_links,
)

_OP_TYPES: dict[str, TypeAdapter[Any]] = {
    cls.__name__: TypeAdapter(cls) for cls in get_args(LedgerOp)
}


@dataclass(frozen=True)
class _Snapshot:
    links: list[tuple]
    ops: dict[str, tuple[str, str, str]]  # op_id -> (kind, body, at)
    entries: dict[str, list[EntryLine]]  # op_id -> its journal lines


def verify_ledger(engine: Engine) -> LedgerReport | None:
    """The ledger's report, or None when the database has no ledger (a dry-run log)."""
    snapshot = _read(engine)
    if snapshot is None:
        return None
    state = SqlLedgerStore(engine).state
    for _ in range(2):  # a writer committed between the two reads: read both again
        if state.applied == frozenset(snapshot.ops):
            break
        snapshot = _read(engine) or snapshot
        state = SqlLedgerStore(engine).state
    return _check(snapshot, state)


def _read(engine: Engine) -> _Snapshot | None:
    with read_connection(engine, "reading the ledger's chain") as conn:
        tables = set(inspect(conn).get_table_names())
        if "ledger_op" not in tables:
            return None
        links = (
            _rows(conn, f"SELECT {COLUMNS} FROM {TABLE} ORDER BY seq") if TABLE in tables else []
        )
        ops = {
            r[0]: (r[1], r[2], r[3])
            for r in _rows(conn, "SELECT op_id, kind, body, at FROM ledger_op")
        }
        entries: dict[str, list[EntryLine]] = defaultdict(list)
        for r in _rows(conn, "SELECT op_id, line, account, bucket, amount, memo FROM ledger_entry"):
            entries[r[0]].append(EntryLine(int(r[1]), r[2], r[3], int(r[4]), r[5]))
    return _Snapshot(links, ops, dict(entries))


def _rows(conn: Connection, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(sql))]


def _check(s: _Snapshot, state: LedgerState) -> LedgerReport:
    links, problem = walk_links(s.links)
    problem = (
        problem
        or _links_match(links, s)
        or _nothing_beside(links, s)
        or _state_matches(links, s, state)
    )
    head = links[-1] if links else None
    return LedgerReport(
        operations=len(s.ops),
        entries=sum(len(v) for v in s.entries.values()),
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else GENESIS_HASH,
        problem=problem,
    )


def _links_match(links: list[LedgerLink], s: _Snapshot) -> LedgerProblem | None:
    for link in links:
        op = s.ops.get(link.op_id)
        if op is None:
            return LedgerProblem(
                code="missing-op",
                seq=link.seq,
                op_id=link.op_id,
                message=f"ledger operation {link.op_id} (link {link.seq}) is missing from ledger_op",
            )
        if op_digest(link.op_id, *op, s.entries.get(link.op_id, ())) != link.digest:
            return LedgerProblem(
                code="digest",
                seq=link.seq,
                op_id=link.op_id,
                message=f"ledger operation {link.op_id} or its journal lines differ from what was chained at link {link.seq} (altered or forged entry)",
            )
    return None


def _nothing_beside(links: list[LedgerLink], s: _Snapshot) -> LedgerProblem | None:
    linked = {link.op_id for link in links}
    unchained = sorted(set(s.ops) - linked)
    if unchained:
        return LedgerProblem(
            code="unchained",
            op_id=unchained[0],
            message=f"{len(unchained)} ledger operation(s) are not in the chain, first {unchained[0]}: written beside the ledger store (forged?)",
        )
    orphans = sorted(set(s.entries) - set(s.ops))
    if orphans:
        return LedgerProblem(
            code="orphan-entry",
            op_id=orphans[0],
            message=f"journal lines of operation {orphans[0]}, which is not in the ledger (forged entry)",
        )
    return None


def _state_matches(
    links: list[LedgerLink], s: _Snapshot, stored: LedgerState
) -> LedgerProblem | None:
    state = LedgerState()
    for link in links:
        kind, body, _ = s.ops[link.op_id]
        try:
            state = apply(state, _OP_TYPES[kind].validate_python(json.loads(body))).state
        except (KeyError, ValueError, ValidationError, StopError) as exc:
            return LedgerProblem(
                code="state",
                seq=link.seq,
                op_id=link.op_id,
                message=f"ledger operation {link.op_id} ({kind}) cannot be applied again: {exc}",
            )
    where = _first_difference(state, stored)
    if where is None:
        return None
    return LedgerProblem(
        code="state",
        message=f"the ledger's tables disagree with its chained operations at {where} (a current-state row was altered)",
    )


def _first_difference(derived: LedgerState, stored: LedgerState) -> str | None:
    for f in fields(LedgerState):
        a, b = getattr(derived, f.name), getattr(stored, f.name)
        if a == b:
            continue
        if hasattr(a, "keys") and hasattr(b, "keys"):
            key = min((k for k in set(a) | set(b) if a.get(k) != b.get(k)), key=repr)
            return f"{f.name}[{key!r}]: tables {b.get(key)!r}, operations {a.get(key)!r}"
        return f"{f.name}: tables {b!r}, operations {a!r}"
    return None
