"""Static types of rule expressions: every name known, every comparison meaningful.

durable-rules would happily compare ``5 > "30"`` (true) or a misspelled field (never true);
this pass makes both a located validation error instead (engines.md P11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from constitution import expr as E
from constitution import vocabulary as V
from constitution.params import ParamError, resolve
from constitution.suggest import did_you_mean

if TYPE_CHECKING:
    from constitution.models import Constitution


@dataclass(frozen=True)
class Type:
    kind: str  # number, boolean, string, list, object
    values: tuple[str, ...] = ()  # enum values for strings drawn from a closed set
    item: Type | None = None  # list element type
    field: V.Field | None = None  # the fact field this came from, if any

    def describe(self) -> str:
        if self.kind == "list" and self.item:
            return f"list of {self.item.describe()}"
        if self.values:
            return f"one of {', '.join(self.values)}"
        return self.kind


NUMBER, BOOLEAN, STRING, OBJECT = Type("number"), Type("boolean"), Type("string"), Type("object")


class TypeErr(Exception):
    def __init__(self, code: str, message: str, offset: int):
        super().__init__(message)
        self.code, self.message, self.offset = code, message, offset


def type_of_value(value: Any) -> Type:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        items = {type_of_value(v).kind for v in value}
        return Type("list", item=Type(items.pop()) if len(items) == 1 else None)
    return OBJECT


def _field_type(f: V.Field) -> Type:
    kind = {V.Kind.NUMBER: "number", V.Kind.INTEGER: "number", V.Kind.BOOLEAN: "boolean"}.get(
        f.kind, "string"
    )
    return Type(kind, values=f.values, field=f)


class Checker:
    """Types expressions of one constitution; collects the fact fields each rule touches."""

    def __init__(self, constitution: Constitution) -> None:
        self.constitution = constitution

    def name_type(self, node: E.Name) -> Type:
        if node.is_param:
            try:
                return type_of_value(resolve(self.constitution, node.parts[1:]))
            except ParamError as exc:
                raise TypeErr("unknown-param", str(exc), node.offset) from None
        if len(node.parts) != 2:
            raise TypeErr(
                "unknown-field",
                f"'{node.dotted}' is not entity.field (e.g. market.vix)",
                node.offset,
            )
        if node.parts[0] not in V.ENTITIES:
            raise TypeErr(
                "unknown-field",
                f"unknown entity '{node.parts[0]}'{did_you_mean(node.parts[0], [*V.ENTITIES, 'params'])}"
                f" (known: {', '.join(V.ENTITIES)}, params)",
                node.offset,
            )
        f = V.lookup(node.dotted)
        if f is None:
            names = [x.name for x in V.FIELDS if x.entity == node.parts[0]]
            hint = did_you_mean(node.dotted, [x.dotted for x in V.FIELDS])
            raise TypeErr(
                "unknown-field",
                f"'{node.dotted}' is not a known fact field{hint} ({node.parts[0]} has: {', '.join(names)})",
                node.offset,
            )
        return _field_type(f)

    def type_of(self, node: E.Node) -> Type:
        if isinstance(node, E.Literal):
            return type_of_value(node.value)
        if isinstance(node, E.Name):
            return self.name_type(node)
        if isinstance(node, E.ListExpr):
            return self._list_type(node)
        if isinstance(node, E.Neg):
            self._numeric(node.operand, "'-'")
            return NUMBER
        if isinstance(node, E.Arith):
            self._numeric(node.left, f"'{node.op}'")
            self._numeric(node.right, f"'{node.op}'")
            return NUMBER
        if isinstance(node, E.Compare):
            self._compare(node)
            return BOOLEAN
        if isinstance(node, E.And | E.Or):
            for item in node.items:
                self.condition(item)
            return BOOLEAN
        if isinstance(node, E.Not):
            self.condition(node.operand)
            return BOOLEAN
        raise TypeErr("type", f"unsupported expression {type(node).__name__}", node.offset)

    def _list_type(self, node: E.ListExpr) -> Type:
        items = [self.type_of(i) for i in node.items]
        if len({t.kind for t in items}) > 1:
            raise TypeErr("type", "a list mixes types", node.offset)
        return Type("list", item=items[0] if items else None)

    def condition(self, node: E.Node) -> None:
        t = self.type_of(node)
        if t.kind != "boolean":
            raise TypeErr(
                "type",
                f"'{E.render(node)}' is {t.describe()}, not a condition (true/false)",
                node.offset,
            )

    def _numeric(self, node: E.Node, what: str) -> None:
        t = self.type_of(node)
        if t.kind != "number":
            raise TypeErr(
                "type", f"{what} needs numbers; '{E.render(node)}' is {t.describe()}", node.offset
            )

    def _compare(self, node: E.Compare) -> None:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if node.op in ("in", "not in"):
            if right.kind != "list":
                raise TypeErr("type", f"'{node.op}' needs a list on the right", node.right.offset)
            if right.item is not None:
                self._comparable(left, right.item, node, right_node=None)
            return
        if node.op not in ("==", "!=") and (left.kind != "number" or right.kind != "number"):
            raise TypeErr(
                "type",
                f"'{node.op}' compares numbers; '{E.render(node.left)}' is {left.describe()} and "
                f"'{E.render(node.right)}' is {right.describe()}",
                node.offset,
            )
        self._comparable(left, right, node, node.right)

    def _comparable(
        self, left: Type, right: Type, node: E.Compare, right_node: E.Node | None
    ) -> None:
        if left.kind in ("object", "list") or right.kind in ("object", "list"):
            raise TypeErr(
                "type", f"cannot compare {left.describe()} with {right.describe()}", node.offset
            )
        if left.kind != right.kind:
            raise TypeErr(
                "type",
                f"cannot compare {left.describe()} ('{E.render(node.left)}') with {right.describe()}",
                node.offset,
            )
        enum = left.values or right.values
        literals = _string_literals(
            node.right if right_node is not None else node.right
        ) + _string_literals(node.left)
        for lit in literals:
            if enum and lit.value not in enum:
                raise TypeErr(
                    "bad-value", f"'{lit.value}' is not one of {', '.join(enum)}", lit.offset
                )


def _string_literals(node: E.Node) -> list[E.Literal]:
    if isinstance(node, E.Literal) and isinstance(node.value, str):
        return [node]
    if isinstance(node, E.ListExpr):
        return [i for i in node.items if isinstance(i, E.Literal) and isinstance(i.value, str)]
    return []
