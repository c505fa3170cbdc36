"""Boundary pairs for every threshold the rules compare against (issue 14 item 9, D141).

A *threshold comparison* is a comparison in a rule's condition between a fact and a value of
the constitution (``position.breach_atr >= params.protocol.levels.L2.atr_multiple``). Each one
is a row of ``thresholds.yaml``: the clause, the text's wording, the operator, and two scenarios
that pin it - one with the fact **at** the threshold and one **just past** it, on the side
that flips the comparison. The rule must fire in exactly the one of the two where the
comparison holds (at: for ``>=``/``<=``; past: for ``>``/``<``), so a ``>=`` written where the
text says "above" fails its pair. Comparisons with a literal (``position.dte <= 0``,
``account.quarter_gains > 0``) are structure, not a threshold of the text, and are not rows.

``python -m tests.engine.thresholds`` writes the table as Markdown into docs/thresholds.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from constitution import expr as E
from constitution import vocabulary as V
from constitution.compile import ALIAS
from engine.facts.load import facts_from_data
from engine.market.calendar import cadence_of
from engine.rules.compiled import program_for, run, world_of
from engine.rules.evaluate import evaluate
from engine.rules.interp import Env, value
from engine.rules.prepare import Prepared, prepare
from scheduler.scenarios import load_cases, scenario_files

HERE = Path(__file__).resolve().parent
TABLE = HERE / "thresholds.yaml"
SCENARIOS = HERE.parents[0] / "scenarios"
INCLUSIVE = {">=", "<="}
MIRROR = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


@dataclass(frozen=True)
class Comparison:
    rule: str
    text: str  # the comparison as rendered, fact on the left
    fact: str
    op: str
    threshold: E.Node


def _normalised(node: E.Compare) -> tuple[E.Name, str, E.Node] | None:
    """(fact, op, threshold side) with the fact on the left; None unless fact vs params."""
    for fact, op, other in (
        (node.left, node.op, node.right),
        (node.right, MIRROR[node.op], node.left),
    ):
        if isinstance(fact, E.Name) and not fact.is_param and _has_param(other):
            return fact, op, other
    return None


def _has_param(node: E.Node) -> bool:
    return any(n.is_param for n in E.names(node))


def _compares(node: E.Node, out: list[E.Compare]) -> None:
    if isinstance(node, E.Compare):
        if node.op in MIRROR:
            out.append(node)
        return
    if isinstance(node, E.Not):
        _compares(node.operand, out)
    for item in getattr(node, "items", ()) or ():
        _compares(item, out)


def comparisons(constitution) -> list[Comparison]:
    """Every threshold comparison of the constitution's rules, in rule order."""
    out = []
    for rule in constitution.model.rules:
        found: list[E.Compare] = []
        _compares(E.parse(rule.when), found)
        for node in found:
            norm = _normalised(node)
            if norm is None:
                continue
            fact, op, other = norm
            text = f"{fact.dotted} {op} {E.render(other)}"
            out.append(Comparison(rule.id, text, fact.dotted, op, other))
    return out


def table() -> list[dict]:
    return yaml.safe_load(TABLE.read_text("utf-8"))["thresholds"]


_CASES: dict[str, tuple[dict, dict]] = {}


def case(name: str) -> tuple[dict, dict]:
    """(facts data, scenario) of the scenario ``FILE::note``."""
    if not _CASES:
        _load_all()
    return _CASES[name]


@dataclass(frozen=True)
class Probe:
    """One scenario seen from one comparison: the fact's values per entity and what fired."""

    values: dict[str, Any]  # entity (account, symbol, position key or "market") -> fact value
    threshold: Any
    fired: set[str]  # entities the rule fired for


_DECIDED: dict[tuple[str, str], tuple] = {}


def _decided(constitution, name: str) -> tuple:
    """(prepared facts, decision) of a scenario, once per constitution."""
    key = (constitution.digest, name)
    if key not in _DECIDED:
        facts = facts_from_data(case(name)[0], source=name)
        prepared = prepare(
            facts,
            constitution.model.cadence.early_close_shift_minutes,
            cadence_of(constitution.model),
        )
        _DECIDED[key] = (prepared, evaluate(constitution, facts))
    return _DECIDED[key]


def probe(constitution, comparison: Comparison, name: str) -> Probe:
    prepared, decision = _decided(constitution, name)
    field = V.lookup(comparison.fact)
    alias = ALIAS[field.entity]
    records = {
        "m": [prepared.market],
        "a": list(prepared.accounts),
        "u": list(prepared.underlyings),
        "p": list(prepared.positions),
    }[alias]
    entity = {"m": lambda r: "market", "a": lambda r: r["acct"], "u": lambda r: r["sym"]}.get(
        alias, lambda r: r["key"]
    )
    values = {entity(r): r.get(V.physical(field)) for r in records}
    threshold = value(comparison.threshold, Env({"m": prepared.market}, constitution.model))
    fired = set()
    for f in decision.fired:
        if f.rule != comparison.rule:
            continue
        fired.add(
            {"m": "market", "a": f.account, "u": f.symbol, "p": f.position}[alias] or "market"
        )
    return Probe(values, threshold, fired)


def _near(v: float, t: float, integer: bool) -> bool:
    """Just past: within 1 % of the threshold, or one unit of an integer fact (a minute, a
    contract, a close)."""
    return abs(v - t) <= max(0.01 * abs(t), 1.0 if integer else 0.0) + 1e-9


def _holds(op: str, v: float, t: float) -> bool:
    return {">": v > t, ">=": v >= t, "<": v < t, "<=": v <= t}[op]


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def at_problem(constitution, comparison: Comparison, name: str, exact: bool = True) -> str:
    """Why ``name`` does not pin the threshold from *at* it ("" when it does): some entity has
    the fact at the threshold (``exact=False``: the nearest value the facts can take, on the
    threshold's own side) and the rule fires for it iff the operator includes equality."""
    pr = probe(constitution, comparison, name)
    t, inclusive = pr.threshold, comparison.op in INCLUSIVE
    integer = V.lookup(comparison.fact).kind is V.Kind.INTEGER
    hits = [
        e
        for e, v in pr.values.items()
        if _number(v)
        and (v == t if exact else _near(v, t, integer) and _holds(comparison.op, v, t) == inclusive)
    ]
    if not hits:
        return f"at {name!r}: no {comparison.fact} at {t} (values {pr.values})"
    if any((e in pr.fired) != inclusive for e in hits):
        return f"at {name!r}: {comparison.rule} should {'' if inclusive else 'not '}fire"
    return ""


def past_problem(constitution, comparison: Comparison, name: str) -> str:
    """Why ``name`` does not pin the threshold from *just past* it ("" when it does): some
    entity has the fact just past the threshold on the side that flips the comparison, and the
    rule's firing for it is the opposite of at."""
    pr = probe(constitution, comparison, name)
    t, inclusive = pr.threshold, comparison.op in INCLUSIVE
    integer = V.lookup(comparison.fact).kind is V.Kind.INTEGER
    hits = [
        e
        for e, v in pr.values.items()
        if _number(v)
        and v != t
        and _near(v, t, integer)
        and _holds(comparison.op, v, t) != inclusive
    ]
    if not hits:
        return (
            f"past {name!r}: no {comparison.fact} just past {t} on the side that flips "
            f"'{comparison.op}' (values {pr.values})"
        )
    if any((e in pr.fired) == inclusive for e in hits):
        return f"past {name!r}: {comparison.rule} should {'not ' if inclusive else ''}fire"
    return ""


def flip_problem(constitution, comparison: Comparison, name: str, exact: bool = True) -> str:
    """The *at* scenario with only this fact moved just past the threshold (one unit of an
    integer fact, else 0.1 % of it): the rule's firing for that entity must flip. The same
    facts otherwise, so the boundary itself - not some other condition - decides."""
    prepared, _ = _decided(constitution, name)
    pr = probe(constitution, comparison, name)
    field = V.lookup(comparison.fact)
    alias, physical = ALIAS[field.entity], V.physical(field)
    t = pr.threshold
    integer = field.kind is V.Kind.INTEGER
    step = 1 if integer else max(abs(t) * 0.001, 1e-6)
    past = t - step if comparison.op in (">=", "<") else t + step
    program = program_for(constitution)
    for e, v in pr.values.items():
        if not _number(v) or not (v == t if exact else _near(v, t, integer)):
            continue
        moved = _moved(prepared, alias, e, physical, past)
        after = {
            _entity_of(alias, f)
            for f in run(program, world_of(program, moved))
            if f.program.rule.id == comparison.rule
        }
        if (e in after) == (e in pr.fired):
            return (
                f"at {name!r}: moving {comparison.fact} of {e} from {v} to {past} does not "
                f"flip {comparison.rule} (fires: {e in pr.fired})"
            )
    return ""


def _entity_of(alias: str, f) -> str:
    return {"m": "market", "a": f.account, "u": f.symbol, "p": f.position}[alias] or "market"


def _moved(prepared: Prepared, alias: str, entity: str, physical: str, new) -> Prepared:
    """A copy of ``prepared`` with one record's field set to ``new``."""
    key = {"a": "acct", "u": "sym", "p": "key"}.get(alias)

    def one(r: dict) -> dict:
        r = copy.deepcopy(r)
        if key is None or r.get(key) == entity:
            r[physical] = new
        return r

    return Prepared(
        one(prepared.market) if alias == "m" else copy.deepcopy(prepared.market),
        tuple(one(r) if alias == "a" else copy.deepcopy(r) for r in prepared.accounts),
        tuple(one(r) if alias == "u" else copy.deepcopy(r) for r in prepared.underlyings),
        tuple(one(r) if alias == "p" else copy.deepcopy(r) for r in prepared.positions),
    )


def check_pair(constitution, comparison: Comparison, row: dict) -> list[str]:
    """What is wrong with ``row``'s pair for ``comparison`` (empty: it pins the boundary)."""
    exact = not row.get("inexact")
    problems = [
        at_problem(constitution, comparison, row["at"], exact=exact),
        past_problem(constitution, comparison, row["past"]),
    ]
    if not problems[0]:
        problems.append(flip_problem(constitution, comparison, row["at"], exact=exact))
    return [p for p in problems if p]


def all_names() -> list[str]:
    if not _CASES:
        _load_all()
    return list(_CASES)


def _load_all() -> None:
    for path in scenario_files([str(SCENARIOS)]):
        for n, facts, c in load_cases(path):
            _CASES[n] = (facts, c)


def markdown() -> str:
    lines = [
        "| rule | clause | the text says | comparison | at | just past |",
        "|---|---|---|---|---|---|",
    ]
    for row in table():
        lines.append(
            f"| `{row['rule']}` | {row['clause']} | {row['text']} | `{row['compare']}` | "
            f"{row['at'].split('::')[1]} | {row['past'].split('::')[1]} |"
        )
    return "\n".join(lines)


DOC_HEAD = """# Thresholds and their boundary pairs

Every comparison a rule of `constitution/v1.3.yaml` makes between a fact and a constitution
value, with the clause, what the text says, the operator the rule uses and the two scenarios
(`tests/scenarios/`) that pin it: one **at** the threshold, one **just past** it on the side that
flips the comparison (within 1 % of it, or one unit of an integer fact). The rule fires in
exactly the one where the comparison holds, so an operator that departs from the text's
"above" / "at least" / "below" fails its pair (`tests/engine/test_thresholds.py`; D141). Where
the text gives a band (VIX tiers, protocol levels, entry windows) the rule's complementary bound
is listed with the wording it complements. Generated from `tests/engine/thresholds.yaml` by
`python -m tests.engine.thresholds`.

"""


if __name__ == "__main__":
    (HERE.parents[1] / "docs" / "thresholds.md").write_text(DOC_HEAD + markdown() + "\n", "utf-8")
