"""The compiled evaluator decides exactly as durable-rules: byte-identical decisions on random
valid facts, under the bundled constitution and under constitutions with random extra rules
(so the agreement is a property of the compiler, not of v1.3's rules)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from constitution.errors import InvalidInput
from constitution.load import load_constitution_text
from engine.rules.evaluate import evaluate, evaluation
from tests.engine.durable_worker import DurableCrashed, DurableWorker
from tests.engine.strategies import extra_rules, overlays, with_rules

EXAMPLES = int(os.environ.get("ALLUSE_PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _both(constitution, facts) -> tuple[bytes, bytes]:
    compiled = evaluate(constitution, facts)
    durable = evaluate(constitution, facts, evaluator="durable")
    return compiled.to_json(), durable.to_json()


@SETTINGS
@given(overlay=overlays())
def test_compiled_and_durable_agree_on_random_portfolios(bundled, facts_with, overlay):
    compiled, durable = _both(bundled, facts_with(overlay))
    assert compiled == durable


def _rule(n: int, when: str, salience: int = 1) -> str:
    then = [{"action": "alert", "with": {"severity": "'info'", "message": "'random'"}}]
    rule = {"id": f"random.r{n}", "clause": "§0", "salience": salience, "description": "r"}
    return "\n  - " + json.dumps({**rule, "when": when, "then": then}) + "\n"


# Found with a long-lived hypothesis database (P20, docs/architecture.md): a join reference to
# market.hedge_trigger_off_closes, absent from the base facts, aborted the process; and the
# comparison reported to disagree (equity 50,000 < VIX 15 fired by durable), beside it.
P20_WHEN = (
    "((position.level > 2) or underlying.price <= market.hedge_trigger_off_closes)"
    " or position.breach_atr > 500"
)
SMALL = {"market": {"vix": 15}, "accounts": [{"id": "GEN", "equity": 50000}]}


# Found by the derandomized run when other tests ran before it in the same worker (P21): an
# ``in`` list's alternatives before a comparison with another fact's field; durable fired the
# rule at level 0 and VIX 15.
P21_WHEN = "(position.symbol in ['AAPL', 'AAPL']) and position.level > market.vix"
STOCK = {"symbol": "AAPL", "right": "stock", "side": "long", "shares": 1, "cost_basis": 50}
P21_FACTS = {"market": {"vix": 15}, "accounts": [{"id": "MINI-1", "positions": [STOCK]}]}


# Found by an exploration (P22): durable segfaulted in about one fresh process in three on
# this rule, where the comparison with the market's field reached its network. Since D214 no
# such comparison does.
P22_WHEN = (
    "((account.csp_window) or account.forks > market.vix_closes_above_30)"
    " and not account.csp_window"
)


# The same random rules on every run (CI included): should durable-rules' C core crash on a
# generated shape again (P18, P20, P22 did, docs/architecture.md), it would end the worker, not
# the run; a new exploration is asked for on purpose (ALLUSE_PROPERTY_EXPLORE=1) and what it
# finds becomes an @example.
EXPLORE = os.environ.get("ALLUSE_PROPERTY_EXPLORE") == "1"
RANDOM_RULES = SETTINGS if EXPLORE else settings(SETTINGS, derandomize=True, database=None)


def test_compiled_and_durable_agree_under_random_rules(bundled, facts_with):
    """Every generated rule set decides the same on both evaluators. durable runs in a child
    process: a crash of its C core on a generated shape fails the test with the rule sets it
    crashed on (none since D214: 0 in 2,300 explored examples, 3 in 300 before), never an
    abort of the run and never a disagreement."""
    worker, crashed = DurableWorker(), []

    @RANDOM_RULES
    @given(rules=extra_rules(), overlay=overlays())
    @example(rules=_rule(1, P20_WHEN, 31), overlay={})
    @example(rules=_rule(0, "account.equity < market.vix"), overlay=SMALL)
    @example(rules=_rule(0, "account.equity < market.vix") + _rule(1, P20_WHEN, 31), overlay=SMALL)
    @example(rules=_rule(0, "account.forks <= market.hedge_trigger_off_closes * 2"), overlay=SMALL)
    @example(rules=_rule(0, P21_WHEN), overlay=P21_FACTS)
    @example(rules=_rule(0, P22_WHEN, 73), overlay={})
    def agree(rules, overlay):
        text = with_rules(bundled.text, rules)
        try:
            constitution = load_constitution_text(text, "<random rules>")
        except InvalidInput:
            assume(False)  # a cycle, an unbound target: the validator's business, not ours
        facts = facts_with(overlay)
        try:
            durable = worker.evaluate(text, facts.model_dump(mode="json"))
        except DurableCrashed:
            crashed.append(rules)
            assume(False)
        assert evaluate(constitution, facts).to_json().decode("utf-8") == durable

    try:
        agree()
    finally:
        worker.close()
    assert not crashed, f"durable-rules crashed on {len(crashed)} rule set(s): {crashed[:3]}"


@SETTINGS
@given(overlay=overlays(), n=st.integers(2, 40))
def test_agreement_holds_for_many_accounts(bundled, facts_with, overlay, n):
    """Many accounts: durable splits them into sessions (P8); the compiled path does not."""
    accounts = [{**a, "id": f"{a['id']}-{k}"} for k in range(n) for a in overlay["accounts"][:2]]
    compiled, durable = _both(bundled, facts_with({**overlay, "accounts": accounts}))
    assert compiled == durable


def test_a_field_no_condition_reads_is_missing_in_both(bundled, facts_with):
    """Only fields some condition of a stratum reads reach durable's session, so an action
    parameter reading any other field sees it missing; the compiled path reads it the same way
    (and a ``set`` from a missing value sets nothing, D90)."""
    rule = (
        '\n  - {"id": "probe.unread", "clause": "§0", "salience": 1, "description": "probe",'
        ' "when": "position.side == \'short\'", "then": [{"set": {"position.level":'
        ' "position.contracts"}}, {"action": "prepare_assignment", "with":'
        ' {"probability": "position.delta"}}]}\n'
    )
    constitution = load_constitution_text(with_rules(bundled.text, rule), "<probe>")
    facts = facts_with(
        {
            "accounts": [
                {
                    "id": "GEN",
                    "positions": [
                        {
                            "symbol": "AAPL",
                            "right": "put",
                            "side": "short",
                            "strike": 190,
                            "expiry": "2026-11-20",
                            "contracts": 3,
                            "entry_credit": 2.0,
                            "delta": -0.3,
                        }
                    ],
                }
            ]
        }
    )
    compiled, durable = _both(constitution, facts)
    assert compiled == durable
    decision = evaluate(constitution, facts)
    probe = [a for a in decision.actions if a.rule == "probe.unread"]
    assert [a.params for a in probe] == [{"probability": None}]
    assert decision.derived["positions"]["GEN/AAPL/put/190/2026-11-20/short"]["level"] == 0


def test_the_explanation_is_built_only_when_the_decision_is_asked_for(bundled, facts_with):
    e = evaluation(bundled, facts_with({"market": {"vix": 81}}))
    assert e.fired and e._decision is None and e.identity is None
    decision = e.decision
    assert e.decision is decision  # once
    assert decision.to_json() == evaluate(bundled, e.facts, evaluator="durable").to_json()
    kill = next(f for f in decision.fired if f.rule == "vix.kill_switch")
    assert kill.bindings == ("market.vix=81 > params.vix.kill_switch=80",)


def test_an_unknown_evaluator_is_refused(bundled, facts_with):
    with pytest.raises(ValueError, match="unknown evaluator"):
        evaluate(bundled, facts_with(), evaluator="clips")
