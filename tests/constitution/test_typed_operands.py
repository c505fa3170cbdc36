"""What an atom compares its field with is a typed value (constitution/compile.py): a constant,
the constants of ``in``, a ``FieldRef`` to an earlier fact's field, or ``Arithmetic`` over
them - and durable is given the same join references it was given as tuples before."""

from __future__ import annotations

import pytest

from constitution import expr as E
from constitution.compile import Arithmetic, FieldRef, compile_rule, durable_rule
from constitution.models import Rule
from constitution.typecheck import Checker, TypeErr


def _rule(when: str) -> Rule:
    return Rule.model_validate(
        {
            "id": "t.rule",
            "clause": "§6",
            "salience": 1,
            "description": "t",
            "when": when,
            "then": [{"action": "close_position"}],
        }
    )


def _atoms(bundled, when: str):
    [atoms] = compile_rule(_rule(when), bundled.model).disjuncts
    return {a.field: a for a in atoms}


def test_a_constant_a_list_a_field_and_arithmetic_are_typed_operands(bundled):
    atoms = _atoms(
        bundled,
        "position.strike > underlying.price - 2 * underlying.atr5 and position.side == 'short'"
        " and position.right in ['put', 'call'] and position.dte <= 5",
    )
    assert atoms["strike"].operand == Arithmetic(
        "-", FieldRef("u", "price"), Arithmetic("*", 2, FieldRef("u", "atr5"))
    )
    assert atoms["side"].operand == "short"
    assert atoms["right"].operand == ("put", "call")
    assert atoms["dte"].operand == 5


def test_durable_gets_the_join_reference_and_the_arithmetic(bundled):
    compiled = compile_rule(_rule("position.strike > underlying.price - 1"), bundled.model)
    [pattern] = [p["p"] for p in durable_rule(compiled, compiled.disjuncts[0])["all"] if "p" in p]
    assert {"$gt": {"strike": {"$sub": {"$l": {"u": "price"}, "$r": 1}}}} in pattern["$and"]


def test_a_list_that_mixes_types_is_refused(bundled):
    with pytest.raises(TypeErr, match="a list mixes types"):
        Checker(bundled.model).type_of(E.parse("[1, 'a']"))


@pytest.mark.parametrize(
    ("text", "rendered"),
    [("x.y == true", "x.y == true"), ("x.y == 'a'", "x.y == 'a'"), ("x.y > 1.5", "x.y > 1.5")],
)
def test_literals_render_as_written(text, rendered):
    assert E.render(E.parse(text)) == rendered
