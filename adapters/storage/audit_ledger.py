"""The ledger's hash chain on a database (component ``ledger_chain``): ``ledger_link``.

One row per applied ledger operation, written by ``SqlLedgerStore.apply`` in the same
transaction as the operation and its journal lines (``chain_ops``); append-only like the audit
log. The pure part (digests, hashes, the walk) is ``engine.records.ledger_link``; checking the
ledger against it is ``adapters.storage.audit_ledger_check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection

from adapters.storage.audit_schema import PG_APPEND_ONLY_FUNCTION, append_only_triggers
from adapters.storage.migrations import Migration, register
from engine.records.ledger_link import EntryLine, LedgerLink, next_link, op_digest

COMPONENT = "ledger_chain"
TABLE = "ledger_link"

_TABLE = (
    "CREATE TABLE ledger_link (seq {seq} PRIMARY KEY, op_id TEXT NOT NULL UNIQUE,"
    " prev_hash TEXT NOT NULL UNIQUE, digest TEXT NOT NULL, hash TEXT NOT NULL UNIQUE)"
)

V1 = Migration(
    component=COMPONENT,
    version=1,
    description="ledger_link: the ledger's hash chain, append-only",
    sqlite=(_TABLE.format(seq="INTEGER"), *append_only_triggers("sqlite", TABLE)),
    postgresql=(
        _TABLE.format(seq="BIGINT"),
        PG_APPEND_ONLY_FUNCTION,
        *append_only_triggers("postgresql", TABLE),
    ),
)
register(V1)

COLUMNS = "seq, op_id, prev_hash, digest, hash"
_HEAD = text(f"SELECT {COLUMNS} FROM ledger_link ORDER BY seq DESC LIMIT 1")
_INSERT = text(
    "INSERT INTO ledger_link (seq, op_id, prev_hash, digest, hash)"
    " VALUES (:seq, :op_id, :prev_hash, :digest, :hash)"
)


class _Entry(Protocol):
    """What ``chain_ops`` reads of a journal line (``engine.execution.ledger.Entry``, frozen)."""

    @property
    def account(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def memo(self) -> str: ...


def chain_ops(
    conn: Connection, ops: Sequence[tuple[str, str, str, Iterable[_Entry]]], at: str
) -> list[LedgerLink]:
    """Link each ``(op_id, kind, body, entries)`` onto the chain, inside the caller's write
    transaction (the one that writes the operations), so an operation is never unlinked."""
    if not ops:
        return []
    row = conn.execute(_HEAD).first()
    head = LedgerLink(*row) if row else None
    links = []
    for op_id, kind, body, entries in ops:
        lines = [EntryLine(n, e.account, e.bucket, e.amount, e.memo) for n, e in enumerate(entries)]
        head = next_link(head, op_id, op_digest(op_id, kind, body, at, lines))
        links.append(head)
    conn.execute(_INSERT, [link._asdict() for link in links])
    return links
