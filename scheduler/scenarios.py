"""Constitution scenario files: facts in, expected actions out (like ``opa test`` / Drools test
scenarios, but data only). Format in docs/scenarios.md::

    base: base.yaml                 # optional facts file the overlays apply to
    scenarios:
      - note: VIX 81 trips the kill switch
        facts: {market: {vix: 81}}  # overlay: mappings merge, accounts merge by id, lists replace
        expect: [{kind: kill_switch}]
        expect_not: [{kind: hedged_week}]
        expect_derived: {market.mode: kill}
        expect_superseded: [{rule: assignment.prepare, winner_rule: protocol.l3}]

Expectations are on the decision as a cycle records it: after arbitration (one intent per
position, ``engine.execution.arbitration``); ``expect_superseded`` matches the intents it set
aside (action fields, plus ``winner_rule`` and ``target``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constitution.actions import KINDS
from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution
from constitution.yamlsafe import Loaded, load_file
from engine.cycle.pipeline import after_evaluation
from engine.facts.load import facts_from_data
from engine.records.decision import Decision
from engine.rules.evaluate import Evaluator, evaluate
from engine.rules.prepare import derived_bottoms
from engine.rules.shadow import decide_both

_ACTION_FIELDS = (
    "kind",
    "account",
    "symbol",
    "position",
    "rule",
    "clause",
    "winner_rule",
    "target",
)


@dataclass(frozen=True)
class Result:
    name: str
    passed: bool
    failures: tuple[str, ...] = ()
    decision: Decision | None = field(default=None, compare=False)


def scenario_files(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.yaml") if not f.name.startswith("base"))
        elif p.exists():
            out.append(p)
        else:
            raise InvalidInput(
                [Problem(str(p), 1, 1, "file-not-found", "", "no such scenario file or directory")]
            )
    return out


def load_cases(path: Path) -> list[tuple[str, dict, dict]]:
    """(name, facts data, scenario) for every scenario in ``path``."""
    doc = load_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    base = {}
    if "base" in data:
        base = load_file(path.parent / data["base"]).data
    cases = data.get("scenarios", [data])
    problems = [p for i, case in enumerate(cases) for p in _shape_problems(doc, case, i)]
    if problems:
        raise InvalidInput(problems)  # every scenario's, at once
    out = []
    for i, case in enumerate(cases):
        facts = _overlay(base, case.get("facts", {}))
        name = f"{path.name}::{case.get('note', f'scenario {i}')}"
        out.append((name, facts, case))
    return out


def _shape_problems(doc: Loaded, case: Any, i: int) -> list[Problem]:
    known = {  # "clause": the clause the scenario proves (documentation; rules name their own)
        "note",
        "clause",
        "facts",
        "expect",
        "expect_not",
        "expect_derived",
        "expect_superseded",
    }
    where = ("scenarios", i) if "scenarios" in doc.data else ()
    if not isinstance(case, dict):
        return [doc.problem(where, "type", "a scenario is a mapping")]
    out = [
        doc.problem(
            (*where, k),
            "unknown-key",
            f"unknown scenario key '{k}' (known: {', '.join(sorted(known))})",
        )
        for k in sorted(set(case) - known)
    ]
    if "note" not in case:
        out.append(
            doc.problem(where, "missing", "every scenario needs a 'note' saying what it shows")
        )
    return out + _expectation_problems(doc, case, where) + _derived_problems(doc, case, where)


# What an expectation may name. An unknown key or kind never matches an action: an ``expect``
# with it fails, but an ``expect_not`` with it would pass whatever the rules do.
_AN_ACTION = frozenset(("kind", "account", "symbol", "position", "rule", "clause", "params"))
_MATCHED_BY = {
    "expect": _AN_ACTION,
    "expect_not": _AN_ACTION,
    "expect_superseded": frozenset(_ACTION_FIELDS + ("params",)),  # and what set it aside
}
_DERIVED_OF = {"market": "m", "accounts": "a", "underlyings": "u", "positions": "p"}


def _expectation_problems(doc: Loaded, case: dict, where: tuple) -> list[Problem]:
    out = []
    for key, allowed in _MATCHED_BY.items():
        items = case.get(key) or []
        if not isinstance(items, list):
            out.append(doc.problem((*where, key), "type", f"'{key}' is a list of actions"))
            continue
        for j, item in enumerate(items):
            at = (*where, key, j)
            if not isinstance(item, dict):
                out.append(doc.problem(at, "type", "an expected action is a mapping"))
                continue
            out += [
                doc.problem((*at, k), "unknown-key", f"'{k}' (known: {', '.join(sorted(allowed))})")
                for k in sorted(set(item) - allowed)
            ]
            kind = item.get("kind")
            if kind is not None and kind not in KINDS:
                out.append(doc.problem((*at, "kind"), "unknown-kind", f"no action kind '{kind}'"))
    return out


def _derived_problems(doc: Loaded, case: dict, where: tuple) -> list[Problem]:
    expected = case.get("expect_derived") or {}
    if not isinstance(expected, dict):
        return [doc.problem((*where, "expect_derived"), "type", "a mapping of path: value")]
    names = derived_bottoms()
    out = []
    for path in expected:
        entity, _, field = str(path).partition(".")
        field = field.rpartition(".")[2]
        alias = _DERIVED_OF.get(entity)
        if alias is None or field not in names[alias]:
            known = ", ".join(sorted(names[alias])) if alias else ", ".join(_DERIVED_OF)
            out.append(
                doc.problem(
                    (*where, "expect_derived", path),
                    "unknown-derived",
                    f"no derived value {path} (known{' for ' + entity if alias else ''}: {known})",
                )
            )
    return out


def _overlay(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _overlay(base.get(k), v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(over, list) and _keyed(base) and _keyed(over):
        by_id = {item["id"]: item for item in base}
        merged = [_overlay(by_id[o["id"]], o) if o["id"] in by_id else o for o in over]
        untouched = [b for b in base if b["id"] not in {o["id"] for o in over}]
        return untouched + merged
    return over


def _keyed(items: list) -> bool:
    return all(isinstance(i, dict) and "id" in i for i in items)


def run_case(
    name: str,
    facts_data: dict,
    case: dict,
    constitution: LoadedConstitution,
    evaluator: Evaluator = "compiled",
    shadow: bool = False,
) -> Result:
    """One scenario with one evaluator, or (``shadow``) with both, which must agree."""
    facts = facts_from_data(facts_data, source=name)
    failures = []
    if shadow:
        evaluated, disagreement = decide_both(constitution, facts)
        if disagreement is not None:
            failures.append(f"the evaluators disagree at {disagreement.where}")
    else:
        evaluated = evaluate(constitution, facts, evaluator=evaluator)
    # as a dry run decides: arbitration included
    decision = after_evaluation(constitution, evaluated, None)
    failures += _unknown_rules(case, constitution) + _unmet(case, decision)
    return Result(name, not failures, tuple(failures), decision)


def _unknown_rules(case: dict, constitution: LoadedConstitution) -> list[str]:
    """An expectation naming a rule this constitution does not have fails: it could never
    match, and under ``expect_not`` it would pass whatever the rules do."""
    ids = {r.id for r in constitution.rules.rules}
    named = [
        (key, exp[field])
        for key in _MATCHED_BY
        for exp in case.get(key) or []
        for field in ("rule", "winner_rule")
        if field in exp
    ]
    return [
        f"{key} names rule {rule!r}, which constitution {constitution.version} does not have"
        for key, rule in named
        if rule not in ids
    ]


def _unmet(case: dict, decision: Decision) -> list[str]:
    """What the case expects of the decision and did not get."""
    failures = []
    actions = [a.model_dump() for a in decision.actions]
    for exp in case.get("expect", []) or []:
        if not any(_matches(a, exp) for a in actions):
            failures.append(f"expected {exp}, got {[_brief(a) for a in actions] or 'no actions'}")
    for exp in case.get("expect_not", []) or []:
        hits = [a for a in actions if _matches(a, exp)]
        if hits:
            failures.append(f"did not expect {exp}, but got {[_brief(a) for a in hits]}")
    superseded = [
        {**x.action.model_dump(), "winner_rule": x.winner_rule, "target": x.target}
        for x in decision.superseded
    ]
    for exp in case.get("expect_superseded", []) or []:
        if not any(_matches(x, exp) for x in superseded):
            got = [f"{x['rule']} (won by {x['winner_rule']})" for x in superseded]
            failures.append(f"expected superseded {exp}, got {got or 'none'}")
    for path, want in (case.get("expect_derived") or {}).items():
        got = _dig(decision.derived, path)
        if got != want:
            failures.append(f"derived {path}: expected {want!r}, got {got!r}")
    return failures


def run_scenarios(
    paths: list[str],
    constitution: LoadedConstitution,
    evaluator: Evaluator = "compiled",
    shadow: bool = False,
) -> list[Result]:
    results = []
    for path in scenario_files(paths):
        for name, facts, case in load_cases(path):
            try:
                results.append(run_case(name, facts, case, constitution, evaluator, shadow))
            except InvalidInput as exc:
                results.append(Result(name, False, tuple(p.render() for p in exc.problems)))
    return results


def _matches(action: dict, expected: dict) -> bool:
    for key, want in expected.items():
        if key == "params":
            if not all(action["params"].get(k) == v for k, v in want.items()):
                return False
        elif key in _ACTION_FIELDS:
            if action.get(key) != want:
                return False
        else:
            return False
    return True


def _brief(a: dict) -> str:
    where = "/".join(x for x in (a["account"], a["symbol"]) if x)
    why = a["params"].get("why")
    return f"{a['kind']}({where}{', ' + why if why else ''})"


def _dig(derived: dict, path: str) -> Any:
    """``accounts.GEN.level`` -> derived["accounts"]["GEN"]["level"]; ``market.mode`` too."""
    node: Any = derived
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
