"""The generated matching loops (engine/rules/generated.py, D210): the same bindings as the
closures they replace, on every rule and on random facts and rules; no user value in the text
they are made from."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings

from constitution.compile import Atom
from constitution.errors import InvalidInput
from constitution.load import load_constitution_text
from engine.rules import compiled as C
from engine.rules.generated import generated_source
from engine.rules.prepare import prepare
from tests.benchmarks.portfolios import many_accounts, portfolio
from tests.engine.strategies import extra_rules, overlays, with_rules

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _worlds(program: C.Program, facts):
    """Two copies of one world (a world takes its prepared records over): the derived fields
    each run merges in stay apart."""
    return tuple(
        C.world_of(program, prepare(facts, program.shift, program.cadence)) for _ in range(2)
    )


def _closures_only(program: C.Program) -> C.Program:
    strata = tuple(
        tuple(dataclasses.replace(rp, binds=(None,) * len(rp.binds)) for rp in stratum)
        for stratum in program.strata
    )
    return dataclasses.replace(program, strata=strata)


def _keys(fired: list[C.Fired]) -> list[tuple]:
    return [(f.key, f.disjunct) for f in fired]


def _same_firings(constitution, facts) -> None:
    program = C.compile_program(constitution)
    generated, closures = _worlds(program, facts)
    assert _keys(C.run(program, generated)) == _keys(C.run(_closures_only(program), closures))
    assert generated == closures  # the derived values they set, record for record


def test_every_rule_of_the_bundled_constitution_is_generated(bundled):
    program = C.compile_program(bundled)
    rules = [rp for stratum in program.strata for rp in stratum]
    assert len(rules) == len(bundled.rules.rules)
    assert [rp.rule.id for rp in rules if None in rp.binds] == []


@pytest.mark.parametrize("facts", [portfolio(), many_accounts(n_groups=40)], ids=["10", "120"])
def test_generated_and_closures_fire_alike_on_the_benchmark_portfolios(bundled, facts):
    _same_firings(bundled, facts)


@SETTINGS
@given(overlay=overlays())
def test_generated_and_closures_fire_alike_on_random_facts(bundled, facts_with, overlay):
    _same_firings(bundled, facts_with(overlay))


@SETTINGS
@given(rules=extra_rules(), overlay=overlays())
def test_generated_and_closures_fire_alike_under_random_rules(bundled, facts_with, rules, overlay):
    try:
        constitution = load_constitution_text(with_rules(bundled.text, rules), "<random rules>")
    except InvalidInput:
        assume(False)
    _same_firings(constitution, facts_with(overlay))


HOSTILE = "__import__ os system false"


def test_a_value_the_user_wrote_never_becomes_code(bundled, facts_with):
    when = f"underlying.symbol in ['{HOSTILE}'] or account.equity > 123456789"
    then = [{"action": "alert", "with": {"severity": "'info'", "message": "'m'"}}]
    head = {"id": "x.hostile", "clause": "§0", "salience": 1, "description": "d"}
    rule = "\n  - " + json.dumps({**head, "when": when, "then": then}) + "\n"
    constitution = load_constitution_text(with_rules(bundled.text, rule), "<hostile>")
    (compiled,) = [r for r in constitution.rules.rules if r.id == "x.hostile"]
    sources = [
        generated_source(atoms, [lambda b: False] * len(atoms), False, frozenset("au"))
        for atoms in compiled.disjuncts
    ]
    texts = [made[0] for made in sources if made is not None]
    assert len(texts) == 2
    for text in texts:
        assert "__import__" not in text and "123456789" not in text and "x.hostile" not in text
    namespaces = [made[1] for made in sources if made is not None]
    assert (HOSTILE,) in [v for ns in namespaces for v in ns.values()]
    _same_firings(constitution, facts_with({}))


def test_a_field_name_that_is_not_a_plain_identifier_is_refused():
    atom = Atom("a", "equity) or (1", ">", 1.0, False, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a vocabulary field name"):
        generated_source([atom], [lambda b: False], False, frozenset("a"))


# --- the index (compiled.World.positions_where / accounts_where) ---------------------------------


@pytest.fixture
def index_always(monkeypatch):
    """Every world groups its records, however small: the random facts exercise the index."""
    monkeypatch.setattr(C, "INDEXED_FROM", 0)


@SETTINGS
@given(rules=extra_rules(), overlay=overlays())
def test_the_index_never_changes_a_firing(bundled, facts_with, index_always, rules, overlay):
    try:
        constitution = load_constitution_text(with_rules(bundled.text, rules), "<random rules>")
    except InvalidInput:
        assume(False)
    _same_firings(constitution, facts_with(overlay))
    _same_firings(bundled, facts_with(overlay))


def _mixed_world(bundled):
    program = C.compile_program(bundled)
    return C.world_of(program, prepare(many_accounts(n_groups=12), program.shift, program.cadence))


def test_a_large_world_narrows_each_loop_to_the_records_its_key_allows(bundled):
    world = _mixed_world(bundled)
    assert len(world.positions) >= C.INDEXED_FROM and len(world.accounts) >= C.INDEXED_FROM
    key = (("purpose", ("income",)), ("right", ("put",)), ("side", ("short",)))
    narrowed = world.positions_where(key)
    expected = [
        p for p in world.positions if (p["purpose"], p["right"], p["side"]) == _key_values(key)
    ]
    assert 0 < len(expected) < len(world.positions)
    assert sorted(p["key"] for ps in narrowed.values() for p in ps) == sorted(
        p["key"] for p in expected
    )
    assert all(p["acct"] == acct for acct, ps in narrowed.items() for p in ps)
    kinds = world.accounts_where((("kind", ("gen", "mini")),))
    assert {a["kind"] for a in kinds} == {"gen"}
    assert len(kinds) == sum(a["kind"] in ("gen", "mini") for a in world.accounts)
    assert world.accounts_where((("kind", ("nothing",)),)) == []


def _key_values(key):
    return tuple(values[0] for _, values in key)


def test_a_small_world_loops_over_every_record(bundled):
    program = C.compile_program(bundled)
    world = C.world_of(program, prepare(portfolio(), program.shift, program.cadence))
    assert len(world.positions) < C.INDEXED_FROM
    assert world.positions_where((("side", ("long",)),)) is world.positions_of
    assert world.accounts_where((("kind", ("gen",)),)) is world.accounts


def test_no_derived_field_is_ever_an_index_field(bundled):
    from constitution import vocabulary as V

    derived = {V.physical(f) for f in V.FIELDS if f.origin is V.Origin.DERIVED}
    fields = C.compile_program(bundled).index_fields
    assert fields["p"] and fields["a"]
    assert not (set(fields["p"]) | set(fields["a"])) & derived
