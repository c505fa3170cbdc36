"""Every threshold the rules compare against is a tested boundary pair (issue 14 item 9, D141):
``tests/engine/thresholds.yaml`` lists each comparison of a fact with a constitution value, the
clause and the text's wording, and the two scenarios - at the threshold and just past it - whose
decisions differ by that rule firing (``tests/engine/thresholds.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from constitution.load import bundled_path, load_constitution
from tests.engine import thresholds as T

ROWS = T.table()
DOC = Path(__file__).resolve().parents[2] / "docs" / "thresholds.md"


def test_every_threshold_comparison_of_the_rules_has_a_row_and_every_row_a_comparison(bundled):
    made = {(c.rule, c.text) for c in T.comparisons(bundled)}
    listed = [(r["rule"], r["compare"]) for r in ROWS]
    assert len(listed) == len(set(listed)), "a comparison is listed twice"
    assert made - set(listed) == set(), "threshold comparisons without a boundary pair"
    assert set(listed) - made == set(), "rows naming a comparison no rule makes"


def test_every_row_names_its_rules_clause_and_the_texts_wording(bundled):
    clause = {r.id: r.clause for r in bundled.model.rules}
    for row in ROWS:
        assert row["clause"] == clause[row["rule"]] and row["text"].strip(), row


_COMPARISONS = {(c.rule, c.text): c for c in T.comparisons(load_constitution(bundled_path()))}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['rule']}: {r['compare']}" for r in ROWS])
def test_the_pair_pins_the_boundary(bundled, row):
    comparison = _COMPARISONS[(row["rule"], row["compare"])]
    assert T.check_pair(bundled, comparison, row) == []


def test_a_pair_fails_when_the_operator_is_not_the_texts(bundled):
    # §7 "ITM > 95 %": written >= (as before issue 14), the 0.95 scenario fires and the pair fails
    row = next(r for r in ROWS if r["rule"] == "assignment.prepare" and "abs_delta" in r["compare"])
    comparison = _COMPARISONS[(row["rule"], row["compare"])]
    wrong = T.Comparison(
        comparison.rule, comparison.text, comparison.fact, ">=", comparison.threshold
    )
    assert T.at_problem(bundled, wrong, row["at"]) != ""
    assert T.past_problem(bundled, wrong, row["past"]) != ""


def test_the_threshold_table_in_the_docs_is_current():
    assert T.markdown() in DOC.read_text("utf-8"), "run: python -m tests.engine.thresholds"
