"""docs/clauses.md is generated and kept true (issue 15 item 9, seed 004's requirement-to-test
map): every rule names a clause of the catalogue and sits in one of its items, every item that
is not out of scope has a scenario or a test, every key, rule pattern and test it names exists,
and the committed file is what the generator makes now."""

from __future__ import annotations

import pytest

from constitution.clauses import Catalogue, Item, load_catalogue
from constitution.load import bundled_path, load_constitution
from scheduler import clause_map


@pytest.fixture(scope="module")
def built():
    c = load_constitution(bundled_path())
    return c, load_catalogue(), clause_map.scenarios_by_rule(c)


def test_the_catalogue_has_every_v13_clause_once(built):
    _, cat, _ = built
    assert [cl.id for cl in cat.clauses] == [f"§{n}" for n in range(18)]


def test_the_clause_map_finds_no_problem(built):
    c, cat, proved = built
    assert clause_map.problems(cat, c, proved) == []


def test_the_committed_clause_map_is_the_generated_one(built):
    c, cat, proved = built
    committed = clause_map.OUT.read_text("utf-8")
    assert committed == clause_map.render(cat, c, proved) + "\n", (
        "run: python -m scheduler.clause_map"
    )


def _with(cat: Catalogue, clause: str, item: Item) -> Catalogue:
    clauses = tuple(
        cl.model_copy(update={"items": (*cl.items, item)}) if cl.id == clause else cl
        for cl in cat.clauses
    )
    return cat.model_copy(update={"clauses": clauses})


def test_a_rule_naming_no_catalogued_clause_is_caught(built):
    c, cat, proved = built
    fewer = cat.model_copy(update={"clauses": tuple(cl for cl in cat.clauses if cl.id != "§7")})
    found = clause_map.problems(fewer, c, proved)
    assert any("assignment.prepare names clause §7" in p for p in found)


def test_an_item_without_scenario_or_test_is_caught(built):
    c, cat, proved = built
    bare = _with(cat, "§3", Item(text="Untested promise", status="implemented"))
    assert any(
        "Untested promise" in p and "no scenario or test" in p
        for p in clause_map.problems(bare, c, proved)
    )


def test_missing_keys_rules_and_tests_are_caught(built):
    c, cat, proved = built
    wrong = _with(
        cat,
        "§3",
        Item(
            text="Wrong refs",
            status="implemented",
            keys=("sleeves.rev.nothing",),
            rules=("nosuch.*",),
            tests=("tests/nothing.py::test_x",),
        ),
    )
    found = "\n".join(clause_map.problems(wrong, c, proved))
    assert "no constitution key sleeves.rev.nothing" in found
    assert "no rule matches nosuch.*" in found and "no test tests/nothing.py::test_x" in found


def test_a_partial_or_out_of_scope_item_must_say_why():
    with pytest.raises(ValueError, match="say why"):
        Item(text="x", status="partial")
