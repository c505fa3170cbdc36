"""A daemon or backtest evaluates thousands of times in one process; durable must not run out.

durable-rules keeps a slot for every session id it has seen, even after delete_state, and
raises MemoryError after about 2,048 of them. The runtime therefore reuses its session ids.
"""

from constitution.load import load_constitution_text
from engine.rules.evaluate import evaluate as _evaluate


def evaluate(constitution, facts):
    return _evaluate(constitution, facts, evaluator="durable")  # the hazard is durable's


ONE_RULE = """
rules:
  - id: vix.kill_switch
    clause: "§6"
    salience: 1
    description: VIX above the kill-switch level halts the whole system.
    when: market.vix > params.vix.kill_switch
    then:
      - action: kill_switch
"""


def test_long_runs_do_not_exhaust_durable(bundled_text, facts_with):
    head = bundled_text[: bundled_text.index("rules:\n")]
    small = load_constitution_text(head + ONE_RULE.lstrip("\n"), "one-rule.yaml")
    calm, crash = facts_with({"market": {"vix": 18}}), facts_with({"market": {"vix": 81}})
    for i in range(2600):
        decision = evaluate(small, crash if i % 2 else calm)
        assert [a.kind for a in decision.actions] == (["kill_switch"] if i % 2 else [])
