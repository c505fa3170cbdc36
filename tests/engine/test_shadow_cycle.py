"""Two evaluators must agree: a paper cycle evaluates every decision with the compiled path and
durable-rules; when they disagree it trades nothing they disagree on, is SAFE for the cycle,
raises an alert and records both results (docs/decisions.md D91)."""

from __future__ import annotations

import pytest

from engine.cycle import agreement
from engine.records.decision import Action, Decision, Review
from engine.rules.evaluate import evaluate
from engine.rules.shadow import Disagreement, decide_both, first_difference
from tests.execution import helpers

MONDAY_ENTRY = helpers.at(helpers.WEEK, 10, 0)  # Com's covered-call window


def _mutating(change):
    """A durable shadow that decides, then has ``change`` alter its decision: the injected
    disagreement."""
    calls = []

    def shadow(constitution, facts, **kwargs):
        calls.append(facts.as_of)
        return change(evaluate(constitution, facts, **kwargs))

    shadow.calls = calls
    return shadow


def _cycle(tmp_path, name, shadow=None):
    cycle, broker, store = helpers.open_cycle(f"sqlite:///{tmp_path / name}")
    if shadow is not None:
        cycle.shadow = shadow
    return cycle


def _records(cycle, decision_id):
    return cycle.log.store.for_decision(decision_id)


def test_a_paper_cycle_runs_both_evaluators_and_trades_when_they_agree(tmp_path):
    shadow = _mutating(lambda d: d)
    cycle = _cycle(tmp_path, "agree.db", shadow)
    report = cycle.run(MONDAY_ENTRY)
    assert shadow.calls == [MONDAY_ENTRY]  # the shadow saw this decision's facts
    assert cycle.disagreements == 0
    assert report.orders_submitted > 0 and report.market_mode == "active"


def test_an_injected_disagreement_makes_the_cycle_refuse_to_act(tmp_path):
    def drop_last(d: Decision) -> Decision:
        return d.model_copy(update={"actions": d.actions[:-1]})

    cycle = _cycle(tmp_path, "disagree.db", _mutating(drop_last))
    report = cycle.run(MONDAY_ENTRY)

    assert cycle.disagreements == 1
    assert report.orders_submitted == 0 and report.market_mode == "safe"
    assert cycle.broker.requests() == []
    records = _records(cycle, report.decision_id)
    decision = records[0].body["decision"]
    alert = decision["actions"][-1]
    assert (alert["kind"], alert["params"]["severity"]) == ("alert", "critical")
    entries = [i for i, a in enumerate(decision["actions"]) if a["kind"] == "open_covered_call"]
    assert entries
    for i in entries:
        verdict = decision["verdicts"][i]
        assert not verdict["approved"] and agreement.DISAGREE in verdict["reasons"]
    notes = [r.body["link"] for r in records if r.record_type.value == "link"]
    both = next(n for n in notes if n.get("ref") == "evaluators_disagree")
    assert both["data"]["where"].startswith("actions")
    assert len(both["data"]["durable"]["actions"]) == len(decision["actions"]) - 2


def test_the_same_cycle_without_the_shadow_trades(tmp_path):
    """The refusal above is the disagreement's doing: compiled alone, the cycle trades."""
    cycle = _cycle(tmp_path, "alone.db")
    cycle.shadow = None
    assert cycle.run(MONDAY_ENTRY).orders_submitted > 0


def _action(kind, rule, position=None, **params):
    return Action(
        kind=kind,
        account="GEN",
        symbol="AAPL",
        position=position,
        rule=rule,
        clause="§6",
        salience=10,
        params=params,
        reason="r",
    )


def _decision(actions, review=True) -> Decision:
    return Decision(
        review=Review(guard={}, limits={"market_mode": "active", "deployment_factor": 1.0})
        if review
        else None,
        decision_id="d-x",
        as_of="2026-11-19T10:00:00-05:00",
        constitution={"version": "1.3.1", "digest": "sha256:x"},
        facts_digest="sha256:f",
        facts={},
        derived={},
        fired=(),
        actions=tuple(actions),
    )


def test_a_risk_reducing_action_both_evaluators_agree_on_still_goes():
    exit_ = _action("close_position", "protocol.l3", "p1", urgency="market", why="l3_stop_loss")
    entry = _action("open_short_put", "entry.csp.gen", delta={"min": 0.4, "max": 0.45})
    compiled = _decision([exit_, entry])
    durable = _decision([exit_, entry.model_copy(update={"params": {"delta": {"min": 0.3}}})])
    disagreement = Disagreement(compiled, durable)
    refused = agreement.refuse(compiled, disagreement)
    assert [v.approved for v in refused.verdicts] == [True, False, True]
    assert refused.actions[-1].kind == "alert" and refused.review.limits["market_mode"] == "safe"
    assert disagreement.where == "actions[1].params.delta.max"


def test_a_risk_reducing_action_only_one_evaluator_produced_is_refused():
    exit_ = _action("close_position", "protocol.l3", "p1", urgency="market", why="l3_stop_loss")
    disagreement = Disagreement(_decision([exit_]), _decision([]))
    refused = agreement.refuse(_decision([exit_]), disagreement)
    assert [v.approved for v in refused.verdicts] == [False, True]


def test_a_denial_by_the_risk_guard_stays_a_denial():
    from engine.records.decision import Verdict

    exit_ = _action("close_position", "protocol.l3", "p1", why="x")
    reviewed = _decision([exit_]).model_copy(
        update={"verdicts": (Verdict(action=0, approved=False, reasons=("kill_switch",)),)}
    )
    refused = agreement.refuse(reviewed, Disagreement(reviewed, reviewed))
    assert refused.verdicts[0].reasons == ("kill_switch",)


@pytest.mark.parametrize(
    ("a", "b", "where"),
    [
        ({"x": [1, 2]}, {"x": [1, 3]}, "x[1]"),
        ({"x": 1}, {"x": 1.0}, "x"),
        ({"x": 1}, {"y": 1}, "x"),
        ({"x": [1]}, {"x": [1, 2]}, "x[1]"),
        ({"x": 1}, {"x": 1}, None),
    ],
)
def test_first_difference_names_the_path(a, b, where):
    assert first_difference(a, b) == where


def test_decide_both_agrees_on_the_bundled_constitution(bundled, facts_with):
    decision, disagreement = decide_both(bundled, facts_with({"market": {"vix": 52}}))
    assert disagreement is None and [a.kind for a in decision.actions] == ["hedged_week"]
