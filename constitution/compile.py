"""Compiling validated rules into an engine-neutral IR and durable-rules JSON rulesets.

Steps for each rule:

1. parse ``when`` and every ``set``/``with`` value (constitution.expr), type-check them;
2. fold ``params.*`` into constants; push ``not`` down to comparisons; expand to disjunctive
   normal form (one durable rule per disjunct, ids ``<rule>#<k>``);
3. turn each comparison into an *atom* on one fact alias: ``field OP operand`` where the
   operand is a constant or arithmetic over fields of earlier aliases (durable's join refs);
4. add the implicit joins (position.account = account.id, position.symbol = underlying.symbol);
5. place the rule in a *stratum*: after every rule that sets a derived field it reads.

Derived fields merge by maximum, so within a stratum firing order cannot change the result;
reading a derived field only after all its writers are done makes negation safe (stratified
evaluation, as in Datalog). A cycle among derivations is a validation error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from constitution import expr as E
from constitution import vocabulary as V
from constitution.actions import KINDS, ActionKind
from constitution.params import resolve
from constitution.suggest import did_you_mean
from constitution.typecheck import Checker, TypeErr

if TYPE_CHECKING:
    from constitution.models import Constitution, Rule

T = TypeVar("T")

ALIAS = {"market": "m", "clock": "m", "account": "a", "underlying": "u", "position": "p"}
ALIAS_ORDER = ("m", "a", "u", "p")
FACT_TYPE = {"m": "m", "a": "a", "u": "u", "p": "p"}
MAX_DISJUNCTS = 32
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {
    "==": "!=",
    "!=": "==",
    "<": ">=",
    "<=": ">",
    ">": "<=",
    ">=": "<",
    "in": "not in",
    "not in": "in",
}
_DURABLE_OP = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


@dataclass(frozen=True)
class Where:
    """Which part of a rule a compile error belongs to: ('when',) or ('then', i, 'set', key)."""

    path: tuple[str | int, ...]
    offset: int


class RuleError(Exception):
    def __init__(self, code: str, message: str, where: Where):
        super().__init__(message)
        self.code, self.message, self.where = code, message, where


Constant: TypeAlias = float | int | str | bool


@dataclass(frozen=True, slots=True)
class FieldRef:
    """An operand that reads a field of an earlier alias (a durable join reference)."""

    alias: str
    field: str


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """An operand computed from constants and fields of earlier aliases."""

    op: str  # + - * /
    left: Operand
    right: Operand


# What an atom compares its field with: a constant, the constants of ``in``/``not in``, a
# field of an earlier alias, or arithmetic over those.
Operand: TypeAlias = Constant | tuple[Constant, ...] | FieldRef | Arithmetic


def is_joined(operand: Operand) -> bool:
    """The operand reads another fact's field (a join reference, maybe in arithmetic)."""
    return isinstance(operand, FieldRef | Arithmetic)


def operand_refs(operand: Operand) -> Iterator[FieldRef]:
    """The fields ``operand`` reads, left to right."""
    if isinstance(operand, FieldRef):
        yield operand
    elif isinstance(operand, Arithmetic):
        yield from operand_refs(operand.left)
        yield from operand_refs(operand.right)


@dataclass(frozen=True)
class Atom:
    alias: str
    field: str
    op: str
    operand: Operand
    optional: bool
    source: E.Compare  # as written (params unfolded), for explanations


@dataclass(frozen=True)
class Effect:
    kind: str  # "set" or "action"
    target: str  # dotted derived field, or action kind
    values: tuple[tuple[str, E.Node], ...]  # set: (("", value),) ; action: with-params


@dataclass(frozen=True)
class CompiledRule:
    id: str
    clause: str
    salience: int
    description: str
    aliases: tuple[str, ...]
    disjuncts: tuple[tuple[Atom, ...], ...]
    effects: tuple[Effect, ...]
    reads: frozenset[str]
    writes: frozenset[str]
    stratum: int = 0

    def durable_definitions(self) -> dict[str, dict[str, Any]]:
        return {
            f"{self.id}#{k}": _durable_rule(self, atoms) for k, atoms in enumerate(self.disjuncts)
        }


@dataclass(frozen=True)
class CompiledRules:
    rules: tuple[CompiledRule, ...]
    strata: int
    aliases_by_stratum: tuple[frozenset[str], ...] = field(default=())
    fields_by_stratum: tuple[dict[str, frozenset[str]], ...] = field(default=())

    def stratum(self, k: int) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.stratum == k)


# --- per rule ------------------------------------------------------------------------------


def name_problems(rule: Rule, constitution: Constitution) -> list[RuleError]:
    """Every unknown name in one rule at once - fact fields, params, action kinds and their
    parameters, and expressions that do not parse - so a user fixes them in one round.
    ``compile_rule`` then reports the first type problem of a rule whose names are all known."""
    checker = Checker(constitution)
    out: list[RuleError] = []
    for path, raw in _expressions(rule):
        try:
            node = _value_node(raw, path)
        except RuleError as exc:
            out.append(exc)
            continue
        for name in E.names(node):
            try:
                checker.name_type(name)
            except TypeErr as exc:
                out.append(RuleError(exc.code, exc.message, Where(path, exc.offset)))
    for i, eff in enumerate(rule.then):
        if eff.set is not None:
            continue
        kind = KINDS.get(eff.action or "")  # the model makes an effect a set or an action
        if kind is None:
            out.append(_unknown_action(eff.action, ("then", i, "action")))
            continue
        out += [
            _unknown_param(kind, n, ("then", i, "with", n))
            for n in sorted(eff.with_ or {})
            if n not in kind.params
        ]
    return out


def _expressions(rule: Rule) -> Iterator[tuple[tuple[str | int, ...], str | float | bool]]:
    yield ("when",), rule.when
    for i, eff in enumerate(rule.then):
        for target, raw in (eff.set or {}).items():
            yield ("then", i, "set", target), raw
        for name, raw in sorted((eff.with_ or {}).items()):
            yield ("then", i, "with", name), raw


def _unknown_action(action: str | None, path: tuple[str | int, ...]) -> RuleError:
    hint = did_you_mean(action or "", KINDS)
    return RuleError(
        "unknown-action",
        f"unknown action kind '{action}'{hint} (see docs/actions.md)",
        Where(path, 0),
    )


def _unknown_param(kind: ActionKind, name: str, path: tuple[str | int, ...]) -> RuleError:
    takes = ", ".join(kind.params) or "nothing"
    hint = did_you_mean(name, kind.params)
    return RuleError(
        "unknown-param", f"{kind.name} takes no '{name}'{hint} (it takes: {takes})", Where(path, 0)
    )


def compile_rule(rule: Rule, constitution: Constitution) -> CompiledRule:
    checker = Checker(constitution)
    when = _parse(rule.when, ("when",))
    _typed(lambda: checker.condition(when), ("when",))
    effects, used = _effects(rule, checker)
    used |= {n for n in E.names(when) if not n.is_param}
    disjuncts = _disjuncts(_fold(when, constitution), when)
    aliases = _aliases(used, disjuncts)
    _check_targets(effects, aliases)
    reads = frozenset(n.dotted for n in used if _known(n).origin is V.Origin.DERIVED)
    writes = frozenset(e.target for e in effects if e.kind == "set")
    return CompiledRule(
        rule.id,
        rule.clause,
        rule.salience,
        rule.description,
        aliases,
        disjuncts,
        effects,
        reads,
        writes,
    )


def _parse(text: str, path: tuple[str | int, ...]) -> E.Node:
    try:
        return E.parse(text)
    except E.ExprError as exc:
        raise RuleError("expr-syntax", exc.message, Where(path, exc.offset)) from None


def _typed(check: Callable[[], T], path: tuple[str | int, ...]) -> T:
    try:
        return check()
    except TypeErr as exc:
        raise RuleError(exc.code, exc.message, Where(path, exc.offset)) from None


def _effects(rule: Rule, checker: Checker) -> tuple[tuple[Effect, ...], set[E.Name]]:
    effects: list[Effect] = []
    used: set[E.Name] = set()
    for i, eff in enumerate(rule.then):
        if eff.set is not None:
            for target, raw in eff.set.items():
                path = ("then", i, "set", target)
                node = _value_node(raw, path)
                _check_set(target, node, checker, path)
                used |= {n for n in E.names(node) if not n.is_param}
                effects.append(Effect("set", target, (("", node),)))
            continue
        kind = KINDS.get(eff.action or "")  # the model makes an effect a set or an action
        if kind is None:
            raise _unknown_action(eff.action, ("then", i, "action"))
        values = []
        for name, raw in sorted((eff.with_ or {}).items()):
            path = ("then", i, "with", name)
            if name not in kind.params:
                raise _unknown_param(kind, name, path)
            node = _value_node(raw, path)
            _typed(partial(checker.type_of, node), path)
            used |= {n for n in E.names(node) if not n.is_param}
            values.append((name, node))
        effects.append(Effect("action", kind.name, tuple(values)))
    return tuple(effects), used


def _value_node(raw: str | float | bool, path: tuple[str | int, ...]) -> E.Node:
    if isinstance(raw, bool | int | float):
        return E.Literal(0, raw)
    return _parse(raw, path)


def _check_set(target: str, node: E.Node, checker: Checker, path: tuple[str | int, ...]) -> None:
    f = V.lookup(target)
    if f is None or f.origin is not V.Origin.DERIVED:
        derived = ", ".join(x.dotted for x in V.FIELDS if x.origin is V.Origin.DERIVED)
        raise RuleError(
            "not-derivable",
            f"'{target}' cannot be set by a rule (derived fields: {derived})",
            Where(path, 0),
        )
    t = _typed(lambda: checker.type_of(node), path)
    want = {V.Kind.BOOLEAN: "boolean", V.Kind.ENUM: "string"}.get(f.kind, "number")
    if t.kind != want:
        raise RuleError("type", f"{target} needs a {want}, not {t.describe()}", Where(path, 0))
    if f.kind is V.Kind.ENUM and isinstance(node, E.Literal) and node.value not in f.values:
        raise RuleError(
            "bad-value", f"'{node.value}' is not one of {', '.join(f.values)}", Where(path, 0)
        )


# --- folding and normal form -------------------------------------------------------------


def _fold(node: E.Node, constitution: Constitution) -> E.Node:
    """Replace params by their values and compute constant arithmetic."""
    if isinstance(node, E.Name) and node.is_param:
        return _literal(resolve(constitution, node.parts[1:]), node.offset)
    if isinstance(node, E.ListExpr):
        return E.ListExpr(node.offset, tuple(_fold(i, constitution) for i in node.items))
    if isinstance(node, E.Neg):
        inner = _fold(node.operand, constitution)
        return (
            E.Literal(node.offset, -inner.value)
            if isinstance(inner, E.Literal) and isinstance(inner.value, int | float)
            else E.Neg(node.offset, inner)
        )
    if isinstance(node, E.Arith):
        left, right = _fold(node.left, constitution), _fold(node.right, constitution)
        if isinstance(left, E.Literal) and isinstance(right, E.Literal):
            return E.Literal(node.offset, arith(node.op, left.value, right.value))
        return E.Arith(node.offset, node.op, left, right)
    if isinstance(node, E.Compare):
        return E.Compare(
            node.offset, node.op, _fold(node.left, constitution), _fold(node.right, constitution)
        )
    if isinstance(node, E.And | E.Or):
        return type(node)(node.offset, tuple(_fold(i, constitution) for i in node.items))
    if isinstance(node, E.Not):
        return E.Not(node.offset, _fold(node.operand, constitution))
    return node


def _literal(value: Any, offset: int) -> E.Node:
    if isinstance(value, list):
        return E.ListExpr(offset, tuple(E.Literal(offset, v) for v in value))
    return E.Literal(offset, value)


def arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _push_not(node: E.Node, negate: bool = False) -> E.Node:
    if isinstance(node, E.Not):
        return _push_not(node.operand, not negate)
    if isinstance(node, E.And | E.Or):
        items = tuple(_push_not(i, negate) for i in node.items)
        flip = (E.Or if isinstance(node, E.And) else E.And) if negate else type(node)
        return flip(node.offset, items)
    if isinstance(node, E.Compare):
        return E.Compare(node.offset, _NEGATE[node.op], node.left, node.right) if negate else node
    if isinstance(node, E.Name):  # a boolean field used as a condition
        return E.Compare(node.offset, "==", node, E.Literal(node.offset, not negate))
    if isinstance(node, E.Literal):
        return E.Literal(node.offset, (not node.value) if negate else node.value)
    raise TypeError(type(node).__name__)


def _dnf(node: E.Node) -> list[list[E.Node]]:
    if isinstance(node, E.Or):
        return [c for item in node.items for c in _dnf(item)]
    if isinstance(node, E.And):
        out: list[list[E.Node]] = [[]]
        for item in node.items:
            out = [a + b for a, b in product(out, _dnf(item))]
            if len(out) > MAX_DISJUNCTS:
                break
        return out
    if isinstance(node, E.Literal):
        return [[]] if node.value else []
    return [[node]]


def _disjuncts(folded: E.Node, original: E.Node) -> tuple[tuple[Atom, ...], ...]:
    folded_dnf, original_dnf = _dnf(_push_not(folded)), _dnf(_push_not(original))
    if len(folded_dnf) > MAX_DISJUNCTS:
        raise RuleError(
            "too-complex",
            f"condition expands to more than {MAX_DISJUNCTS} alternatives; split the rule",
            Where(("when",), 0),
        )
    out = []
    for conj, orig in zip(folded_dnf, original_dnf, strict=True):
        atoms: list[Atom] = []
        possible = True
        for cmp, src in zip(conj, orig, strict=True):
            assert isinstance(cmp, E.Compare) and isinstance(src, E.Compare)  # _push_not's output
            atom = _atom(cmp, src)
            if atom is True:
                continue
            if atom is False:
                possible = False
                break
            atoms.append(atom)
        if possible:
            out.append(tuple(atoms))
    return tuple(out)


# --- atoms ---------------------------------------------------------------------------------


def _fact(node: E.Node) -> V.Field | None:
    if isinstance(node, E.Name) and not node.is_param:
        return V.lookup(node.dotted)
    return None


def _known(name: E.Name) -> V.Field:
    """The field a type-checked name reads (the checker has refused unknown names)."""
    f = V.lookup(name.dotted)
    if f is None:
        raise TypeError(f"unknown field {name.dotted}")
    return f


def _refs(node: E.Node) -> set[str]:
    return {ALIAS[n.parts[0]] for n in E.names(node) if not n.is_param}


def _earlier(alias: str) -> set[str]:
    return set(ALIAS_ORDER[: ALIAS_ORDER.index(alias)])


def _atom(cmp: E.Compare, src: E.Compare) -> Atom | bool:
    left, right = _fact(cmp.left), _fact(cmp.right)
    if cmp.op in ("in", "not in"):
        items = _constants(cmp)
        if left is None:
            if isinstance(cmp.left, E.Literal):
                inside = cmp.left.value in [i.value for i in items]
                return inside if cmp.op == "in" else not inside
            raise RuleError(
                "cannot-compile",
                "the left of 'in' must be a fact field",
                Where(("when",), cmp.offset),
            )
        values = [i.value for i in items]
        return Atom(ALIAS[left.entity], V.physical(left), cmp.op, tuple(values), left.optional, src)
    if left is None and right is None:
        if not _refs(cmp.left) and not _refs(cmp.right):
            return _constant_truth(cmp)
        raise _uncompilable(cmp)
    if left is not None and _refs(cmp.right) <= _earlier(ALIAS[left.entity]):
        return Atom(
            ALIAS[left.entity], V.physical(left), cmp.op, _operand(cmp.right), left.optional, src
        )
    if right is not None and _refs(cmp.left) <= _earlier(ALIAS[right.entity]):
        return Atom(
            ALIAS[right.entity],
            V.physical(right),
            _FLIP[cmp.op],
            _operand(cmp.left),
            right.optional,
            src,
        )
    raise _uncompilable(cmp)


def _constants(cmp: E.Compare) -> tuple[E.Literal, ...]:
    """The constants on the right of ``in``/``not in``."""
    items = cmp.right.items if isinstance(cmp.right, E.ListExpr) else ()
    if not items or not all(isinstance(i, E.Literal) for i in items):
        raise RuleError(
            "cannot-compile", "'in' needs a list of constants", Where(("when",), cmp.offset)
        )
    return tuple(i for i in items if isinstance(i, E.Literal))


def _uncompilable(cmp: E.Compare) -> RuleError:
    return RuleError(
        "cannot-compile",
        f"'{E.render(cmp)}': one side must be a single fact field and the other constants or fields of "
        f"more general facts (order: market/clock, account, underlying, position); use a computed field "
        f"such as account.gain_over_base",
        Where(("when",), cmp.offset),
    )


def _constant_truth(cmp: E.Compare) -> bool:
    if not isinstance(cmp.left, E.Literal) or not isinstance(cmp.right, E.Literal):
        raise _uncompilable(cmp)  # folded: without fact fields both sides are constants
    a: Any = cmp.left.value  # the checker compares numbers with numbers, strings with strings
    b: Any = cmp.right.value
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[cmp.op]


def _operand(node: E.Node) -> Operand:
    if isinstance(node, E.Literal):
        return node.value
    if isinstance(node, E.Name):
        f = _known(node)
        return FieldRef(ALIAS[f.entity], V.physical(f))
    if isinstance(node, E.Neg):
        return Arithmetic("*", -1, _operand(node.operand))
    if isinstance(node, E.Arith):
        return Arithmetic(node.op, _operand(node.left), _operand(node.right))
    raise TypeError(type(node).__name__)


def _aliases(used: set[E.Name], disjuncts: tuple[tuple[Atom, ...], ...]) -> tuple[str, ...]:
    aliases = {ALIAS[n.parts[0]] for n in used}
    for atoms in disjuncts:
        for atom in atoms:
            aliases.add(atom.alias)
            aliases |= {r.alias for r in operand_refs(atom.operand)}
    if not aliases:
        aliases = {"m"}
    return tuple(a for a in ALIAS_ORDER if a in aliases)


_BINDABLE: dict[str, Callable[[tuple[str, ...]], bool]] = {
    "market": lambda a: True,
    "clock": lambda a: True,
    "account": lambda a: "a" in a or "p" in a,
    "underlying": lambda a: ("a" in a and "u" in a) or "p" in a,
    "position": lambda a: "p" in a,
}


def _check_targets(effects: tuple[Effect, ...], aliases: tuple[str, ...]) -> None:
    for eff in effects:
        entity = eff.target.split(".")[0] if eff.kind == "set" else KINDS[eff.target].target
        if eff.kind == "set" and entity == "underlying":
            ok = "u" in aliases or "p" in aliases
        else:
            ok = _BINDABLE[entity](aliases)
        if not ok:
            what = f"set {eff.target}" if eff.kind == "set" else f"action {eff.target}"
            raise RuleError(
                "unbound-target",
                f"{what} needs the rule to mention {_needs(entity)}",
                Where(("then",), 0),
            )


def _needs(entity: str) -> str:
    return {
        "account": "an account or position field",
        "underlying": "an account and an underlying field, or a position field",
        "position": "a position field",
    }.get(entity, entity)


# --- durable JSON ------------------------------------------------------------------------


def durable_rule(rule: CompiledRule, atoms: tuple[Atom, ...]) -> dict[str, Any]:
    """The durable-rules definition of one disjunct made of ``atoms`` (the durable runtime
    leaves every comparison between two facts' fields out of the pattern and tests it itself:
    engine/rules/durable.py, P18-P22)."""
    return _durable_rule(rule, atoms)


def _durable_rule(rule: CompiledRule, atoms: tuple[Atom, ...]) -> dict[str, Any]:
    patterns = []
    for alias in rule.aliases:
        conds: list[dict[str, Any]] = [{"t": FACT_TYPE[alias]}]
        if alias == "p" and "a" in rule.aliases:
            conds.append({"acct": {"a": "acct"}})
        if alias == "p" and "u" in rule.aliases:
            conds.append({"sym": {"u": "sym"}})
        for atom in atoms:
            if atom.alias == alias:
                conds.extend(_durable_atom(atom))
        conds.sort(key=_is_alternatives)  # P21: every other condition before any "$or"
        patterns.append({alias: {"$and": conds} if len(conds) > 1 else conds[0]})
    return {"all": patterns, "pri": rule.salience}


def _is_alternatives(cond: dict[str, Any]) -> bool:
    """An ``in`` list's alternatives. durable-rules mis-evaluates a comparison with another
    fact's field that follows an ``$or`` in the same ``$and`` (P21, docs/architecture.md: it
    fired ``position.level > market.vix`` at level 0, VIX 15, after ``symbol in [...]``); put
    after every other condition (the sort is stable), the same pattern decides right."""
    return "$or" in cond


def _durable_atom(atom: Atom) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"$ex": {atom.field: 1}}] if atom.optional else []
    if atom.op in ("in", "not in"):
        assert isinstance(atom.operand, tuple)  # _atom makes the constants of in/not in a tuple
        alts = [{atom.field: v} for v in atom.operand]
        if atom.op == "not in":
            out.extend({"$neq": alt} for alt in alts)
        else:
            out.append(alts[0] if len(alts) == 1 else {"$or": alts})
    elif atom.op == "==":
        out.append({atom.field: _durable_operand(atom.operand)})
    else:
        out.append({_DURABLE_OP[atom.op]: {atom.field: _durable_operand(atom.operand)}})
    return out


def _durable_operand(operand: Operand) -> Any:
    if isinstance(operand, FieldRef):
        return {operand.alias: operand.field}
    if isinstance(operand, Arithmetic):
        return {
            _ARITH[operand.op]: {
                "$l": _durable_operand(operand.left),
                "$r": _durable_operand(operand.right),
            }
        }
    return operand


# --- whole rule sets -----------------------------------------------------------------------


def stratify(rules: list[CompiledRule]) -> tuple[list[CompiledRule], list[tuple[str, list[str]]]]:
    """Assign strata; return the rules and any derivation cycles as (field, rule ids)."""
    writers: dict[str, list[CompiledRule]] = {}
    for r in rules:
        for f in r.writes:
            writers.setdefault(f, []).append(r)
    level: dict[str, int] = {}
    cycles: list[tuple[str, list[str]]] = []

    def visit(rule: CompiledRule, stack: tuple[str, ...]) -> int:
        if rule.id in level:
            return level[rule.id]
        if rule.id in stack:
            chain = [*stack[stack.index(rule.id) :], rule.id]
            cycles.append((rule.id, chain))
            return 0
        deps = [w for f in rule.reads for w in writers.get(f, ())]
        value = 1 + max((visit(w, (*stack, rule.id)) for w in deps), default=-1)
        level[rule.id] = value
        return value

    for r in rules:
        visit(r, ())
    return [_with_stratum(r, level.get(r.id, 0)) for r in rules], _unique_cycles(cycles)


def _with_stratum(rule: CompiledRule, k: int) -> CompiledRule:
    from dataclasses import replace

    return replace(rule, stratum=k)


def _unique_cycles(cycles: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, list[str]]] = []
    for rule_id, chain in cycles:
        key = frozenset(chain)
        if key not in seen:
            seen.add(key)
            out.append((rule_id, chain))
    return out


def assemble(rules: list[CompiledRule]) -> CompiledRules:
    strata = 1 + max((r.stratum for r in rules), default=0)
    by_stratum = tuple(
        frozenset(a for r in rules if r.stratum == k for a in r.aliases) for k in range(strata)
    )
    fields = tuple(_fields_used([r for r in rules if r.stratum == k]) for k in range(strata))
    return CompiledRules(tuple(rules), strata, by_stratum, fields)


def _fields_used(rules: list[CompiledRule]) -> dict[str, frozenset[str]]:
    """Physical fields each alias needs in these rules, so durable is sent only those (P17:
    its cost is JSON per fact, so smaller facts are faster)."""
    out: dict[str, set[str]] = {a: {"t", "id"} for a in ALIAS_ORDER}
    out["a"].add("acct")
    out["u"].add("sym")
    out["p"] |= {"acct", "sym", "key"}
    for r in rules:
        for atoms in r.disjuncts:
            for atom in atoms:
                out[atom.alias].add(atom.field)
                for ref in operand_refs(atom.operand):
                    out[ref.alias].add(ref.field)
    return {a: frozenset(f) for a, f in out.items()}
