"""The decision log, pure part: audit record v1, hash chain, masking, chain verifier, record drafts.

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
``engine.records.chain.verify_chain`` runs over rows from any store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from hashlib import sha256
from json.encoder import encode_basestring  # the exact string encoder canonical_json uses
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from constitution.canonical import canonical_json
from constitution.errors import StopError
from engine.records import facts_text
from engine.records.decision import Action, Decision, Firing
from engine.records.masking import DEFAULT_MASKS, mask, mask_values

RECORD_VERSION = 1
GENESIS_HASH = "sha256:" + "0" * 64


class RunMode(StrEnum):
    """How the process that wrote a record was running."""

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


class CorruptRecord(StopError):
    """A stored record cannot be read (its body is not JSON, or not a record of its type):
    readers report it and exit 1 instead of failing with a traceback."""

    def __init__(self, seq: object, what: str):
        super().__init__(
            f"record #{seq} is corrupted: {what}; `alluse audit verify` says what changed"
        )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
        return cls(
            decision_id=decision_id,
            kind=kind,
            ref=ref or data.get("client_order_id", ""),
            data=data,
        )


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
    (
        seq,
        prev_hash,
        rtype,
        rversion,
        recorded_at,
        mode,
        decision_id,
        as_of,
        c_version,
        c_digest,
        search,
        body,
    ) = row[:12]
    return "".join(
        (
            '{"as_of":',
            _s(as_of),
            ',"body":',
            body,
            ',"constitution_digest":',
            _s(c_digest),
            ',"constitution_version":',
            _s(c_version),
            ',"decision_id":',
            encode_basestring(decision_id),
            ',"mode":',
            encode_basestring(mode),
            ',"prev_hash":',
            encode_basestring(prev_hash),
            ',"record_type":',
            encode_basestring(rtype),
            ',"record_version":',
            str(int(rversion)),
            ',"recorded_at":',
            encode_basestring(recorded_at),
            ',"search":',
            encode_basestring(search),
            ',"seq":',
            str(int(seq)),
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
    # isoformat, not strftime: ~40 % less time (~100,000 stamps in 33 years), and its year
    # has four digits below 1000 too. In UTC it ends "+00:00", written "Z" here.
    return at.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _normal_as_of(as_of: str) -> str:
    try:
        return utc_stamp(datetime.fromisoformat(as_of.replace("Z", "+00:00")))
    except ValueError:
        return as_of


def _token(prefix: str, value: str) -> str:
    return f"{prefix}:{'_'.join(value.split())}"


def search_keys(decision: Decision) -> str:
    """Space-delimited facets (``account:GEN rule:r kind:k``) the store filters on."""
    bound: tuple[Firing | Action, ...] = (*decision.fired, *decision.actions)
    tokens = {_token("account", x.account) for x in bound if x.account}
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
    mode: RunMode
    decision_id: str
    as_of: str | None
    constitution_version: str | None
    constitution_digest: str | None
    search: str
    body: str

    def seal(self, seq: int, prev_hash: str, recorded_at: datetime) -> StoredRow:
        fields = (
            seq,
            prev_hash,
            self.record_type.value,
            RECORD_VERSION,
            utc_stamp(recorded_at),
            self.mode.value,
            self.decision_id,
            self.as_of,
            self.constitution_version,
            self.constitution_digest,
            self.search,
            self.body,
        )
        return StoredRow(*fields, record_hash(fields))


def _masked(document: dict, masks: Iterable[str], secrets: Iterable[str]) -> tuple[dict, list[str]]:
    document, by_pointer = mask(document, masks)
    document, by_value = mask_values(document, secrets)
    return document, sorted(set(by_pointer) | set(by_value))


def draft_decision(
    decision: Decision,
    mode: RunMode,
    masks: Iterable[str] = DEFAULT_MASKS,
    secrets: Iterable[str] = (),
) -> Draft:
    return Draft(
        record_type=RecordType.DECISION,
        mode=RunMode(mode),
        decision_id=decision.decision_id,
        as_of=_normal_as_of(decision.as_of),
        constitution_version=decision.constitution.version,
        constitution_digest=decision.constitution.digest,
        search=search_keys(decision),
        body=_decision_body(decision, masks, secrets),
    )


_FACTS_SLOT = "\u0000facts\u0000"  # stands for the facts' text while the rest is encoded


def _decision_body(decision: Decision, masks: Iterable[str], secrets: Iterable[str]) -> str:
    """The record's JSON text: the decision, masked, and which paths were. The facts' text is
    the one made for their digest (``facts_text``) when nothing in them is masked."""
    text = facts_text.text_of(decision.facts_digest, decision.facts)
    if text is not None:
        head = decision.model_dump(mode="json", exclude={"facts"})
        document, masked = _masked({"decision": {**head, "facts": decision.facts}}, masks, secrets)
        if document["decision"]["facts"] is decision.facts:  # nothing in them masked
            document = {**document, "decision": {**document["decision"], "facts": _FACTS_SLOT}}
            body, slot = canonical_json({**document, "masked": masked}), canonical_json(_FACTS_SLOT)
            if body.count(slot) == 1:
                return body.replace(slot, text).decode("utf-8")
    document, masked = _masked({"decision": decision.model_dump(mode="json")}, masks, secrets)
    return canonical_json({**document, "masked": list(masked)}).decode("utf-8")


def draft_link(
    link: ExecutionLink,
    mode: RunMode,
    masks: Iterable[str] = DEFAULT_MASKS,
    secrets: Iterable[str] = (),
) -> Draft:
    document, masked = _masked(
        {"link": link.model_dump(mode="json", exclude={"decision_id"})}, masks, secrets
    )
    return Draft(
        record_type=RecordType.LINK,
        mode=RunMode(mode),
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
    mode: RunMode
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
        try:
            values["body"] = json.loads(values["body"])
            return cls.model_validate(values)
        except ValueError as exc:  # JSONDecodeError and ValidationError both are
            raise CorruptRecord(values.get("seq"), f"{_first_line(exc)}") from None

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
        try:
            return Decision.model_validate(self.body["decision"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise CorruptRecord(self.seq, f"not a decision ({_first_line(exc)})") from None

    @property
    def link(self) -> ExecutionLink | None:
        if self.record_type is not RecordType.LINK:
            return None
        try:
            return ExecutionLink(decision_id=self.decision_id, **self.body["link"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise CorruptRecord(self.seq, f"not an execution link ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
