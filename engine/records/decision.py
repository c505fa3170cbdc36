"""What one evaluation decided, and why: the engine's output, recorded before anything acts.

A ``Decision`` is pure data. Its JSON (``to_json``) is canonical, so the same facts under the
same constitution give byte-identical output in any process. The audit log wraps it in a
record with a sequence number, mode, hash chain and execution links (docs/decision-log.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from constitution.canonical import canonical_json, digest

DECISION_SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConstitutionRef(_Frozen):
    version: str
    digest: str


class Binding(_Frozen):
    """One condition of a fired rule, with the values that made it true."""

    text: str  # e.g. "market.vix=81.2 > params.vix.kill_switch=80"


class Firing(_Frozen):
    rule: str
    clause: str
    salience: int
    account: str | None = None
    symbol: str | None = None
    position: str | None = None
    bindings: tuple[str, ...] = ()


class Action(_Frozen):
    kind: str
    account: str | None = None
    symbol: str | None = None
    position: str | None = None
    rule: str
    clause: str
    salience: int
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str

    def sort_key(self) -> tuple:
        return (
            self.salience,
            self.rule,
            self.account or "",
            self.symbol or "",
            self.position or "",
            self.kind,
        )


class Verdict(_Frozen):
    """The risk guard's answer for one action (same index as in ``actions``)."""

    action: int
    approved: bool
    reasons: tuple[str, ...] = ()


class Superseded(_Frozen):
    """An action arbitration set aside: another rule's intent for the same position (or
    account-symbol entry) takes precedence (docs/decisions.md D40). Kept whole, so the record
    still explains everything the rules asked for."""

    action: Action
    target: str  # the position key, or ACCOUNT/SYMBOL for an entry
    winner: int  # index in Decision.actions of the intent that survived
    winner_rule: str
    reason: str  # e.g. "stop_loss (protocol.l3, §6) takes precedence over pin_risk (...)"


class Review(_Frozen):
    """What the risk review saw and what it concluded, recorded so replay re-runs it.

    ``guard`` is the guard's input (``engine.execution.risk.GuardState``: the ledger's mode and
    latch, the active-account count, whatever the guard reads beyond the facts) and ``limits``
    what it handed the planner (``engine.execution.risk.Limits``), both as JSON. This room may
    not import the execution room, so the typed values are (de)serialised there
    (``engine.cycle.pipeline``)."""

    guard: dict[str, Any]
    limits: dict[str, Any]


class Decision(_Frozen):
    schema_version: int = DECISION_SCHEMA_VERSION
    decision_id: str
    as_of: str
    constitution: ConstitutionRef
    facts_digest: str
    facts: dict[str, Any]
    derived: dict[str, Any]
    fired: tuple[Firing, ...]
    actions: tuple[Action, ...]
    verdicts: tuple[Verdict, ...] = ()
    superseded: tuple[Superseded, ...] = ()  # intents arbitration set aside (D40)
    review: Review | None = None  # None: no risk review (a dry run, ``alluse evaluate``)

    @model_serializer(mode="wrap")
    def _omit_nothing_superseded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A decision nothing was superseded in serialises exactly as before the field existed,
        # so recorded decisions replay and re-hash byte for byte.
        data: dict[str, Any] = handler(self)
        if not self.superseded:
            data.pop("superseded", None)
        return data

    def to_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


def decision_id_for(constitution_digest: str, facts_digest: str) -> str:
    """Deterministic: the same facts under the same constitution always get the same id."""
    return "d-" + digest([constitution_digest, facts_digest])[len("sha256:") :][:32]
