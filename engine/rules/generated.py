"""Each rule disjunct's matching loop as one generated Python function (issue 18).

``engine.rules.compiled`` tests a binding atom by atom through predicate closures; a closure
call per atom per binding is most of an evaluation's time. Here the same loops - a position
with its own account and its underlying, or accounts x underlyings - are written out as one
function per disjunct, with every atom that compares a field with constants inline
(``a.get('equity') >= C3``). Atoms that read another fact's field (joins, arithmetic) stay the
compiled module's predicates, called from the loop.

What becomes code, and what cannot (docs/decisions.md D210): the generated text holds only
this module's own fixed words, generated local names (``C3``, ``P1``) and the physical field
names of the rule vocabulary (``constitution.vocabulary``, the project's words, checked to be
plain identifiers). No value a user wrote - a threshold, a string, a rule id - is ever part of
the text: constants and predicates reach the function through its namespace. The semantics are
the closures' exactly (a missing value fails every comparison; ``==`` / ``in`` against a
constant need no missing check, a missing value is never equal to one);
``tests/engine/test_generated.py`` compares both on every rule and on random facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from constitution import vocabulary as V
from constitution.compile import ALIAS, Atom, is_joined, operand_refs
from engine.rules.closures import Binding, Explainer, FieldText
from engine.rules.interp import fmt

Bind = Callable[[Any], list[Any]]  # World -> the firings (compiled.Fired) of one disjunct
Explanation = Callable[[Binding], tuple[str, ...]]  # a firing's bindings, one text per atom
Predicate = Callable[[Binding], bool]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
_OPERATORS = {"!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "not in": "not in"}
# the binding a joined atom's predicate is given at each level (what is bound there)
_LEVEL_BINDING = {
    "m": "(m, None, None, None)",
    "a": "(m, a, None, None)",
    "u": "(m, None, u, None)",
}


class _Namespace:
    """The generated function's globals: constants and predicates by generated name."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.values)}"
        self.values[name] = value
        return name


def _field(name: str) -> str:
    if not _IDENTIFIER.match(name):  # vocabulary names only; never a user's text
        raise ValueError(f"not a vocabulary field name: {name!r}")
    return repr(name)


def _test(atom: Atom, var: str, binding: str, ns: _Namespace, predicate: Predicate) -> str:
    """``atom`` as a Python expression over the record ``var`` (or the predicate, joined)."""
    if is_joined(atom.operand):
        return f"{ns.add('P', predicate)}({binding})"
    field = _field(atom.field)
    if atom.op == "==":
        return f"{var}.get({field}) == {ns.add('C', atom.operand)}"
    if atom.op == "in":
        values = atom.operand if isinstance(atom.operand, tuple) else (atom.operand,)
        return f"{var}.get({field}) in {ns.add('C', values)}"
    op = _OPERATORS[atom.op]
    return f"((v := {var}.get({field})) is not None and v {op} {ns.add('C', atom.operand)})"


def _all(tests: Sequence[str]) -> str:
    return " and ".join(tests)


def _reads_account(atom: Atom) -> bool:
    return any(ref.alias == "a" for ref in operand_refs(atom.operand))


# Fields no rule can set: a record's value is the same in every stratum, so an index made when
# a loop first asks for it holds for the whole evaluation (compiled.World.positions_where).
_UNSET_BY_RULES = frozenset(
    (ALIAS[f.entity], V.physical(f)) for f in V.FIELDS if f.origin is not V.Origin.DERIVED
)


def indexed(atom: Atom, alias: str) -> bool:
    """``atom`` picks records of ``alias`` by constant values of a field no rule sets."""
    return (
        atom.alias == alias
        and atom.op in ("==", "in")
        and not is_joined(atom.operand)
        and (alias, atom.field) in _UNSET_BY_RULES
    )


def _allowed(atom: Atom) -> tuple[str, tuple[Any, ...]]:
    values = atom.operand if isinstance(atom.operand, tuple) else (atom.operand,)
    return atom.field, values


class _Levels:
    """One disjunct's atoms as expressions, by what they need bound (``compiled.Levels``).

    The atoms that pick the looped-over records (positions, or the accounts of a rule without
    a position) by constant values of fields no rule sets make the loop's index key
    (``compiled.World.positions_where``/``accounts_where``): the loop visits the records they
    allow, or all of them in a small world, where (``narrowed`` false) it tests them too."""

    def __init__(
        self,
        atoms: Sequence[Atom],
        predicates: Sequence[Predicate],
        ns: _Namespace,
        looped: str | None,
    ):
        by_index = [x for x in atoms if looped is not None and indexed(x, looped)]
        self.index: str | None = (
            ns.add("K", tuple(sorted(_allowed(x) for x in by_index))) if by_index else None
        )
        self.m: list[str] = []
        self.a: list[str] = []
        self.u: list[str] = []
        self.rest: list[str] = []
        rest_u: list[str] = []
        rest_p: list[str] = []
        self.joined_rest = False  # a rest atom's predicate needs the binding as a tuple
        picks: list[str] = []  # the index atoms' tests: held by every record a narrowed loop sees
        for atom, pred in zip(atoms, predicates, strict=True):
            if any(atom is x for x in by_index):
                picks.append(_test(atom, atom.alias, "", ns, pred))  # never joined: no binding
                continue
            rest = atom.alias == "p" or (atom.alias == "u" and _reads_account(atom))
            if rest:
                self.joined_rest |= is_joined(atom.operand)
                (rest_p if atom.alias == "p" else rest_u).append(
                    _test(atom, atom.alias, "b", ns, pred)
                )
            else:
                level = getattr(self, atom.alias)
                level.append(_test(atom, atom.alias, _LEVEL_BINDING[atom.alias], ns, pred))
        self.rest = rest_u + rest_p  # the order compiled.Levels tests them in
        if picks:  # tested only where the world did not narrow the loop (a small world)
            level = self.rest if looped == "p" else self.a
            level.insert(0, f"(narrowed or ({_all(picks)}))")


def _head(levels: _Levels) -> list[str]:
    lines = ["def bind(w):", "    m = w.market"]
    if levels.m:
        lines.append(f"    if not ({_all(levels.m)}):")
        lines.append("        return []")
    return [*lines, "    out = []"]


@dataclass(frozen=True)
class Firer:
    """What the generated loop needs to make a firing (``compiled.Fired``) for each binding:
    the type, the disjunct, and the rule's salience and id for the firing's sort key. The
    rule program itself is given once it exists (``fire_for``)."""

    kind: type
    disjunct: int
    salience: int
    rule_id: str


def _firing(
    ns: _Namespace, firer: Firer, binding: str, account: str, symbol: str, position: str
) -> str:
    """The firing of ``binding`` (compiled.fired's fields, in its order): ``account``,
    ``symbol`` and ``position`` are expressions, or ``None`` where the rule binds none."""
    j, sal, rid = (
        ns.add("J", firer.disjunct),
        ns.add("C", firer.salience),
        ns.add("C", firer.rule_id),
    )
    key = ", ".join(x if x != "None" else '""' for x in (account, symbol, position))
    return (
        f"{ns.add('N', tuple.__new__)}({ns.add('T', firer.kind)}, "
        f"(RP, {j}, {binding}, ({sal}, {rid}, {key}, {j}), {account}, {symbol}, {position}))"
    )


def _append(levels: _Levels, indent: str, binding: str, firing: Callable[[str], str]) -> list[str]:
    """``firing(binding)`` appended to ``out`` when the remaining atoms hold."""
    if not levels.rest:
        return [f"{indent}out.append({firing(binding)})"]
    lines = [f"{indent}b = {binding}"] if levels.joined_rest else []
    target = "b" if levels.joined_rest else binding
    return [*lines, f"{indent}if {_all(levels.rest)}:", f"{indent}    out.append({firing(target)})"]


def _position_source(levels: _Levels, ns: _Namespace, firer: Firer) -> list[str]:
    lines = [*_head(levels), "    usable = {}", "    underlying = w.underlying"]
    if levels.index is None:
        lines.append("    positions_of = w.positions_of")
    else:
        lines.append(f"    positions_of = w.positions_where({levels.index})")
        lines.append("    narrowed = w.narrowed_positions")
    lines.append("    for a in w.accounts:")
    lines += [
        "        ps = positions_of.get(a['acct'])",
        "        if ps is None:",
        "            continue",
    ]
    if levels.a:
        lines += [f"        if not ({_all(levels.a)}):", "            continue"]
    lines += ["        for p in ps:", "            s = p['sym']"]
    lines.append("            u = underlying[s]")
    if levels.u:
        lines += [
            "            ok = usable.get(s)",
            "            if ok is None:",
            f"                ok = usable[s] = bool({_all(levels.u)})",
            "            if not ok:",
            "                continue",
        ]

    def firing(binding: str) -> str:
        return _firing(ns, firer, binding, "a['acct']", "s", "p['key']")

    return [*lines, *_append(levels, "            ", "(m, a, u, p)", firing), "    return out"]


def _pool_source(
    levels: _Levels, aliases: frozenset[str], ns: _Namespace, firer: Firer
) -> list[str]:
    lines = _head(levels)
    if "a" not in aliases:
        lines.append("    accounts = (None,)")
    elif levels.index is None:
        lines.append("    accounts = w.accounts")
    else:
        lines.append(f"    accounts = w.accounts_where({levels.index})")
        lines.append("    narrowed = w.narrowed_accounts")
    if "u" not in aliases:
        lines.append("    underlyings = (None,)")
    elif levels.u:
        lines.append(f"    underlyings = [u for u in w.underlyings if {_all(levels.u)}]")
    else:
        lines.append("    underlyings = w.underlyings")
    lines.append("    for a in accounts:")
    if levels.a:
        lines += [f"        if not ({_all(levels.a)}):", "            continue"]
    lines.append("        for u in underlyings:")
    account = "a['acct']" if "a" in aliases else "None"
    symbol = "u['sym']" if "u" in aliases else "None"

    def firing(binding: str) -> str:
        return _firing(ns, firer, binding, account, symbol, "None")

    return [*lines, *_append(levels, "            ", "(m, a, u, None)", firing), "    return out"]


def generated_source(
    atoms: Sequence[Atom],
    predicates: Sequence[Predicate],
    has_position: bool,
    aliases: frozenset[str],
    firer: Firer | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The disjunct's ``bind`` function as text and the namespace it runs in; None when the
    atoms need an alias the rule does not bind (the closures' path handles that case).
    ``firer``: how it makes each firing (by default plain tuples, for a look at the text)."""
    firer = firer or Firer(tuple, 0, 0, "")
    bound = aliases | {"m"}
    if any(x.alias not in bound for x in atoms) or any(
        ref.alias not in bound for x in atoms for ref in operand_refs(x.operand)
    ):
        return None
    ns = _Namespace()
    looped = "p" if has_position else ("a" if "a" in aliases else None)
    levels = _Levels(atoms, predicates, ns, looped)
    lines = (
        _position_source(levels, ns, firer)
        if has_position
        else _pool_source(levels, aliases, ns, firer)
    )
    return "\n".join(lines) + "\n", ns.values


def binder(
    atoms: Sequence[Atom],
    predicates: Sequence[Predicate],
    has_position: bool,
    aliases: frozenset[str],
    label: str,
    firer: Firer,
) -> Bind | None:
    """The disjunct's generated ``bind(world)``, the firings of the bindings that satisfy
    it; ``label`` names it in tracebacks (a rule's index, never its text). Its firings name
    their rule program once ``fire_for`` has given it."""
    made = generated_source(atoms, predicates, has_position, aliases, firer)
    if made is None:
        return None
    source, namespace = made
    code = compile(source, f"<generated {label}>", "exec")  # the one compile (D210)
    scope: dict[str, Any] = {"__builtins__": {"bool": bool}, "RP": None, **namespace}
    exec(code, scope)  # noqa: S102 - defines bind() in scope, nothing else runs (D210)
    bind: Bind = scope["bind"]
    return bind


def fire_for(bind: Bind, program: Any) -> None:
    """Give ``bind``'s firings their rule program (made after its loops)."""
    bind.__globals__["RP"] = program


# --- explanations ---------------------------------------------------------------------------

_RECORD = ("m", "a", "u", "p")  # the binding's slots, as the generated function names them


def explanation(
    texts: Sequence[FieldText | None], explainers: Sequence[Explainer], label: str
) -> Explanation:
    """A disjunct's explanations (``closures.explainer`` for each atom, the same text) as one
    generated function: each ``FieldText`` atom inline, any other through its explainer.
    The text holds generated names only: the prefixes, suffixes, field names and functions
    reach it through its namespace, as ``bind``'s constants do (D210)."""
    ns = _Namespace()
    show = ns.add("F", fmt)
    parts = []
    for text, explain in zip(texts, explainers, strict=True):
        if text is None:
            parts.append(f"{ns.add('E', explain)}(b)")
            continue
        read = f"{_RECORD[text.slot]}.get({_field(text.name)})"
        parts.append(
            f"{ns.add('T', text.prefix)} + {show}({read})"
            + (f" + {ns.add('T', text.suffix)}" if text.suffix else "")
        )
    source = (
        "def explain(b):\n    m, a, u, p = b\n    return ("
        + "".join(f"{p}, " for p in parts)
        + ")\n"
    )
    code = compile(source, f"<explanation {label}>", "exec")  # D210
    scope: dict[str, Any] = {"__builtins__": {}, **ns.values}
    exec(code, scope)  # noqa: S102 - defines explain() in scope, nothing else runs (D210)
    made: Explanation = scope["explain"]
    return made
