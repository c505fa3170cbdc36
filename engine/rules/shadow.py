"""Two evaluators that must agree: the compiled path decides, durable-rules shadows it.

``decide_both`` evaluates the same facts with both (the facts' JSON and digest made once) and
compares the two decisions byte for byte (``Decision.to_json``). Agreement returns the
compiled decision. A ``Disagreement`` keeps both results and names the first place they
differ; what a trading cycle does with one is ``engine.cycle.trading``'s separate step
(``refuse``): nothing new is traded, the cycle is SAFE, an alert is raised, and both results
go to the audit log (docs/decisions.md D91).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from constitution.load import LoadedConstitution
from engine.facts.model import Facts
from engine.records.decision import Action, Decision
from engine.rules.evaluate import evaluate
from engine.rules.explained import facts_identity

Evaluate = Callable[..., Decision]


@dataclass(frozen=True)
class Disagreement:
    compiled: Decision
    durable: Decision

    @property
    def where(self) -> str:
        """The first path at which the two decisions differ (``actions[3].params.delta``)."""
        return first_difference(_data(self.compiled), _data(self.durable)) or "(bytes only)"

    def record(self) -> dict[str, Any]:
        """Both results for the audit log: the durable one in full except the facts, which
        both evaluators were given (the same digest)."""
        durable = _data(self.durable)
        durable.pop("facts", None)
        return {
            "event": "evaluators_disagree",
            "where": self.where,
            "compiled_decision": self.compiled.decision_id,
            "durable": durable,
        }


def _data(d: Decision) -> dict[str, Any]:
    return json.loads(d.to_json())


def decide_both(
    constitution: LoadedConstitution,
    facts: Facts,
    shadow: Evaluate | None = None,
) -> tuple[Decision, Disagreement | None]:
    """The compiled decision, and the disagreement if durable-rules decided otherwise.
    ``shadow`` replaces ``evaluate`` for the durable side (tests pass one that disagrees)."""
    identity = facts_identity(facts)
    compiled = evaluate(constitution, facts, identity=identity)
    durable = (shadow or evaluate)(constitution, facts, evaluator="durable", identity=identity)
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
    return Action(
        kind="alert",
        rule="engine.evaluators_disagree",
        clause="§8",
        salience=0,
        params={
            "severity": "critical",
            "message": f"the compiled and durable-rules evaluators disagree at {disagreement.where}:"
            " no trading this cycle (SAFE)",
        },
        reason="Two evaluators must agree before the system acts; they did not.",
    )
