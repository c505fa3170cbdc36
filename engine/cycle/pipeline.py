"""Deciding, as a sequence of pure steps: facts -> evaluate -> [arbitrate] -> risk review.

The trading cycle decides through ``decide``; ``alluse audit replay`` re-runs ``redecide`` on a
recorded decision. They are the same functions, so a replay checks exactly what the cycle did.
Every input a step takes beyond the facts and the constitution is recorded in the decision
(the risk review's guard state in ``Decision.review``), so each step is a function of the record.

A step is ``(constitution, decision, inputs) -> decision``: arbitration (one intent per
position, D40), then the risk review; a new one joins ``STEPS`` at its place and replay runs it
too, with nothing else to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import TypeAdapter

from constitution.load import LoadedConstitution
from engine.execution import risk
from engine.execution.arbitration import arbitrate
from engine.facts.model import Facts
from engine.records.decision import Decision, Review
from engine.rules.evaluate import evaluate

_GUARD: TypeAdapter[risk.GuardState] = TypeAdapter(risk.GuardState)
_LIMITS: TypeAdapter[risk.Limits] = TypeAdapter(risk.Limits)


@dataclass(frozen=True)
class StepInputs:
    """What steps read beyond the decision: ``guard`` is None when there is no risk review
    (a dry run)."""

    guard: risk.GuardState | None = None


Step = Callable[[LoadedConstitution, Decision, StepInputs], Decision]


def arbitrate_step(
    constitution: LoadedConstitution, decision: Decision, inputs: StepInputs
) -> Decision:
    """One intent per position (D40): the losers move to ``Decision.superseded``. A function of
    the decision and the constitution only, so it runs the same in a dry run and a replay."""
    return arbitrate(constitution.model, decision)


def review_step(
    constitution: LoadedConstitution, decision: Decision, inputs: StepInputs
) -> Decision:
    """The risk guard: one verdict per action, and the review (inputs and limits) recorded."""
    if inputs.guard is None:
        return decision
    reviewed, limits = risk.review(constitution.model, decision, inputs.guard)
    review = Review(
        guard=_GUARD.dump_python(inputs.guard, mode="json"),
        limits=_LIMITS.dump_python(limits, mode="json"),
    )
    return reviewed.model_copy(update={"review": review})


STEPS: tuple[Step, ...] = (arbitrate_step, review_step)


def decide(
    constitution: LoadedConstitution, facts: Facts, guard: risk.GuardState | None
) -> Decision:
    """Evaluate ``facts``, then run every step in order."""
    return after_evaluation(constitution, evaluate(constitution, facts), guard)


def after_evaluation(
    constitution: LoadedConstitution, decision: Decision, guard: risk.GuardState | None
) -> Decision:
    """Every step, in order, on an evaluated decision (the trading cycle evaluates with two
    evaluators first, engine.rules.shadow)."""
    inputs = StepInputs(guard)
    for step in STEPS:
        decision = step(constitution, decision, inputs)
    return decision


def inputs_of(decision: Decision) -> StepInputs:
    """The step inputs a recorded decision was made with."""
    if decision.review is None:
        return StepInputs()
    return StepInputs(_GUARD.validate_python(decision.review.guard))


def limits_of(decision: Decision) -> risk.Limits:
    """The limits the review gave the planner, read from the decision itself."""
    if decision.review is None:
        raise ValueError(f"decision {decision.decision_id} had no risk review: nothing to plan")
    return _LIMITS.validate_python(decision.review.limits)


def redecide(constitution: LoadedConstitution, recorded: Decision) -> Decision:
    """The decision the pipeline makes today from a recorded decision's inputs."""
    facts = Facts.model_validate(recorded.facts)
    return decide(constitution, facts, inputs_of(recorded).guard)
