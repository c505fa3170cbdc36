"""One evaluation: facts + constitution -> a Decision (pure, deterministic, explained).

Two evaluators give the same Decision, byte for byte:

* ``compiled`` (the default): the rules as Python matchers (``engine.rules.compiled``), the
  explanation assembled from the bound values when the decision is asked for
  (``engine.rules.explained``);
* ``durable``: durable-rules sessions (``engine.rules.durable``), explained by the
  interpreter (``engine.rules.interp``). It is the shadow the compiled path must agree with
  (``engine.rules.shadow``); tests may pass any matcher with ``run_stratum`` (the reference).

Same facts and same constitution give byte-identical ``Decision.to_json()`` in any process:
strata run in order, derived values merge by maximum, firings and actions are sorted by
(salience, rule id, account, symbol, position), never by the engine's timing (P12).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from constitution import vocabulary as V
from constitution.actions import KINDS
from constitution.canonical import canonical_json
from constitution.compile import ALIAS, CompiledRule
from constitution.load import LoadedConstitution
from engine.facts.model import Facts
from engine.market import calendar as nyse
from engine.records.decision import Action, ConstitutionRef, Decision, Firing, decision_id_for
from engine.rules.collector import collector_paused
from engine.rules.compiled import program_for, run, world_of
from engine.rules.durable import MAX_FACTS_PER_SESSION, RawFiring, runtime_for
from engine.rules.explained import Evaluation, FactsIdentity, facts_identity
from engine.rules.interp import Env, explain, value
from engine.rules.prepare import Prepared, derived_bottoms, prepare

Evaluator = Literal["compiled", "durable"]
EVALUATORS: tuple[Evaluator, ...] = ("compiled", "durable")

_ENTITY_KEY = {"m": "id", "a": "acct", "u": "sym", "p": "key"}
_PARAM_CACHE: dict = {}  # constitution digest -> resolved params (immutable values)


def _cadence_for(constitution: LoadedConstitution) -> nyse.Cadence:
    key = ("cadence", constitution.digest)
    if key not in _PARAM_CACHE:
        _PARAM_CACHE[key] = nyse.cadence_of(constitution.model)
    return _PARAM_CACHE[key]


def _params_for(constitution: LoadedConstitution) -> dict:
    if len(_PARAM_CACHE) > 64:  # a long-running daemon sees few versions; keep it bounded
        _PARAM_CACHE.clear()
    return _PARAM_CACHE.setdefault(constitution.digest, {})


class Matcher(Protocol):
    """What runs one stratum's rules over its shards of facts (durable-rules' runtime, or
    ``engine.rules.reference.ReferenceMatcher`` in tests)."""

    def run_stratum(self, k: int, shards: Sequence[Sequence[dict]]) -> list[RawFiring]: ...


@dataclass(frozen=True)
class _Fired:
    rule: CompiledRule
    disjunct: int
    bound: dict[str, dict]

    @property
    def account(self) -> str | None:
        for alias in ("a", "p"):
            if alias in self.bound:
                return self.bound[alias]["acct"]
        return None

    @property
    def symbol(self) -> str | None:
        for alias in ("p", "u"):
            if alias in self.bound:
                return self.bound[alias]["sym"]
        return None

    @property
    def position(self) -> str | None:
        return self.bound["p"]["key"] if "p" in self.bound else None

    def sort_key(self) -> tuple:
        return (
            self.rule.salience,
            self.rule.id,
            self.account or "",
            self.symbol or "",
            self.position or "",
            self.disjunct,
        )


def evaluate(
    constitution: LoadedConstitution,
    facts: Facts,
    matcher: Matcher | None = None,
    *,
    evaluator: Evaluator = "compiled",
    identity: FactsIdentity | None = None,
) -> Decision:
    """Evaluate ``facts`` under ``constitution`` with the compiled matchers or durable-rules.
    A ``matcher`` (tests pass ``engine.rules.reference.ReferenceMatcher``) replaces
    durable-rules' sessions. ``identity`` is ``facts_identity(facts)`` when the caller has it."""
    if matcher is None and evaluator == "compiled":
        return evaluation(constitution, facts, identity).decision
    if evaluator not in EVALUATORS:
        raise ValueError(f"unknown evaluator {evaluator!r} (known: {', '.join(EVALUATORS)})")
    with collector_paused():  # as the compiled path's (engine.rules.collector)
        return _evaluate_sessions(constitution, facts, matcher, identity)


def evaluation(
    constitution: LoadedConstitution, facts: Facts, identity: FactsIdentity | None = None
) -> Evaluation:
    """The compiled evaluator's firings; ``.decision`` explains them when first asked."""
    program = program_for(constitution)
    with collector_paused():
        world = world_of(program, prepare(facts, program.shift, program.cadence))
        return Evaluation(program, constitution, facts, run(program, world), world, identity)


def _evaluate_sessions(
    constitution: LoadedConstitution,
    facts: Facts,
    matcher: Matcher | None,
    identity: FactsIdentity | None,
) -> Decision:
    prepared = prepare(
        facts, constitution.model.cadence.early_close_shift_minutes, _cadence_for(constitution)
    )
    derived = _Derived(prepared)
    runtime = matcher or runtime_for(constitution.digest, constitution.rules)
    fired: list[_Fired] = []
    for k in range(constitution.rules.strata):
        shards = _shards(
            prepared,
            derived,
            constitution.rules.aliases_by_stratum[k],
            constitution.rules.fields_by_stratum[k],
        )
        stratum = _unique(runtime.run_stratum(k, shards), constitution.rules.rules)
        for f in stratum:
            derived.apply(f, constitution)
        fired.extend(stratum)
    fired.sort(key=_Fired.sort_key)
    return _decision(constitution, facts, fired, derived, identity or facts_identity(facts))


def _unique(raw: list[RawFiring], rules: tuple[CompiledRule, ...]) -> list[_Fired]:
    """One firing per (rule, bound facts): disjuncts and shards may repeat a match."""
    best: dict[tuple, _Fired] = {}
    for r in raw:
        rule = rules[r.rule_index]
        key = (rule.id, tuple(sorted((a, f["id"]) for a, f in r.bound.items())))
        if key not in best or r.disjunct < best[key].disjunct:
            best[key] = _Fired(rule, r.disjunct, r.bound)
    return sorted(best.values(), key=_Fired.sort_key)


class _Derived:
    """Derived field values per fact, merged by maximum (order-independent)."""

    def __init__(self, prepared: Prepared):
        bottoms = derived_bottoms()
        self.values: dict[tuple[str, str], dict] = {("m", "m"): dict(bottoms["m"])}
        for alias, records in (
            ("a", prepared.accounts),
            ("u", prepared.underlyings),
            ("p", prepared.positions),
        ):
            for rec in records:
                self.values[(alias, rec[_ENTITY_KEY[alias]])] = dict(bottoms[alias])

    def of(self, alias: str, record: dict) -> dict:
        return self.values[(alias, record[_ENTITY_KEY[alias]])]

    def apply(self, fired: _Fired, constitution: LoadedConstitution) -> None:
        env = Env(self._view(fired.bound), constitution.model, _params_for(constitution))
        for effect in fired.rule.effects:
            if effect.kind != "set":
                continue
            field = V.BY_NAME[effect.target]  # compile_rule refused any other target
            alias = ALIAS[field.entity]
            key = self._target_key(alias, fired)
            new = value(effect.values[0][1], env)
            if new is None:  # a missing value sets nothing (D90)
                continue
            slot = self.values[(alias, key)]
            name = V.physical(field)
            if V.derived_rank(field, new) > V.derived_rank(field, slot[name]):
                slot[name] = new

    def _view(self, bound: dict[str, dict]) -> dict[str, dict]:
        return {
            alias: {**rec, **self.values.get((alias, rec[_ENTITY_KEY[alias]]), {})}
            for alias, rec in bound.items()
        }

    @staticmethod
    def _target_key(alias: str, fired: _Fired) -> str:
        if alias == "m":
            return "m"
        key = fired.account if alias == "a" else fired.symbol if alias == "u" else fired.position
        if key is None:
            raise ValueError(f"{fired.rule.id} sets a field of {alias} without binding it")
        return key


def _project(record: dict, fields: frozenset[str], extra: dict) -> dict:
    merged = {**record, **extra}
    return {k: v for k, v in merged.items() if k in fields}


def _shards(
    prepared: Prepared, derived: _Derived, aliases: frozenset[str], fields: dict
) -> list[list[dict]]:
    """Facts for one stratum, split into sessions of bounded size (P8), whole accounts each."""
    shared = []
    if "m" in aliases:
        shared.append(_project(prepared.market, fields["m"], derived.of("m", prepared.market)))
    if "u" in aliases:
        shared += [_project(u, fields["u"], derived.of("u", u)) for u in prepared.underlyings]
    by_account: dict[str, list[dict]] = {a["acct"]: [] for a in prepared.accounts}
    if "a" in aliases:
        for a in prepared.accounts:
            by_account[a["acct"]].append(_project(a, fields["a"], derived.of("a", a)))
    if "p" in aliases:
        for p in prepared.positions:
            by_account[p["acct"]].append(_project(p, fields["p"], derived.of("p", p)))
    shards, current = [], list(shared)
    for owned in by_account.values():
        if len(current) + len(owned) > MAX_FACTS_PER_SESSION and len(current) > len(shared):
            shards.append(current)
            current = list(shared)
        current.extend(owned)
    shards.append(current)
    return shards


def _decision(
    constitution: LoadedConstitution,
    facts: Facts,
    fired: list[_Fired],
    derived: _Derived,
    identity: FactsIdentity,
) -> Decision:
    facts_json, facts_digest = identity
    firings, actions = [], []
    for f in fired:
        env = Env(derived._view(f.bound), constitution.model, _params_for(constitution))
        bindings = tuple(explain(atom.source, env) for atom in f.rule.disjuncts[f.disjunct])
        firings.append(
            Firing(
                rule=f.rule.id,
                clause=f.rule.clause,
                salience=f.rule.salience,
                account=f.account,
                symbol=f.symbol,
                position=f.position,
                bindings=bindings,
            )
        )
        actions.extend(_actions(f, env, bindings))
    return Decision(
        decision_id=decision_id_for(constitution.digest, facts_digest),
        as_of=facts.as_of.isoformat(),
        constitution=ConstitutionRef(version=constitution.version, digest=constitution.digest),
        facts_digest=facts_digest,
        facts=facts_json,
        derived=_derived_view(derived),
        fired=tuple(firings),
        actions=tuple(_dedupe(actions)),
    )


def _actions(f: _Fired, env: Env, bindings: tuple[str, ...]) -> list[Action]:
    out = []
    reason = f.rule.description + (" [" + "; ".join(bindings) + "]" if bindings else "")
    for effect in f.rule.effects:
        if effect.kind != "action":
            continue
        target = KINDS[effect.target].target
        params = {name: _jsonable(value(node, env)) for name, node in effect.values}
        out.append(
            Action(
                kind=effect.target,
                account=f.account,
                symbol=f.symbol if target in ("underlying", "position", "market") else None,
                position=f.position if target in ("position", "market") else None,
                rule=f.rule.id,
                clause=f.rule.clause,
                salience=f.rule.salience,
                params=params,
                reason=reason,
            )
        )
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return v  # keep floats as floats: canonical JSON stays stable across runs
    return v


def _dedupe(actions: list[Action]) -> list[Action]:
    seen, out = set(), []
    for a in sorted(actions, key=Action.sort_key):
        key = (a.kind, a.rule, a.account, a.symbol, a.position, canonical_json(a.params))
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _derived_view(derived: _Derived) -> dict:
    out: dict = {"market": {}, "accounts": {}, "positions": {}, "underlyings": {}}
    names = {"m": "market", "a": "accounts", "u": "underlyings", "p": "positions"}
    for (alias, key), vals in sorted(derived.values.items()):
        if alias == "m":
            out["market"] = dict(sorted(vals.items()))
        else:
            out[names[alias]][key] = dict(sorted(vals.items()))
    return out
