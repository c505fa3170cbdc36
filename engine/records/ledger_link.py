"""The ledger's own hash chain, pure part: one link per applied ledger operation.

A link holds the operation's id and the digest of everything the ledger wrote for it (the
operation's kind, body and time, and every journal line: account, bucket, amount, memo), and
is chained to the link before it like an audit record (``prev_hash``; the first link follows
``GENESIS_HASH``). The store writes a link in the same transaction as its operation; the
signed checkpoint holds the ledger's head beside the audit log's, so a forged entry, a forged
operation, a cut or a re-chained ledger is found by ``alluse audit verify``
(docs/decision-log.md, "The ledger in the chain").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from constitution.canonical import canonical_json, digest
from engine.records.audit import GENESIS_HASH


class EntryLine(NamedTuple):
    """One journal line as stored (``ledger_entry``)."""

    line: int
    account: str
    bucket: str
    amount: int
    memo: str


class LedgerLink(NamedTuple):
    """One row of ``ledger_link``."""

    seq: int
    op_id: str
    prev_hash: str
    digest: str
    hash: str


def op_digest(op_id: str, kind: str, body: str, at: str, entries: Iterable[EntryLine]) -> str:
    """``sha256:`` over the operation row and its journal lines, in line order."""
    lines = sorted(tuple(e) for e in entries)
    return digest({"op_id": op_id, "kind": kind, "body": body, "at": at, "entries": lines})


def link_hash(seq: int, prev_hash: str, op_id: str, op_digest_: str) -> str:
    fields = {"seq": seq, "prev_hash": prev_hash, "op_id": op_id, "digest": op_digest_}
    return "sha256:" + sha256(canonical_json(fields)).hexdigest()


def next_link(head: LedgerLink | None, op_id: str, op_digest_: str) -> LedgerLink:
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    return LedgerLink(seq, op_id, prev, op_digest_, link_hash(seq, prev, op_id, op_digest_))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LedgerProblem(_Frozen):
    code: Literal[
        "gap", "prev-hash", "hash", "digest", "unchained", "orphan-entry", "missing-op", "state"
    ]
    message: str
    seq: int | None = None
    op_id: str | None = None


class LedgerReport(_Frozen):
    operations: int
    entries: int
    head_seq: int
    head_hash: str
    problem: LedgerProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def walk_links(links: Iterable[Sequence]) -> tuple[list[LedgerLink], LedgerProblem | None]:
    """The links in order, up to the first whose place in the chain is wrong."""
    good: list[LedgerLink] = []
    prev, expected = GENESIS_HASH, 1
    for row in links:
        link = LedgerLink(*row)
        problem = _link_problem(link, expected, prev)
        if problem is not None:
            return good, problem
        good.append(link)
        prev, expected = link.hash, link.seq + 1
    return good, None


def _link_problem(link: LedgerLink, expected: int, prev: str) -> LedgerProblem | None:
    if link.seq != expected:
        return LedgerProblem(
            code="gap",
            seq=expected,
            message=f"ledger link {expected} is missing (the next is {link.seq})",
        )
    if link.hash != link_hash(link.seq, link.prev_hash, link.op_id, link.digest):
        return LedgerProblem(
            code="hash",
            seq=link.seq,
            op_id=link.op_id,
            message=f"ledger link {link.seq} does not match its hash (link altered)",
        )
    if link.prev_hash != prev:
        return LedgerProblem(
            code="prev-hash",
            seq=link.seq,
            op_id=link.op_id,
            message=f"ledger link {link.seq} does not follow link {link.seq - 1}: removed, replaced or reordered",
        )
    return None
