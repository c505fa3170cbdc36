"""The hash-chain verifier: walks stored rows from any store and names the first bad one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.records.audit import GENESIS_HASH, RECORD_VERSION, preimage


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChainProblem(_Frozen):
    seq: int
    code: Literal["genesis", "gap", "out-of-order", "prev-hash", "hash", "record-version", "anchor"]
    message: str


class VerifyReport(_Frozen):
    count: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None = None
    anchor_seq: int | None = None  # where the ``anchor`` hash was found, if one was given

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(rows: Iterable[Sequence], anchor: str | None = None) -> VerifyReport:
    """Walk rows in stored order; stop at the first bad record and say what is wrong.

    Detects a changed byte in any column (``hash``), a deleted row (``gap`` / ``genesis`` /
    ``prev-hash``), rows out of order. Records cut from the END leave a valid shorter chain:
    only a hash noted earlier (``anchor``, e.g. a past head) reveals that, as with any chain;
    ``anchor_seq`` says where the anchor was found (None: not in the log)."""
    expected_seq, prev, count, anchor_seq = 1, GENESIS_HASH, 0, None
    for row in rows:
        problem = _check_row(row, expected_seq, prev)
        if problem is not None:
            return VerifyReport(
                count=count,
                head_seq=expected_seq - 1,
                head_hash=prev,
                problem=problem,
                anchor_seq=anchor_seq,
            )
        if row[12] == anchor:
            anchor_seq = row[0]
        count += 1
        expected_seq, prev = row[0] + 1, row[12]
    return VerifyReport(
        count=count, head_seq=expected_seq - 1, head_hash=prev, anchor_seq=anchor_seq
    )


def _check_row(row: Sequence, expected_seq: int, prev: str) -> ChainProblem | None:
    seq = row[0]
    if seq != expected_seq:
        # Report the number that is wrong: a missing record's own seq, not its successor's.
        if seq < expected_seq:
            return ChainProblem(
                seq=seq,
                code="out-of-order",
                message=f"seq {seq} comes after seq {expected_seq - 1}",
            )
        if expected_seq == 1:
            return ChainProblem(
                seq=1, code="genesis", message=f"record 1 is missing: the log starts at seq {seq}"
            )
        missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
        return ChainProblem(
            seq=expected_seq,
            code="gap",
            message=f"record {missing} is missing: seq {expected_seq - 1} is followed by {seq}",
        )
    computed = "sha256:" + sha256(preimage(row)).hexdigest()
    if computed != row[12]:
        return ChainProblem(
            seq=seq,
            code="hash",
            message=f"content does not match its hash: stored {row[12]}, computed {computed} (record altered)",
        )
    if row[1] != prev:
        return ChainProblem(
            seq=seq,
            code="prev-hash",
            message=f"prev_hash {row[1]} is not the hash of seq {seq - 1} ({prev}): a record before it was removed, replaced or reordered",
        )
    if row[3] != RECORD_VERSION:
        return ChainProblem(
            seq=seq, code="record-version", message=f"unknown record_version {row[3]}"
        )
    return None
