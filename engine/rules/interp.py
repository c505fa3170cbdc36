"""A small interpreter for rule expressions over bound fact records.

Used for the values of ``set``/``with`` and to explain *why* a condition held, with the actual
values. It walks the parsed AST (constitution.expr); user text is never handed to ``eval``.
"""

from __future__ import annotations

from typing import Any

from constitution import expr as E
from constitution import vocabulary as V
from constitution.compile import ALIAS, arith
from constitution.models import Constitution
from constitution.params import resolve

MISSING = None


class Env:
    """Values visible to one firing: its bound facts and the constitution's params."""

    def __init__(
        self, bound: dict[str, dict], constitution: Constitution, params: dict | None = None
    ) -> None:
        self.bound = bound
        self.constitution = constitution
        self.params = {} if params is None else params  # parts -> value, shared per constitution

    def name(self, node: E.Name) -> Any:
        if node.is_param:
            parts = node.parts[1:]
            if parts not in self.params:
                self.params[parts] = resolve(self.constitution, parts)
            return self.params[parts]
        f = V.BY_NAME[node.dotted]  # the checker has refused unknown names
        return self.bound.get(ALIAS[f.entity], {}).get(V.physical(f), MISSING)


def value(node: E.Node, env: Env) -> Any:
    if isinstance(node, E.Literal):
        return node.value
    if isinstance(node, E.Name):
        return env.name(node)
    if isinstance(node, E.ListExpr):
        return [value(i, env) for i in node.items]
    if isinstance(node, E.Neg):
        v = value(node.operand, env)
        return MISSING if v is MISSING else -v
    if isinstance(node, E.Arith):
        a, b = value(node.left, env), value(node.right, env)
        return MISSING if a is MISSING or b is MISSING else arith(node.op, a, b)
    if isinstance(node, E.Compare):
        return compare(node.op, value(node.left, env), value(node.right, env))
    if isinstance(node, E.And):
        return all(value(i, env) is True for i in node.items)
    if isinstance(node, E.Or):
        return any(value(i, env) is True for i in node.items)
    if isinstance(node, E.Not):
        return not value(node.operand, env)
    raise TypeError(type(node).__name__)


def compare(op: str, a: Any, b: Any) -> bool:
    """Comparisons involving a missing value are false (docs/rules.md)."""
    if a is MISSING or b is MISSING:
        return False
    if op == "in":
        return a in b
    if op == "not in":
        return a not in b
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def fmt(v: Any) -> str:
    t = type(v)  # the common exact types first (an explanation formats every bound value)
    if t is float:
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if t is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, str):
        return v
    if v is MISSING:
        return "missing"
    return repr(v)


def explain(cmp: E.Compare | E.Name, env: Env) -> str:
    """``market.vix=81.2 > params.vix.kill_switch=80``."""
    if isinstance(cmp, E.Name):
        return f"{cmp.dotted}={fmt(value(cmp, env))}"
    if (
        isinstance(cmp.left, E.Name)
        and isinstance(cmp.right, E.Literal)
        and isinstance(cmp.right.value, bool)
    ):
        return f"{cmp.left.dotted}={fmt(value(cmp.left, env))}"  # a flag: its value says it all
    return f"{_side(cmp.left, env)} {cmp.op} {_side(cmp.right, env)}"


def _side(node: E.Node, env: Env) -> str:
    if isinstance(node, E.Literal):
        return repr(node.value) if isinstance(node.value, str) else fmt(node.value)
    if isinstance(node, E.Name):
        v = value(node, env)
        return f"{node.dotted}={'[' + ', '.join(fmt(x) for x in v) + ']' if isinstance(v, list) else fmt(v)}"
    if isinstance(node, E.ListExpr):
        return E.render(node)
    return f"{E.render(node)}={fmt(value(node, env))}"
