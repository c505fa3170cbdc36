"""Rule expressions as Python closures, built once per constitution from the typed AST.

The compiled evaluator (``engine.rules.compiled``) never walks the AST per evaluation: each
expression becomes a closure over a *binding* - the four fact records a firing sees, by slot
(market, account, underlying, position). Nothing here hands text to ``eval``/``exec``; the
closures are plain Python functions composed from ``constitution.expr`` nodes.

The semantics are the interpreter's (``engine.rules.interp``), which the durable-rules path
uses for values and explanations, with one addition that makes them the durable path's
exactly: a field the durable session was not sent (``CompiledRules.fields_by_stratum``: only
fields some condition of the stratum reads travel) reads as missing there, so it reads as
missing here. Derived fields are always visible. ``tests/engine/test_compiled_agreement.py``
asserts byte-identical decisions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from constitution import expr as E
from constitution import vocabulary as V
from constitution.compile import ALIAS, arith
from constitution.params import resolve
from engine.rules.interp import fmt

Record = dict[str, Any]
Binding = tuple[Record | None, Record | None, Record | None, Record | None]
Reader = Callable[[Binding], Any]
UNBOUND: Record = {}  # what an unbound slot reads as: every field missing (never written)
Explainer = Callable[[Binding], str]

SLOT = {"m": 0, "a": 1, "u": 2, "p": 3}
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Scope:
    """What one rule's expressions can see: the constitution (for ``params.*``), the aliases
    the rule binds, and the physical fields its stratum's facts carry, by alias."""

    constitution: Any
    aliases: frozenset[str]
    visible: Mapping[str, frozenset[str]]


def _constant(v: Any) -> Reader:
    return lambda b: v


def _field_reader(node: E.Name, scope: Scope) -> Reader:
    f = V.lookup(node.dotted)
    if f is None:
        raise KeyError(node.dotted)  # the typechecker rejected unknown names already
    alias, name = ALIAS[f.entity], V.physical(f)
    seen = f.origin is V.Origin.DERIVED or name in scope.visible.get(alias, frozenset())
    if alias not in scope.aliases or not seen:
        return _constant(None)
    i = SLOT[alias]
    return lambda b: (b[i] or UNBOUND).get(name)


def reader(node: E.Node, scope: Scope) -> Reader:
    """The value of ``node`` for a binding (``None`` = missing), as ``interp.value``."""
    if isinstance(node, E.Literal):
        return _constant(node.value)
    if isinstance(node, E.Name):
        if node.is_param:
            return _constant(resolve(scope.constitution, node.parts[1:]))
        return _field_reader(node, scope)
    if isinstance(node, E.ListExpr):
        items = tuple(reader(i, scope) for i in node.items)
        return lambda b: [r(b) for r in items]
    if isinstance(node, E.Neg):
        return _negation(reader(node.operand, scope))
    if isinstance(node, E.Arith):
        return arith_reader(node.op, reader(node.left, scope), reader(node.right, scope))
    return _logic(node, scope)


def _negation(inner: Reader) -> Reader:
    def neg(b: Binding) -> Any:
        v = inner(b)
        return None if v is None else -v

    return neg


def arith_reader(op: str, left: Reader, right: Reader) -> Reader:
    def calc(b: Binding) -> Any:
        x, y = left(b), right(b)
        return None if x is None or y is None else arith(op, x, y)

    return calc


def _logic(node: E.Node, scope: Scope) -> Reader:
    if isinstance(node, E.Compare):
        test, left, right = COMPARE[node.op], reader(node.left, scope), reader(node.right, scope)

        def cmp(b: Binding) -> bool:
            x, y = left(b), right(b)
            return False if x is None or y is None else test(x, y)

        return cmp
    if isinstance(node, E.And | E.Or):
        items = tuple(reader(i, scope) for i in node.items)
        if isinstance(node, E.And):
            return lambda b: all(r(b) is True for r in items)
        return lambda b: any(r(b) is True for r in items)
    if isinstance(node, E.Not):
        inner = reader(node.operand, scope)
        return lambda b: not inner(b)
    raise TypeError(type(node).__name__)


# --- explanations (interp.explain, the same text) -------------------------------------------


def explainer(cmp: E.Compare | E.Name, scope: Scope) -> Explainer:
    """``market.vix=81.2 > params.vix.kill_switch=80`` for a binding."""
    if isinstance(cmp, E.Name):
        return _flag(cmp, scope)
    if (
        isinstance(cmp.left, E.Name)
        and isinstance(cmp.right, E.Literal)
        and isinstance(cmp.right.value, bool)
    ):
        return _flag(cmp.left, scope)
    left, right, op = _side(cmp.left, scope), _side(cmp.right, scope), cmp.op
    fixed = _fixed_text(cmp.right, scope)
    if fixed is not None:  # a constant right side: its text once, not per firing
        suffix = f" {op} {fixed}"
        return lambda b: left(b) + suffix
    return lambda b: f"{left(b)} {op} {right(b)}"


@dataclass(frozen=True)
class FieldText:
    """An explanation that is ``prefix + fmt(record[slot].get(name)) + suffix``: a flag or a
    comparison of one bound fact's field with a fixed right side - nearly every atom. The
    generated explainer (``engine.rules.generated.explanation``) writes it inline. (A field's
    value is never a list - the vocabulary has no list kind - so ``_shown`` is ``fmt`` here.)"""

    slot: int
    name: str
    prefix: str
    suffix: str


def field_text(cmp: E.Compare | E.Name, scope: Scope) -> FieldText | None:
    """``explainer(cmp, scope)``'s text in the ``FieldText`` form, when it has it."""
    flag = isinstance(cmp, E.Name) or (
        isinstance(cmp.right, E.Literal) and isinstance(cmp.right.value, bool)
    )
    node = cmp if isinstance(cmp, E.Name) else cmp.left
    if not isinstance(node, E.Name) or node.is_param:
        return None
    f = V.lookup(node.dotted)
    if f is None:
        return None
    alias, name = ALIAS[f.entity], V.physical(f)
    seen = f.origin is V.Origin.DERIVED or name in scope.visible.get(alias, frozenset())
    if alias not in scope.aliases or not seen:
        return None  # it reads as missing: the closure's constant text
    if flag:
        return FieldText(SLOT[alias], name, f"{node.dotted}=", "")
    assert isinstance(cmp, E.Compare)
    fixed = _fixed_text(cmp.right, scope)
    if fixed is None:
        return None
    return FieldText(SLOT[alias], name, f"{node.dotted}=", f" {cmp.op} {fixed}")


def _fixed_text(node: E.Node, scope: Scope) -> str | None:
    """``node``'s explanation text when no binding can change it (a literal, a list, a
    parameter), else None."""
    if isinstance(node, E.Literal | E.ListExpr) or (isinstance(node, E.Name) and node.is_param):
        return _side(node, scope)(_NO_BINDING)
    return None


def _flag(node: E.Name, scope: Scope) -> Explainer:
    value, dotted = reader(node, scope), node.dotted
    if node.is_param:
        text = f"{dotted}={fmt(value(_NO_BINDING))}"
        return lambda b: text
    return lambda b: f"{dotted}={fmt(value(b))}"


_NO_BINDING: Binding = (None, None, None, None)


def _side(node: E.Node, scope: Scope) -> Explainer:
    if isinstance(node, E.Literal):
        text = repr(node.value) if isinstance(node.value, str) else fmt(node.value)
        return lambda b: text
    if isinstance(node, E.ListExpr):
        text = E.render(node)
        return lambda b: text
    value = reader(node, scope)
    label = node.dotted if isinstance(node, E.Name) else E.render(node)
    show = _shown if isinstance(node, E.Name) else fmt
    if isinstance(node, E.Name) and node.is_param:
        text = f"{label}={show(value(_NO_BINDING))}"
        return lambda b: text
    label += "="
    return lambda b: label + show(value(b))


def _shown(v: Any) -> str:
    return "[" + ", ".join(fmt(x) for x in v) + "]" if isinstance(v, list) else fmt(v)
