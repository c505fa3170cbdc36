"""``python -m scheduler.clause_map``: docs/clauses.md, the map from every clause of
Constitution v1.3 to the keys and rules that implement it, the scenarios and tests that prove
it, and its status (seed 004's requirement-to-test mapping). Generated from
``constitution/clauses.yaml``, the bundled constitution and ``tests/scenarios``;
``tests/test_clauses.py`` fails when a rule names no clause of the catalogue, an item has no
scenario or test, a key, rule or test it names does not exist, or the file is stale.

A scenario proves a rule when one of its expectations names the rule, or an ``expect`` names
one of the rule's action kinds and the rule fired; an ``expect_not`` naming the kind only
counts in a file that proves the rule positively (its boundary cases).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

from constitution.clauses import Catalogue, Item, load_catalogue
from constitution.load import LoadedConstitution, bundled_path, load_constitution
from engine.records.decision import Decision

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "clauses.md"
SCENARIOS = ROOT / "tests" / "scenarios"
_SECTION = re.compile(r"^§\d+")


def section(clause: str) -> str:
    m = _SECTION.match(clause)
    return m.group(0) if m else clause


def _rule_kinds(c: LoadedConstitution) -> dict[str, set[str]]:
    return {r.id: {e.action for e in r.then if e.action} for r in c.model.rules}


def scenarios_by_rule(c: LoadedConstitution, directory: Path = SCENARIOS) -> dict[str, list[str]]:
    """rule id -> names of the scenarios that prove it."""
    from scheduler.scenarios import load_cases, run_case, scenario_files

    kinds = _rule_kinds(c)
    out: dict[str, list[str]] = defaultdict(list)
    for path in scenario_files([str(directory)]):
        cases = [
            (name, case, _fired(run_case(name, facts, case, c).decision))
            for name, facts, case in load_cases(path)
        ]
        # a file proves a rule by a positive expectation; its "not" cases then count as the
        # rule's boundary (a kind named without a rule in another file's "not" proves nothing)
        positive = {
            r
            for _, case, fired in cases
            for r, rk in kinds.items()
            if _expects(case, r, rk, r in fired)
        }
        for name, case, fired in cases:
            for rule, rk in kinds.items():
                if _expects(case, rule, rk, rule in fired) or (
                    rule in positive and _excludes(case, rule, rk)
                ):
                    out[rule].append(name)
    return out


def _fired(decision: Decision | None) -> set[str]:
    return {f.rule for f in decision.fired} if decision is not None else set()


def _expects(case: dict, rule: str, kinds: set[str], fired: bool) -> bool:
    for e in case.get("expect") or ():
        if e.get("rule") == rule or ("rule" not in e and e.get("kind") in kinds and fired):
            return True
    return any(e.get("rule") == rule for e in case.get("expect_not") or ())


def _excludes(case: dict, rule: str, kinds: set[str]) -> bool:
    return any("rule" not in e and e.get("kind") in kinds for e in case.get("expect_not") or ())


def _rules_of(item: Item, clause: str, rules: dict[str, str]) -> list[str]:
    return sorted(
        r
        for r, cl in rules.items()
        if section(cl) == clause and any(fnmatch(r, p) for p in item.rules)
    )


def _key_exists(data: dict, dotted: str) -> bool:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _test_exists(ref: str) -> bool:
    path, _, name = ref.partition("::")
    file = ROOT / path
    return file.is_file() and (not name or f"def {name}(" in file.read_text("utf-8"))


def problems(cat: Catalogue, c: LoadedConstitution, proved: dict[str, list[str]]) -> list[str]:
    rules = {r.id: r.clause for r in c.model.rules}
    data = c.model.model_dump(mode="json", by_alias=True)
    ids = {cl.id for cl in cat.clauses}
    out = [
        f"rule {r} names clause {cl}, which the catalogue does not have"
        for r, cl in rules.items()
        if section(cl) not in ids
    ]
    covered: set[str] = set()
    for cl in cat.clauses:
        for item in cl.items:
            mine = _rules_of(item, cl.id, rules)
            covered |= set(mine)
            where = f"{cl.id} '{item.text[:50]}'"
            out += [
                f"{where}: no rule matches {p}"
                for p in item.rules
                if not any(fnmatch(r, p) for r in mine)
            ]
            out += [
                f"{where}: no constitution key {k}" for k in item.keys if not _key_exists(data, k)
            ]
            out += [f"{where}: no test {t}" for t in item.tests if not _test_exists(t)]
            if (
                item.status != "out-of-scope"
                and not item.tests
                and not any(proved.get(r) for r in mine)
            ):
                out.append(f"{where}: {item.status} but no scenario or test proves it")
    out += [f"rule {r} ({rules[r]}) is in no clause item" for r in sorted(set(rules) - covered)]
    return out


def render(cat: Catalogue, c: LoadedConstitution, proved: dict[str, list[str]]) -> str:
    rules = {r.id: r.clause for r in c.model.rules}
    counts: dict[str, int] = defaultdict(int)
    for cl in cat.clauses:
        for item in cl.items:
            counts[item.status] += 1
    lines = [
        "# Clause map: Constitution v1.3 -> keys and rules -> scenarios and tests",
        "",
        "Generated by `python -m scheduler.clause_map` from `constitution/clauses.yaml`, the bundled",
        f"constitution ({c.version}) and `tests/scenarios`; `tests/test_clauses.py` keeps it true. Do not edit.",
        "",
        f"Items: {counts['implemented']} implemented, {counts['partial']} partial, {counts['out-of-scope']} out of scope.",
        "",
    ]
    for cl in cat.clauses:
        lines += [
            f"## {cl.id} {cl.title}",
            "",
            "| item | status | keys | rules | scenarios | tests |",
            "|---|---|---|---|---|---|",
        ]
        for item in cl.items:
            mine = _rules_of(item, cl.id, rules)
            files: dict[str, int] = defaultdict(int)
            for r in mine:
                for name in proved.get(r, ()):
                    files[name.split("::")[0]] += 1
            status = item.status + (f": {item.reason}" if item.reason else "")
            lines.append(
                "| "
                + " | ".join(
                    [
                        item.text.replace("|", "/"),
                        status.replace("|", "/"),
                        ", ".join(f"`{k}`" for k in item.keys),
                        ", ".join(f"`{r}`" for r in mine),
                        ", ".join(f"{f} ({n})" for f, n in sorted(files.items())),
                        ", ".join(f"`{t}`" for t in item.tests),
                    ]
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def build() -> tuple[str, list[str]]:
    c = load_constitution(bundled_path())
    cat = load_catalogue()
    proved = scenarios_by_rule(c)
    return render(cat, c, proved), problems(cat, c, proved)


def main() -> int:
    text, found = build()
    for p in found:
        print(f"clause map: {p}", file=sys.stderr)
    OUT.write_text(text + "\n", "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
