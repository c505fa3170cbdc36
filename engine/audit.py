"""The decision log, pure part: audit record v1, hash chain, masking, chain verifier, the port.

A record is one row of an append-only, hash-chained log (docs/decision-log.md). Two types:

* ``decision`` - a ``Decision`` exactly as the engine produced it (secrets masked), written
  BEFORE anything acts on it ("write before act").
* ``link``     - something execution did because of a decision (order sent, status, fill),
  appended later as its own record. Links never touch the decision record, so no hashed
  record is ever rewritten.

The hash of a record is ``sha256`` of the canonical JSON of the record without its ``hash``
field; the record contains ``prev_hash``, the hash of the record before it (``GENESIS_HASH``
for the first). Every stored column is part of the hashed record, so a changed byte anywhere in
a row breaks the chain at that row.

No I/O here: the storage adapter calls ``Draft.seal`` inside its write transaction, and
``verify_chain`` runs over rows from any store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from hashlib import sha256
from json.encoder import encode_basestring  # the exact string encoder canonical_json uses
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from constitution.canonical import canonical_json
from constitution.errors import StopError
from engine.decision import Decision

RECORD_VERSION = 1
GENESIS_HASH = "sha256:" + "0" * 64
MASK = "***"

# Body-relative JSON pointers masked by default (``*`` matches any key or index). Deployments
# add their own; a pointer that matches nothing masks nothing.
DEFAULT_MASKS: tuple[str, ...] = (
    "/decision/facts/accounts/*/broker_account",
    "/decision/facts/credentials",
    "/link/data/broker_account",
)


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"
    BACKTEST = "backtest"
    DRY_RUN = "dry-run"


class RecordType(StrEnum):
    DECISION = "decision"
    LINK = "link"


class UnknownDecision(StopError):
    """A link names a decision that is not in the log (execution must never act unlogged)."""


class DecisionConflict(StopError):
    """The same decision id was recorded before with different content."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- masking


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901 JSON pointer -> segments (``~1`` is ``/``, ``~0`` is ``~``)."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/"))


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def mask(document: Any, pointers: Iterable[str]) -> tuple[Any, tuple[str, ...]]:
    """Replace the values at ``pointers`` with ``MASK``; return (new document, concrete
    pointers masked, sorted). The input is not modified. ``*`` matches every key/index."""
    masked: list[str] = []
    for pointer in pointers:
        document = _mask_at(document, parse_pointer(pointer), "", masked)
    return document, tuple(sorted(set(masked)))


def _mask_at(node: Any, segments: tuple[str, ...], here: str, out: list[str]) -> Any:
    if not segments:
        out.append(here)
        return MASK
    head, rest = segments[0], segments[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        if not keys:
            return node
        copy = dict(node)
        for k in keys:
            copy[k] = _mask_at(node[k], rest, f"{here}/{_escape(k)}", out)
        return copy
    if isinstance(node, list):
        if head == "*":
            indexes = range(len(node))
        elif head.isdigit() and int(head) < len(node):
            indexes = [int(head)]
        else:
            return node
        copy = list(node)
        for i in indexes:
            copy[i] = _mask_at(node[i], rest, f"{here}/{i}", out)
        return copy
    return node


# --------------------------------------------------------------------------- records


class ExecutionLink(_Frozen):
    """Something execution did because of a decision. ``ref`` is the client order id."""

    decision_id: str
    kind: Literal["order", "status", "fill", "error", "note"]
    ref: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, decision_id: str, kind: str, value: BaseModel, ref: str = "") -> ExecutionLink:
        """From a broker value (OrderRequest, OrderStatus, Fill), keeping all its fields."""
        data = value.model_dump(mode="json")
        return cls(decision_id=decision_id, kind=kind, ref=ref or data.get("client_order_id", ""), data=data)


# Columns of a stored record, in storage order. All but ``hash`` are hashed.
COLUMNS: tuple[str, ...] = (
    "seq",
    "prev_hash",
    "record_type",
    "record_version",
    "recorded_at",
    "mode",
    "decision_id",
    "as_of",
    "constitution_version",
    "constitution_digest",
    "search",
    "body",
    "hash",
)


class StoredRow(NamedTuple):
    """One row as a store holds it (``body`` is canonical JSON text)."""

    seq: int
    prev_hash: str
    record_type: str
    record_version: int
    recorded_at: str
    mode: str
    decision_id: str
    as_of: str | None
    constitution_version: str | None
    constitution_digest: str | None
    search: str
    body: str
    hash: str


def preimage(row: Sequence) -> bytes:
    """The bytes a record's hash is taken over: canonical JSON of the row without ``hash``,
    with ``body`` embedded as JSON. Built by concatenation (no parsing) so verifying is fast;
    ``test_preimage_equals_canonical_json_of_record`` proves it equals ``canonical_json``.
    Keys in sorted order: as_of, body, constitution_digest, constitution_version,
    decision_id, mode, prev_hash, record_type, record_version, recorded_at, search, seq."""
    (seq, prev_hash, rtype, rversion, recorded_at, mode, decision_id, as_of, c_version, c_digest, search, body) = row[:12]
    return "".join(
        (
            '{"as_of":', _s(as_of),
            ',"body":', body,
            ',"constitution_digest":', _s(c_digest),
            ',"constitution_version":', _s(c_version),
            ',"decision_id":', encode_basestring(decision_id),
            ',"mode":', encode_basestring(mode),
            ',"prev_hash":', encode_basestring(prev_hash),
            ',"record_type":', encode_basestring(rtype),
            ',"record_version":', str(int(rversion)),
            ',"recorded_at":', encode_basestring(recorded_at),
            ',"search":', encode_basestring(search),
            ',"seq":', str(int(seq)),
            "}",
        )
    ).encode("utf-8")


def _s(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def record_hash(row: Sequence) -> str:
    return "sha256:" + sha256(preimage(row)).hexdigest()


def utc_stamp(at: datetime) -> str:
    """Fixed-width UTC text, so string order is time order (filters compare strings)."""
    if at.tzinfo is None:
        raise ValueError("audit timestamps need an aware datetime")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normal_as_of(as_of: str) -> str:
    try:
        return utc_stamp(datetime.fromisoformat(as_of.replace("Z", "+00:00")))
    except ValueError:
        return as_of


def _token(prefix: str, value: str) -> str:
    return f"{prefix}:{'_'.join(value.split())}"


def search_keys(decision: Decision) -> str:
    """Space-delimited facets (``account:GEN rule:r kind:k``) the store filters on."""
    tokens = {_token("account", x.account) for x in (*decision.fired, *decision.actions) if x.account}
    tokens |= {_token("rule", f.rule) for f in decision.fired}
    tokens |= {_token("kind", a.kind) for a in decision.actions}
    if any(not v.approved for v in decision.verdicts):
        tokens.add("verdict:denied")
    return f" {' '.join(sorted(tokens))} " if tokens else ""


@dataclass(frozen=True)
class Draft:
    """A record with everything but its place in the chain. Built outside the write lock;
    ``seal`` (inside the lock) adds seq, prev_hash, recorded_at and the hash."""

    record_type: RecordType
    mode: Mode
    decision_id: str
    as_of: str | None
    constitution_version: str | None
    constitution_digest: str | None
    search: str
    body: str

    def seal(self, seq: int, prev_hash: str, recorded_at: datetime) -> StoredRow:
        fields = (
            seq, prev_hash, self.record_type.value, RECORD_VERSION, utc_stamp(recorded_at),
            self.mode.value, self.decision_id, self.as_of, self.constitution_version,
            self.constitution_digest, self.search, self.body,
        )
        return StoredRow(*fields, record_hash(fields))


def draft_decision(decision: Decision, mode: Mode, masks: Iterable[str] = DEFAULT_MASKS) -> Draft:
    document, masked = mask({"decision": decision.model_dump(mode="json")}, masks)
    return Draft(
        record_type=RecordType.DECISION,
        mode=Mode(mode),
        decision_id=decision.decision_id,
        as_of=_normal_as_of(decision.as_of),
        constitution_version=decision.constitution.version,
        constitution_digest=decision.constitution.digest,
        search=search_keys(decision),
        body=canonical_json({**document, "masked": list(masked)}).decode("utf-8"),
    )


def draft_link(link: ExecutionLink, mode: Mode, masks: Iterable[str] = DEFAULT_MASKS) -> Draft:
    document, masked = mask({"link": link.model_dump(mode="json", exclude={"decision_id"})}, masks)
    return Draft(
        record_type=RecordType.LINK,
        mode=Mode(mode),
        decision_id=link.decision_id,
        as_of=None,
        constitution_version=None,
        constitution_digest=None,
        search=f" {_token('link', link.kind)} ",
        body=canonical_json({**document, "masked": list(masked)}).decode("utf-8"),
    )


class AuditRecord(_Frozen):
    """A stored record, parsed for reading (show, list, export, replay)."""

    seq: int
    prev_hash: str
    record_type: RecordType
    record_version: int
    recorded_at: str
    mode: Mode
    decision_id: str
    as_of: str | None
    constitution_version: str | None
    constitution_digest: str | None
    search: str
    body: dict[str, Any]
    hash: str

    @classmethod
    def from_row(cls, row: Sequence) -> AuditRecord:
        values = dict(zip(COLUMNS, row, strict=True))
        values["body"] = json.loads(values["body"])
        return cls.model_validate(values)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as exported: canonical JSON of this minus ``hash`` is the preimage."""
        return self.model_dump(mode="json")

    @property
    def masked(self) -> tuple[str, ...]:
        return tuple(self.body.get("masked", ()))

    @property
    def decision(self) -> Decision | None:
        if self.record_type is not RecordType.DECISION:
            return None
        return Decision.model_validate(self.body["decision"])

    @property
    def link(self) -> ExecutionLink | None:
        if self.record_type is not RecordType.LINK:
            return None
        return ExecutionLink(decision_id=self.decision_id, **self.body["link"])


# --------------------------------------------------------------------------- verification


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
            return VerifyReport(count=count, head_seq=expected_seq - 1, head_hash=prev, problem=problem, anchor_seq=anchor_seq)
        if row[12] == anchor:
            anchor_seq = row[0]
        count += 1
        expected_seq, prev = row[0] + 1, row[12]
    return VerifyReport(count=count, head_seq=expected_seq - 1, head_hash=prev, anchor_seq=anchor_seq)


def _check_row(row: Sequence, expected_seq: int, prev: str) -> ChainProblem | None:
    seq = row[0]
    if seq != expected_seq:
        # Report the number that is wrong: a missing record's own seq, not its successor's.
        if seq < expected_seq:
            return ChainProblem(seq=seq, code="out-of-order", message=f"seq {seq} comes after seq {expected_seq - 1}")
        if expected_seq == 1:
            return ChainProblem(seq=1, code="genesis", message=f"record 1 is missing: the log starts at seq {seq}")
        missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
        return ChainProblem(seq=expected_seq, code="gap", message=f"record {missing} is missing: seq {expected_seq - 1} is followed by {seq}")
    computed = "sha256:" + sha256(preimage(row)).hexdigest()
    if computed != row[12]:
        return ChainProblem(seq=seq, code="hash", message=f"content does not match its hash: stored {row[12]}, computed {computed} (record altered)")
    if row[1] != prev:
        return ChainProblem(seq=seq, code="prev-hash", message=f"prev_hash {row[1]} is not the hash of seq {seq - 1} ({prev}): a record before it was removed, replaced or reordered")
    if row[3] != RECORD_VERSION:
        return ChainProblem(seq=seq, code="record-version", message=f"unknown record_version {row[3]}")
    return None


# --------------------------------------------------------------------------- the port


class Receipt(_Frozen):
    """Proof the record is durably in the log: act only after you hold one."""

    seq: int
    hash: str
    decision_id: str
    created: bool  # False when the same decision was already recorded in this mode


class DecisionLog(Protocol):
    """What the pipeline calls. ``record`` returns only after the record is committed
    (durably), so the pipeline calls it BEFORE any broker call and acts on the receipt."""

    mode: Mode

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        """Append ``decision`` (and store ``constitution_text`` once per digest, so the
        decision can be replayed after the file is gone). Idempotent per (decision_id, mode):
        recording an identical decision again returns the first receipt."""

    def link(self, link: ExecutionLink) -> Receipt:
        """Append an execution link; raises ``UnknownDecision`` if the decision is not logged."""


class InMemoryDecisionLog:
    """A real chained log held in memory: for tests of the pipeline and for dry runs."""

    def __init__(self, mode: Mode, clock, masks: Iterable[str] = DEFAULT_MASKS):
        self.mode = Mode(mode)
        self._clock = clock
        self._masks = tuple(masks)
        self.rows: list[StoredRow] = []
        self.constitutions: dict[str, str] = {}
        self._decisions: dict[str, StoredRow] = {}  # decision_id -> its decision record

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        draft = draft_decision(decision, self.mode, self._masks)
        self.constitutions.setdefault(decision.constitution.digest, constitution_text)
        if draft.decision_id in self._decisions:
            return existing_receipt(self._decisions[draft.decision_id], draft)
        receipt, row = self._append(draft)
        self._decisions[draft.decision_id] = row
        return receipt

    def link(self, link: ExecutionLink) -> Receipt:
        if link.decision_id not in self._decisions:
            raise UnknownDecision(f"no decision {link.decision_id} in the log")
        return self._append(draft_link(link, self.mode, self._masks))[0]

    def _append(self, draft: Draft) -> tuple[Receipt, StoredRow]:
        seq = len(self.rows) + 1
        prev = self.rows[-1].hash if self.rows else GENESIS_HASH
        row = draft.seal(seq, prev, self._clock.now())
        self.rows.append(row)
        return Receipt(seq=seq, hash=row.hash, decision_id=row.decision_id, created=True), row


def existing_receipt(row: Sequence, draft: Draft) -> Receipt:
    """The receipt for a decision already logged, if it is the same decision."""
    if row[11] != draft.body:
        raise DecisionConflict(f"decision {draft.decision_id} was recorded at seq {row[0]} with different content")
    return Receipt(seq=row[0], hash=row[12], decision_id=draft.decision_id, created=False)


# --------------------------------------------------------------------------- replay


class ReplayResult(_Frozen):
    decision_id: str
    identical: bool
    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# Fields compared when facts were masked: the ids are digests of the (now masked) facts.
_ID_FIELDS = ("decision_id", "facts_digest")


def replay(
    record: AuditRecord,
    constitution_text: str,
    load: Callable[[str, str], Any],
    validate_facts: Callable[[dict], Any],
    evaluate: Callable[[Any, Any], Decision],
) -> ReplayResult:
    """Re-evaluate the stored facts under the stored constitution and compare.

    The new decision is masked with the same pointers before comparing, so masked values
    compare equal. When facts were masked, the ids (digests of the facts) cannot match and
    are left out of the comparison, with a note saying so."""
    stored = record.decision
    if stored is None:
        raise ValueError(f"record {record.seq} is a {record.record_type.value} record, not a decision")
    constitution = load(constitution_text, f"audit:{stored.constitution.digest}")
    fresh = evaluate(constitution, validate_facts(stored.facts))
    fresh_doc, _ = mask({"decision": fresh.model_dump(mode="json")}, record.masked)
    old, new = record.body["decision"], fresh_doc["decision"]
    facts_masked = any(p.startswith("/decision/facts") for p in record.masked)
    skip = _ID_FIELDS if facts_masked else ()
    diffs = tuple(d for key in sorted(set(old) | set(new)) if key not in skip for d in _diff(key, old.get(key), new.get(key)))
    notes = ("facts were masked: decision_id and facts_digest not compared",) if facts_masked else ()
    return ReplayResult(decision_id=stored.decision_id, identical=not diffs, differences=diffs, notes=notes)


def _diff(path: str, old: Any, new: Any) -> list[str]:
    """Readable differences between two JSON values, down to the first differing leaves."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new)) for d in _diff(f"{path}.{k}", old.get(k), new.get(k))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _diff(f"{path}[{i}]", a, b)]
    return [f"{path}: recorded {_short(old)}, replayed {_short(new)}"]


def _short(value: Any, limit: int = 200) -> str:
    text = canonical_json(value).decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."

