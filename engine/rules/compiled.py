"""The compiled evaluator: the constitution's rules as plain Python matchers.

``CompiledRules`` (constitution/compile.py) already holds each rule in normal form: strata,
disjuncts of atoms ``field OP operand`` on one alias, the implicit joins. Here every atom
becomes a predicate closure and every ``set``/``with`` value and explanation a closure
(``engine.rules.closures``), once per constitution digest. An evaluation is then loops over the
fact records: no sessions, no JSON, no per-fact callbacks.

It gives the durable-rules path's Decision byte for byte (``engine.rules.evaluate``):

* the same strata in order, derived values merged by maximum into the records after each
  stratum (a rule reads a derived field only after all its writers ran);
* the same joins (a position with its own account and its underlying; accounts x
  underlyings for rules without a position) and the same "first disjunct per binding";
* the same missing-value semantics (docs/rules.md D8): a comparison with a missing value is
  false; a field the durable session would not carry reads as missing;
* the same order and the same explanations (``engine.rules.explained``).

Each alias's atoms are tested as soon as the alias is bound: an account's before its positions
or the underlyings are looked at. The
durable path stays the shadow that must agree (``engine.rules.shadow``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from constitution import vocabulary as V
from constitution.actions import KINDS
from constitution.compile import (
    ALIAS,
    Arithmetic,
    Atom,
    CompiledRule,
    FieldRef,
    Operand,
    is_joined,
    operand_refs,
)
from constitution.load import LoadedConstitution
from engine.market import calendar as nyse
from engine.rules.closures import (
    COMPARE,
    SLOT,
    UNBOUND,
    Binding,
    Reader,
    Record,
    Scope,
    arith_reader,
    explainer,
    field_text,
    reader,
)
from engine.rules.generated import (
    Bind,
    Explanation,
    Firer,
    binder,
    explanation,
    fire_for,
    indexed,
)
from engine.rules.prepare import Prepared, derived_bottoms

Predicate = Callable[[Binding], bool]


# --- compiling ---------------------------------------------------------------------------------


def _operand_reader(operand: Operand) -> Reader:
    """An atom's operand: a constant, a field of an earlier alias, or arithmetic over them."""
    if isinstance(operand, FieldRef):
        i, name = SLOT[operand.alias], operand.field
        return lambda b: (b[i] or UNBOUND).get(name)
    if isinstance(operand, Arithmetic):
        return arith_reader(
            operand.op, _operand_reader(operand.left), _operand_reader(operand.right)
        )
    return lambda b: operand


def predicate(atom: Atom) -> Predicate:
    """``atom`` as a test on a binding: false when either side is missing."""
    i, name, test = SLOT[atom.alias], atom.field, COMPARE[atom.op]
    if atom.op in ("==", "in") and not _joined(atom):
        constant = atom.operand  # never None: a missing value (None) fails these by itself
        if atom.op == "==":
            return lambda b: (b[i] or UNBOUND).get(name) == constant
        values = constant if isinstance(constant, tuple) else (constant,)  # in: a tuple
        return lambda b: (b[i] or UNBOUND).get(name) in values
    if not _joined(atom):
        constant = atom.operand

        def against_constant(b: Binding) -> bool:
            v = (b[i] or UNBOUND).get(name)
            return v is not None and test(v, constant)

        return against_constant
    other = _operand_reader(atom.operand)

    def against_fields(b: Binding) -> bool:
        v = (b[i] or UNBOUND).get(name)
        if v is None:
            return False
        w = other(b)
        return w is not None and test(v, w)

    return against_fields


def _joined(atom: Atom) -> bool:
    """The operand reads another fact's field (a join reference, maybe in arithmetic)."""
    return is_joined(atom.operand)


def _reads_account(atom: Atom) -> bool:
    return any(ref.alias == "a" for ref in operand_refs(atom.operand))


class Levels(NamedTuple):
    """One disjunct's atoms by what they need bound: each level is tested as soon as it is
    (an account's atoms before its positions; an underlying's own atoms once per evaluation,
    not once per account)."""

    m: tuple[Predicate, ...]
    a: tuple[Predicate, ...]
    u: tuple[Predicate, ...]  # the underlying and constants (or market fields) only
    rest: tuple[Predicate, ...]  # underlying atoms reading the account, then the position's


def _levels(atoms: Sequence[Atom]) -> Levels:
    def on(alias: str, keep: Callable[[Atom], bool] = lambda x: True) -> tuple[Predicate, ...]:
        return tuple(predicate(x) for x in atoms if x.alias == alias and keep(x))

    return Levels(
        on("m"),
        on("a"),
        on("u", lambda x: not _reads_account(x)),
        on("u", _reads_account) + on("p"),
    )


@dataclass(frozen=True)
class SetEffect:
    slot: int
    name: str
    rank: Callable[[Any], float]
    value: Reader


@dataclass(frozen=True)
class ActionEffect:
    kind: str
    with_symbol: bool
    with_position: bool
    params: tuple[tuple[str, Reader], ...]


@dataclass(frozen=True)
class RuleProgram:
    rule: CompiledRule
    has_position: bool
    aliases: frozenset[str]
    disjuncts: tuple[Levels, ...]
    binds: tuple[Bind | None, ...]  # per disjunct, its generated loop (engine.rules.generated)
    explain: tuple[Explanation, ...]  # per disjunct, every atom's text as written
    sets: tuple[SetEffect, ...]
    actions: tuple[ActionEffect, ...]


def _rank(field: V.Field) -> Callable[[Any], float]:
    if field.kind is V.Kind.ENUM:
        order = {v: float(i) for i, v in enumerate(field.values)}
        return lambda v: order[v]
    return lambda v: V.derived_rank(field, v)


def _effects(rule: CompiledRule, scope: Scope) -> tuple[list[SetEffect], list[ActionEffect]]:
    sets, actions = [], []
    for effect in rule.effects:
        if effect.kind == "set":
            field = V.lookup(effect.target)
            assert field is not None  # the compiler checked every target
            value = reader(effect.values[0][1], scope)
            sets.append(
                SetEffect(SLOT[ALIAS[field.entity]], V.physical(field), _rank(field), value)
            )
            continue
        target = KINDS[effect.target].target
        actions.append(
            ActionEffect(
                effect.target,
                target in ("underlying", "position", "market"),
                target in ("position", "market"),
                tuple((name, reader(node, scope)) for name, node in effect.values),
            )
        )
    return sets, actions


def compile_rule(
    constitution: LoadedConstitution, rule: CompiledRule, index: int = 0
) -> RuleProgram:
    visible = constitution.rules.fields_by_stratum[rule.stratum]
    scope = Scope(constitution.model, frozenset(rule.aliases), visible)
    sets, actions = _effects(rule, scope)
    has_position = "p" in rule.aliases
    binds = tuple(
        binder(
            atoms,
            [predicate(x) for x in atoms],
            has_position,
            scope.aliases,
            f"{index}.{j}",
            Firer(Fired, j, rule.salience, rule.id),
        )
        for j, atoms in enumerate(rule.disjuncts)
    )
    program = RuleProgram(
        rule,
        has_position,
        scope.aliases,
        tuple(_levels(atoms) for atoms in rule.disjuncts),
        binds,
        tuple(
            explanation(
                [field_text(x.source, scope) for x in atoms],
                [explainer(x.source, scope) for x in atoms],
                f"{index}.{j}",
            )
            for j, atoms in enumerate(rule.disjuncts)
        ),
        tuple(sets),
        tuple(actions),
    )
    for bind in binds:
        if bind is not None:
            fire_for(bind, program)
    return program


@dataclass(frozen=True)
class Program:
    """A constitution's rules as matchers, stratum by stratum."""

    strata: tuple[tuple[RuleProgram, ...], ...]
    bottoms: dict[str, dict[str, object]]
    derived_names: dict[str, tuple[str, ...]]  # derived fields by alias, sorted
    shift: int
    cadence: nyse.Cadence
    index_fields: dict[str, tuple[str, ...]]  # World.index_fields


def compile_program(constitution: LoadedConstitution) -> Program:
    rules = constitution.rules
    strata = tuple(
        tuple(compile_rule(constitution, r, i) for i, r in enumerate(rules.rules) if r.stratum == k)
        for k in range(rules.strata)
    )
    bottoms = derived_bottoms()
    return Program(
        strata,
        bottoms,
        {a: tuple(sorted(fields)) for a, fields in bottoms.items()},
        constitution.model.cadence.early_close_shift_minutes,
        nyse.cadence_of(constitution.model),
        {alias: _index_fields(rules.rules, alias) for alias in ("a", "p")},
    )


def _index_fields(rules: Sequence[CompiledRule], alias: str) -> tuple[str, ...]:
    """Every field a generated loop's index key may name for ``alias`` (a superset)."""
    return tuple(
        sorted(
            {x.field for r in rules for atoms in r.disjuncts for x in atoms if indexed(x, alias)}
        )
    )


_PROGRAMS: dict[str, Program] = {}
_PROGRAMS_LOCK = threading.Lock()


def program_for(constitution: LoadedConstitution) -> Program:
    """One program per constitution digest (bounded: a process sees few versions)."""
    with _PROGRAMS_LOCK:
        found = _PROGRAMS.get(constitution.digest)
        if found is None:
            if len(_PROGRAMS) > 64:
                _PROGRAMS.clear()
            found = _PROGRAMS[constitution.digest] = compile_program(constitution)
        return found


# --- the world of one evaluation -----------------------------------------------------------------


IndexKey = tuple[tuple[str, tuple[Any, ...]], ...]  # ((field, allowed values), ...), sorted
INDEXED_FROM = 32  # records of one kind from which a world groups them (World)


@dataclass
class World:
    """The fact records of one evaluation, derived fields merged in (they start at bottom).

    ``positions_where``/``accounts_where`` narrow a generated loop (``engine.rules.generated``)
    to the records whose input or computed fields (never a derived one: a rule may set those
    between strata) hold one of a key's allowed values for each of its fields, rather than
    every record for each rule. A world of fewer than ``INDEXED_FROM`` records answers with
    all of them (grouping would cost more than it saves; the loop then tests the key's atoms
    itself); a larger one (``narrowed_positions``/``narrowed_accounts``) groups its records
    once per evaluation by their values of ``index_fields`` (every field some key names),
    when a loop first asks."""

    market: Record
    accounts: tuple[Record, ...]
    underlyings: tuple[Record, ...]
    positions: tuple[Record, ...]
    underlying: dict[str, Record]  # by symbol
    positions_of: dict[str, list[Record]]  # by account id
    index_fields: dict[str, tuple[str, ...]]  # by alias ("a", "p"), sorted
    narrowed_positions: bool  # positions_where answers with only what a key allows
    narrowed_accounts: bool  # accounts_where likewise
    _groups: dict[str, dict[tuple, Any]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    _where: dict[tuple[str, IndexKey], Any] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def positions_where(self, key: IndexKey) -> dict[str, list[Record]]:
        """By account id, the positions ``key`` allows (in a fixed order: the firings are
        sorted afterwards), or all of them."""
        if not self.narrowed_positions:
            return self.positions_of
        found = self._where.get(("p", key))
        if found is None:
            picked = self._picked("p", key)
            found = picked[0] if len(picked) == 1 else _merged(picked)
            self._where["p", key] = found
        return found

    def accounts_where(self, key: IndexKey) -> Sequence[Record]:
        """The accounts ``key`` allows (in a fixed order, as ``positions_where``), or all."""
        if not self.narrowed_accounts:
            return self.accounts
        found = self._where.get(("a", key))
        if found is None:
            picked = self._picked("a", key)
            found = picked[0] if len(picked) == 1 else [r for group in picked for r in group]
            self._where["a", key] = found
        return found

    def _picked(self, alias: str, key: IndexKey) -> list[Any]:
        """The groups of ``alias``'s records (positions by account, or accounts) whose values
        ``key`` allows."""
        fields = self.index_fields[alias]
        groups = self._groups.get(alias)
        if groups is None:
            groups = self._groups[alias] = (
                _grouped_by_account(self.positions, fields)
                if alias == "p"
                else _grouped(self.accounts, fields)
            )
        tests = [(fields.index(name), values) for name, values in key]
        return [
            group
            for values, group in groups.items()
            if all(values[i] in allowed for i, allowed in tests)  # missing (None): never
        ]


def _grouped(records: Sequence[Record], fields: tuple[str, ...]) -> dict[tuple, list[Record]]:
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        groups.setdefault(tuple([r.get(name) for name in fields]), []).append(r)
    return groups


def _grouped_by_account(
    records: Sequence[Record], fields: tuple[str, ...]
) -> dict[tuple, dict[str, list[Record]]]:
    groups: dict[tuple, dict[str, list[Record]]] = {}
    for r in records:
        group = groups.setdefault(tuple([r.get(name) for name in fields]), {})
        group.setdefault(r["acct"], []).append(r)
    return groups


def _merged(groups: Sequence[dict[str, list[Record]]]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for group in groups:
        for account, records in group.items():
            mine = out.get(account)
            if mine is None:
                out[account] = list(records)
            else:
                mine.extend(records)
    return out


def world_of(program: Program, prepared: Prepared) -> World:
    """The world over ``prepared``'s records, which it takes over (each evaluation prepares
    its own): the derived fields' bottoms are merged into them."""
    b = program.bottoms
    market = prepared.market
    market.update(b["m"])
    for records, alias in (
        (prepared.accounts, "a"),
        (prepared.underlyings, "u"),
        (prepared.positions, "p"),
    ):
        for r in records:
            r.update(b[alias])
    positions: dict[str, Record] = {}
    for r in prepared.positions:  # one record per position key, the first (as durable's ids)
        positions.setdefault(r["key"], r)
    positions_of: dict[str, list[Record]] = {}
    for r in positions.values():
        positions_of.setdefault(r["acct"], []).append(r)
    return World(
        market,
        prepared.accounts,
        prepared.underlyings,
        tuple(positions.values()),
        {r["sym"]: r for r in prepared.underlyings},
        positions_of,
        program.index_fields,
        len(positions) >= INDEXED_FROM,
        len(prepared.accounts) >= INDEXED_FROM,
    )


# --- matching --------------------------------------------------------------------------------


class Fired(NamedTuple):
    program: RuleProgram
    disjunct: int
    binding: Binding
    key: tuple  # (salience, rule id, account, symbol, position, disjunct): the durable order
    account: str | None  # the bound account's (or position's account's) id
    symbol: str | None  # the bound position's (or underlying's) symbol
    position: str | None  # the bound position's key


def fired(rp: RuleProgram, disjunct: int, b: Binding) -> Fired:
    a, u, p = b[1], b[2], b[3]
    account = a["acct"] if a is not None else (p["acct"] if p is not None else None)
    symbol = p["sym"] if p is not None else (u["sym"] if u is not None else None)
    position = p["key"] if p is not None else None
    rule = rp.rule
    key = (rule.salience, rule.id, account or "", symbol or "", position or "", disjunct)
    return Fired(rp, disjunct, b, key, account, symbol, position)


def _by_key(f: Fired) -> tuple:
    return f.key


def _holds(tests: Sequence[Predicate], b: Binding) -> bool:
    for t in tests:
        if not t(b):
            return False
    return True


def _position_bindings(d: Levels, w: World) -> list[Binding]:
    """Each position with its own account and its underlying."""
    m = w.market
    out: list[Binding] = []
    usable: dict[str, bool] = {}  # an underlying's own atoms, once per symbol
    for a in w.accounts:
        if d.a and not _holds(d.a, (m, a, None, None)):
            continue
        for p in w.positions_of.get(a["acct"], ()):
            u = w.underlying[p["sym"]]
            if d.u:
                ok = usable.get(p["sym"])
                if ok is None:
                    ok = usable[p["sym"]] = _holds(d.u, (m, None, u, None))
                if not ok:
                    continue
            b = (m, a, u, p)
            for t in d.rest:
                if not t(b):
                    break
            else:
                out.append(b)
    return out


def _pool_bindings(d: Levels, w: World, aliases: frozenset[str]) -> list[Binding]:
    """Accounts x underlyings, those the rule names; the underlyings' own atoms once."""
    m = w.market
    out: list[Binding] = []
    accounts: Sequence[Record | None] = w.accounts if "a" in aliases else (None,)
    underlyings: Sequence[Record | None] = (
        [u for u in w.underlyings if _holds(d.u, (m, None, u, None))] if "u" in aliases else (None,)
    )
    for a in accounts:
        if d.a and not _holds(d.a, (m, a, None, None)):
            continue
        for u in underlyings:
            b = (m, a, u, None)
            for t in d.rest:
                if not t(b):
                    break
            else:
                out.append(b)
    return out


def _firings(rp: RuleProgram, j: int, w: World) -> list[Fired]:
    bind = rp.binds[j]
    if bind is not None:
        return bind(w)  # the generated loop makes the firings itself
    d = rp.disjuncts[j]
    if not _holds(d.m, (w.market, None, None, None)):
        return []
    bindings = _position_bindings(d, w) if rp.has_position else _pool_bindings(d, w, rp.aliases)
    return [fired(rp, j, b) for b in bindings]


def match(rp: RuleProgram, w: World) -> list[Fired]:
    """Every binding that satisfies the rule, with the first disjunct that holds for it."""
    if len(rp.disjuncts) == 1:
        return _firings(rp, 0, w)
    seen: set[tuple[int, int, int]] = set()
    out = []
    for j in range(len(rp.disjuncts)):
        for f in _firings(rp, j, w):
            b = f.binding
            key = (id(b[1]), id(b[2]), id(b[3]))
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def _apply(fired: Fired) -> None:
    """``set`` effects, merged by maximum (order-independent)."""
    for s in fired.program.sets:
        record = fired.binding[s.slot]
        assert record is not None  # the compiler binds every target's entity
        new = s.value(fired.binding)
        if new is not None and s.rank(new) > s.rank(record[s.name]):  # missing sets nothing
            record[s.name] = new


def run(program: Program, w: World) -> list[Fired]:
    """Every firing, stratum by stratum, sorted as the durable path sorts them."""
    out: list[Fired] = []
    for stratum in program.strata:
        found = [f for rp in stratum for f in match(rp, w)]
        found.sort(key=_by_key)
        for f in found:
            if f.program.sets:
                _apply(f)
        out.extend(found)
    out.sort(key=_by_key)
    return out
