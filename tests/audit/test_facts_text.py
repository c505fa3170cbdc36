"""A decision's record reuses the canonical text its facts' digest was made from
(engine.records.facts_text), and the record is byte for byte the one encoding them again
would give - masks, secrets and look-alike decisions included."""

from __future__ import annotations

import json

import pytest

from engine.records import facts_text
from engine.records.audit import RunMode, draft_decision
from engine.rules.evaluate import evaluate
from tests.benchmarks.portfolios import portfolio


@pytest.fixture
def decision(bundled):
    return evaluate(bundled, portfolio())


def _encoded_again(decision, **kw):
    saved = dict(facts_text._kept)
    facts_text._kept.clear()
    try:
        return draft_decision(decision, RunMode.BACKTEST, **kw).body
    finally:
        facts_text._kept.update(saved)


def test_the_kept_text_is_used_and_the_record_is_the_same(decision, monkeypatch):
    used = []
    real = facts_text.text_of
    monkeypatch.setattr(facts_text, "text_of", lambda *a: used.append(real(*a)) or used[-1])
    body = draft_decision(decision, RunMode.BACKTEST).body
    assert used and used[0] is not None  # spliced in
    assert body == _encoded_again(decision)


def test_facts_that_are_not_the_kept_data_are_encoded_again(decision):
    changed = {**decision.facts, "as_of": "2020-01-01T10:00:00-05:00"}
    odd = decision.model_copy(update={"facts": changed})  # the same digest, other facts
    body = json.loads(draft_decision(odd, RunMode.BACKTEST).body)
    assert body["decision"]["facts"]["as_of"] == "2020-01-01T10:00:00-05:00"
    assert facts_text.text_of(decision.facts_digest, changed) is None


def test_a_mask_inside_the_facts_is_applied(decision):
    masks = ("/decision/facts/as_of",)
    body = draft_decision(decision, RunMode.BACKTEST, masks=masks).body
    record = json.loads(body)
    assert record["masked"] == ["/decision/facts/as_of"]
    assert record["decision"]["facts"]["as_of"] != decision.facts["as_of"]
    assert body == _encoded_again(decision, masks=masks)


def test_a_secret_inside_the_facts_is_masked(decision):
    secret = decision.facts["as_of"]  # masked by value wherever it appears (an IB code, live)
    body = draft_decision(decision, RunMode.LIVE, secrets=(secret,)).body
    assert json.loads(body)["decision"]["facts"]["as_of"] != secret
    assert body == _encoded_again(decision, secrets=(secret,))


def test_only_the_last_few_are_kept():
    for i in range(facts_text.KEPT + 3):
        facts_text.keep(f"sha256:{i}", {"i": i}, b"{}")
    assert facts_text.text_of("sha256:0", {"i": 0}) is None
    data = {"i": [1]}
    facts_text.keep("sha256:x", data, b'{"i":[1]}')
    assert facts_text.text_of("sha256:x", dict(data)) == b'{"i":[1]}'  # a copy of the dict
    assert facts_text.text_of("sha256:x", {"i": [1]}) is None  # equal, not the same values
