"""The trading cycle's agreement step: what a cycle does when its two evaluators disagree.

Paper and live cycles evaluate every decision twice (``engine.rules.shadow.decide_both``). When
the compiled path and durable-rules disagree, neither result can be trusted to trade on, so
(docs/decisions.md D91):

* the cycle is SAFE: the limits the review hands the planner say market mode ``safe``;
* nothing is traded on the disagreement: every action is denied (``evaluators_disagree``),
  except a risk-reducing one - a close (stop-loss exit) or a hedge, or the SAFE / kill latch
  itself - that both evaluators produced identically: a halt never refuses a risk-reducing
  action both evaluators agree on;
* a critical ``alert`` action is added to the decision, which is recorded (write before act)
  with a ``note`` link holding the durable result and where the two differ.

When durable-rules gave no decision at all (its child process crashed or timed out, or it
raised ``EngineFailure``: D200) there is nothing to agree with. The cycle is SAFE and trades
nothing new just the same, but the compiled decision's risk-reducing actions stand: the halt
is the shadow's failure, and a halt never refuses a risk-reducing action. The note records
the failure instead of a durable result.
"""

from __future__ import annotations

from constitution.canonical import canonical_json
from engine.records.audit import ExecutionLink
from engine.records.decision import Action, Decision, Verdict
from engine.rules.shadow import Disagreement, alert_action

DISAGREE = "evaluators_disagree: the compiled and durable-rules decisions differ"
RISK_REDUCING = frozenset(
    {"close_position", "deploy_hedge", "enter_safe_mode", "kill_switch", "set_protocol_level"}
)


def _identity(a: Action) -> tuple:
    return (a.kind, a.rule, a.account, a.symbol, a.position, canonical_json(a.params))


def refuse(decision: Decision, disagreement: Disagreement) -> Decision:
    """``decision`` (risk-reviewed) as a SAFE cycle that trades nothing the evaluators
    disagree on, with the alert. Without a durable decision, the compiled decision's own
    risk-reducing actions are kept (D200)."""
    second = decision if disagreement.durable is None else disagreement.durable
    agreed = {_identity(a) for a in second.actions}
    given = {v.action: v for v in decision.verdicts}
    verdicts = []
    for i, action in enumerate(decision.actions):
        verdict = given.get(i, Verdict(action=i, approved=True))
        keep = action.kind in RISK_REDUCING and _identity(action) in agreed
        if verdict.approved and not keep:
            verdict = Verdict(action=i, approved=False, reasons=(*verdict.reasons, DISAGREE))
        verdicts.append(verdict)
    alert = alert_action(disagreement)
    verdicts.append(Verdict(action=len(decision.actions), approved=True))
    update: dict = {"actions": (*decision.actions, alert), "verdicts": tuple(verdicts)}
    if decision.review is not None:
        limits = {**decision.review.limits, "market_mode": "safe"}
        update["review"] = decision.review.model_copy(update={"limits": limits})
    return decision.model_copy(update=update)


def note(decision: Decision, disagreement: Disagreement) -> ExecutionLink:
    """Both results in the audit log, next to the decision that was recorded."""
    return ExecutionLink(
        decision_id=decision.decision_id,
        kind="note",
        ref="evaluators_disagree",
        data=disagreement.record(),
    )
