"""Two evaluators that must agree: the compiled path decides, durable-rules shadows it.

``decide_both`` evaluates the same facts with both (the facts' JSON and digest made once) and
compares the two decisions byte for byte (``Decision.to_json``). Agreement returns the
compiled decision. A ``Disagreement`` keeps both results and names the first place they
differ; what a trading cycle does with one is ``engine.cycle.trading``'s separate step
(``refuse``): nothing new is traded, the cycle is SAFE, an alert is raised, and both results
go to the audit log (docs/decisions.md D91).

A shadow that gives no result - durable-rules' ``EngineFailure`` in this process, or a
``ShadowFailed`` from a shadow running elsewhere (paper and live run durable-rules in a child
process, ``adapters.shadow_process``: it crashed, timed out or failed) - is a disagreement
too, with no durable decision and the ``ShadowFailure`` saying what happened (D200). It never
stops the cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from constitution.load import LoadedConstitution
from engine.facts.model import Facts
from engine.records.decision import Action, Decision
from engine.rules.durable import EngineFailure
from engine.rules.evaluate import evaluate
from engine.rules.explained import facts_identity

Evaluate = Callable[..., Decision]

FailureKind = Literal["crash", "timeout", "engine_failure", "error"]


@dataclass(frozen=True)
class ShadowFailure:
    """Why the shadow gave no decision: ``crash`` (its process died: ``exit_code``, ``signal``),
    ``timeout`` (no answer within ``seconds``), ``engine_failure`` (durable-rules'
    ``EngineFailure``) or ``error`` (anything else the shadow reported). ``detail`` is JSON
    data for the audit note (exit code, signal, the child's last stderr lines)."""

    kind: FailureKind
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.detail}


class ShadowFailed(Exception):
    """Raised by a shadow evaluator that could not decide (``decide_both`` catches it)."""

    def __init__(self, failure: ShadowFailure):
        super().__init__(f"{failure.kind}: {failure.message}")
        self.failure = failure


@dataclass(frozen=True)
class Disagreement:
    """The compiled decision and a durable one that differs from it, or (``durable`` None)
    the ``failure`` that left the shadow without a decision."""

    compiled: Decision
    durable: Decision | None
    failure: ShadowFailure | None = None

    @property
    def where(self) -> str:
        """The first path at which the two decisions differ (``actions[3].params.delta``), or
        why there is no durable decision."""
        if self.durable is None:
            failure = self.failure or ShadowFailure("error", "no result")
            return f"(no durable result: {failure.kind}: {failure.message})"
        return first_difference(_data(self.compiled), _data(self.durable)) or "(bytes only)"

    def record(self) -> dict[str, Any]:
        """Both results for the audit log: the durable one in full except the facts, which
        both evaluators were given (the same digest); without one, what happened."""
        durable = None
        if self.durable is not None:
            durable = _data(self.durable)
            durable.pop("facts", None)
        out: dict[str, Any] = {
            "event": "evaluators_disagree",
            "where": self.where,
            "compiled_decision": self.compiled.decision_id,
            "durable": durable,
        }
        if self.failure is not None:
            out["failure"] = self.failure.data()
        return out


def _data(d: Decision) -> dict[str, Any]:
    return json.loads(d.to_json())


def decide_both(
    constitution: LoadedConstitution,
    facts: Facts,
    shadow: Evaluate | None = None,
) -> tuple[Decision, Disagreement | None]:
    """The compiled decision, and the disagreement if durable-rules decided otherwise or gave
    no decision (``EngineFailure``, ``ShadowFailed``: D200). ``shadow`` replaces ``evaluate``
    for the durable side (paper and live pass ``adapters.shadow_process.ShadowProcess``; tests
    pass one that disagrees)."""
    identity = facts_identity(facts)
    compiled = evaluate(constitution, facts, identity=identity)
    try:
        durable = (shadow or evaluate)(constitution, facts, evaluator="durable", identity=identity)
    except ShadowFailed as exc:
        return compiled, Disagreement(compiled, None, exc.failure)
    except EngineFailure as exc:  # a StopError for durable; for the cycle, a disagreement
        return compiled, Disagreement(compiled, None, ShadowFailure("engine_failure", str(exc)))
    if compiled.to_json() == durable.to_json():
        return compiled, None
    return compiled, Disagreement(compiled, durable)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if type(a) is not type(b):
        return path or "(root)"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}".lstrip(".")
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found.lstrip(".")
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}[{min(len(a), len(b))}]"
    return None if a == b else (path or "(root)")


def alert_action(disagreement: Disagreement) -> Action:
    """The alert a disagreement raises (§8: a system failure puts the system in SAFE mode)."""
    if disagreement.durable is None:
        failure = disagreement.failure or ShadowFailure("error", "no result")
        message = (
            f"durable-rules gave no decision ({failure.kind}: {failure.message}): no trading"
            " this cycle (SAFE); the compiled path's risk-reducing actions stand"
        )
        reason = "Two evaluators must agree before the system acts; durable-rules gave no decision."
    else:
        message = (
            f"the compiled and durable-rules evaluators disagree at {disagreement.where}:"
            " no trading this cycle (SAFE)"
        )
        reason = "Two evaluators must agree before the system acts; they did not."
    return Action(
        kind="alert",
        rule="engine.evaluators_disagree",
        clause="§8",
        salience=0,
        params={
            "severity": "critical",
            "message": message,
        },
        reason=reason,
    )
