"""Load and validate a constitution: every problem at once, sorted, located.

Passes, in order (a later pass runs only where the earlier ones leave something to check):

1. bytes -> text -> YAML nodes (constitution.yamlsafe): encoding, syntax, duplicate keys,
   unsafe tags, alias bombs, empty files;
2. ``schema_version``: known, or migrated explicitly;
3. JSON Schema (constitution/schema.json, Draft 2020-12): shape, types, ranges, unknown keys;
4. pydantic models: the same plus cross-field checks (splits sum to 100 %, tiers increase, ...);
5. rules: expression syntax, known fields/params/actions, types, compilability, no cycles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from constitution.actions import KINDS
from constitution.canonical import canonical_json, digest
from constitution.compile import (
    CompiledRule,
    CompiledRules,
    RuleError,
    assemble,
    compile_rule,
    name_problems,
    stratify,
)
from constitution.errors import ConstitutionInvalid, InvalidInput, Problem
from constitution.located import pydantic_problems, schema_problems
from constitution.models import SUPPORTED_SCHEMA_VERSIONS, Constitution
from constitution.yamlsafe import Loaded, dotted, load_file, load_text

# Explicit migrations: schema_version N -> N+1, applied to the raw data before validation.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True)
class LoadedConstitution:
    model: Constitution
    digest: str
    source: str
    text: str
    rules: CompiledRules

    @property
    def version(self) -> str:
        return self.model.meta.version

    def where(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """The (line, column) of ``path`` in this constitution's text (its nearest ancestor's
        when the text does not hold it), for a problem found after loading."""
        return load_text(self.text, self.source).where(path)


def load_constitution(
    path: str | Path, display: str | None = None, *, released_check: bool = True
) -> LoadedConstitution:
    """Load and validate ``path``. A version listed in ``versions.lock`` with other content is
    refused (released versions are immutable); ``released_check=False`` only for reading
    history (replaying a logged decision, checking the lock itself)."""
    loaded = load_file(path, display)
    return _validate(loaded, released_check)


def load_constitution_text(
    text: str, source: str, *, released_check: bool = True
) -> LoadedConstitution:
    return _validate(load_text(text, source), released_check)


def bundled_path() -> Path:
    return Path(str(resources.files("constitution") / "v1.3.yaml"))


def validate_file(path: str | Path) -> list[Problem]:
    """Every problem in ``path`` (empty when valid)."""
    try:
        load_constitution(path)
    except InvalidInput as exc:
        return list(exc.problems)
    return []


def _identity(model: Constitution) -> dict:
    """The model as data for its digest. A key added after a version was released (its field
    says ``since`` in the schema and has a default: the v1.3 text's value) counts only where a
    file states it, so a released version keeps its digest (D23). Such a default never changes:
    a changed default would change what an older file means without changing its digest."""
    return _without_unset_additions(model, model.model_dump(mode="json", by_alias=True))


def _without_unset_additions(model: object, data: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(model, BaseModel) and isinstance(data, dict):
        for name, info in type(model).model_fields.items():
            key = info.alias or name
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if "since" in extra and name not in model.model_fields_set:
                data.pop(key, None)
            elif key in data:
                data[key] = _without_unset_additions(getattr(model, name), data[key])
    elif isinstance(model, tuple | list) and isinstance(data, list):
        return [_without_unset_additions(m, d) for m, d in zip(model, data, strict=False)]
    return data


def identity_data(model: Constitution) -> dict:
    """The model as its digest sees it (keys added after a release only where stated)."""
    return _identity(model)


def constitution_digest(model: Constitution) -> str:
    return digest(_identity(model))


def canonical_bytes(model: Constitution) -> bytes:
    return canonical_json(_identity(model))


@cache
def json_schema() -> dict:
    return json.loads((resources.files("constitution") / "schema.json").read_text("utf-8"))


def _validate(loaded: Loaded, released_check: bool = True) -> LoadedConstitution:
    data = loaded.data
    if not isinstance(data, dict):
        raise ConstitutionInvalid(
            [loaded.problem((), "type", "a constitution is a mapping of sections")]
        )
    data = _migrate(loaded, data)
    problems = schema_problems(_schema_errors(data), loaded)
    try:
        model = Constitution.model_validate(data)
    except ValidationError as exc:
        problems += _new_only(pydantic_problems(exc, loaded), problems)
        model = None
    if problems or model is None:  # the schema is stricter than the model somewhere: report it too
        problems += _rule_problems_despite(problems, data, loaded)
        raise ConstitutionInvalid(_named(_folded(problems), data))
    arbitration = _arbitration_problems(model, loaded)
    try:
        rules = _compile_rules(model, loaded)
    except ConstitutionInvalid as exc:
        raise ConstitutionInvalid(_named(list(exc.problems) + arbitration, data)) from None
    if arbitration:
        raise ConstitutionInvalid(arbitration)
    found = constitution_digest(model)
    if released_check:
        _check_released(model.meta.version, found, loaded)
    return LoadedConstitution(model, found, loaded.source, loaded.text, rules)


def _check_released(version: str, found: str, loaded: Loaded) -> None:
    """Released versions are immutable (§15): the same version with other content is refused,
    located at ``meta.version``, so the remedy (a new version) is where the eye lands."""
    from constitution.versions import locked_digest

    locked = locked_digest(version)
    if locked is None or locked == found:
        return
    raise ConstitutionInvalid(
        [
            loaded.problem(
                ("meta", "version"),
                "released-version-changed",
                f"version {version} is released (constitution/versions.lock, digest {locked}) "
                f"but this content differs (digest {found}): released versions are immutable; "
                "bump meta.version and add a changelog entry to make a new version",
            )
        ]
    )


def _section(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _rule_problems_despite(problems: list[Problem], data: dict, loaded: Loaded) -> list[Problem]:
    """The rules pass, run even though other sections are invalid: each section with a problem
    is replaced by the bundled constitution's for the purpose of checking the rules (their
    params must resolve to something), and rules whose own shape is wrong are left out. So one
    run reports every problem, not one pass's worth."""
    bad = {_section(p.path) for p in problems}
    broken_rules = {_rule_index(p.path) for p in problems if _section(p.path) == "rules"} - {None}
    reference = _bundled_data()
    patched = {k: (reference.get(k) if k in bad and k != "rules" else v) for k, v in data.items()}
    for key in reference:
        if key in bad and key not in patched:
            patched[key] = reference[key]
    rules: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
    kept = [i for i in range(len(rules)) if i not in broken_rules]
    patched["rules"] = [rules[i] for i in kept]
    try:
        model = Constitution.model_validate(patched)
    except ValidationError:
        return []  # the rules cannot be checked until the rest is fixed
    try:
        _compile_rules(model, loaded, index_of=kept)
    except ConstitutionInvalid as exc:
        return list(exc.problems)
    return []


def _rule_index(path: str) -> int | None:
    if not path.startswith("rules["):
        return None
    head = path[len("rules[") :].split("]", 1)[0]
    return int(head) if head.isdigit() else None


@cache
def _bundled_data() -> dict:
    data = load_file(bundled_path()).data
    return data if isinstance(data, dict) else {}


def _folded(problems: list[Problem]) -> list[Problem]:
    """A key reported unknown with a 'did you mean' suggestion is the same mistake as the
    missing key it suggests: report it once."""
    suggested = {
        p.path.rsplit(".", 1)[0] + "." + p.message.split("did you mean '", 1)[1].split("'", 1)[0]
        for p in problems
        if p.code == "unknown-key" and "did you mean '" in p.message and "." in p.path
    }
    return [p for p in problems if not (p.code == "missing" and _missing_path(p) in suggested)]


def _missing_path(p: Problem) -> str:
    key = p.message.split("'", 2)[1] if p.message.count("'") >= 2 else ""
    return f"{p.path}.{key}" if p.path else key


def _named(problems: list[Problem], data: dict) -> list[Problem]:
    """Rules are named by their id, not their index: ``rules[vix.kill_switch].when``."""
    rules: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
    out = []
    for p in problems:
        i = _rule_index(p.path)
        rule = rules[i] if i is not None and i < len(rules) else None
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if isinstance(rule_id, str) and rule_id:
            p = replace(p, path=p.path.replace(f"rules[{i}]", f"rules[{rule_id}]", 1))
        out.append(p)
    return out


def _migrate(loaded: Loaded, data: dict) -> dict:
    version = data.get("schema_version")
    if version is None:
        raise ConstitutionInvalid(
            [loaded.problem((), "missing", "schema_version is required (this ALL-USE reads 1)")]
        )
    while isinstance(version, int) and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ConstitutionInvalid(
            [
                loaded.problem(
                    ("schema_version",),
                    "schema-version",
                    f"unknown schema_version {version!r} (this ALL-USE reads {supported})",
                )
            ]
        )
    return data


@cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    # The models have no recursive types, so every $ref can be inlined once; this spares
    # jsonschema a reference lookup at each of thousands of nodes (about half its time).
    schema = json_schema()
    return jsonschema.Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline_refs(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _schema_errors(data: dict[str, Any]) -> Iterator[jsonschema.ValidationError]:
    for err in _schema_validator().iter_errors(data):
        if err.validator in ("anyOf", "oneOf") and err.context:
            yield best_match(err.context)
        else:
            yield err


def _new_only(candidates: list[Problem], known: list[Problem]) -> list[Problem]:
    """Drop pydantic problems already reported by the schema pass at the same place or below."""
    seen = {p.path for p in known}
    return [
        p
        for p in candidates
        if not any(
            p.path == s or p.path.startswith(s + ".") or p.path.startswith(s + "[")
            for s in seen
            if s
        )
    ]


def _compile_rules(
    model: Constitution, loaded: Loaded, index_of: list[int] | None = None
) -> CompiledRules:
    """``index_of`` maps the model's rules to their index in the file (when some were left out)."""
    problems: list[Problem] = []
    compiled: list[CompiledRule] = []
    first_seen: dict[str, int] = {}
    for j, rule in enumerate(model.rules):
        i = index_of[j] if index_of is not None else j
        if rule.id in first_seen:
            problems.append(
                loaded.problem(
                    ("rules", i, "id"),
                    "duplicate",
                    f"rule id '{rule.id}' is also rules[{first_seen[rule.id]}]",
                )
            )
            continue
        first_seen[rule.id] = i
        unknown = name_problems(rule, model)
        if unknown:
            problems += [_rule_problem(loaded, i, exc) for exc in unknown]
            continue
        try:
            compiled.append(compile_rule(rule, model))
        except RuleError as exc:
            problems.append(_rule_problem(loaded, i, exc))
    stratified, cycles = stratify(compiled)
    index = {r.id: (index_of[j] if index_of is not None else j) for j, r in enumerate(model.rules)}
    for rule_id, chain in cycles:
        problems.append(
            loaded.problem(
                ("rules", index[rule_id], "then"),
                "cycle",
                f"derivations form a cycle: {' -> '.join(chain)}",
            )
        )
    if problems:
        raise ConstitutionInvalid(problems)
    return assemble(stratified)


def _arbitration_problems(model: Constitution, loaded: Loaded) -> list[Problem]:
    """The arbitration section names rules and action kinds that exist, each rule once (D40)."""
    arb = model.arbitration
    if arb is None:
        return []
    out = []
    for i, kind in enumerate(arb.intents):
        target = KINDS[kind].target if kind in KINDS else None
        if target not in ("position", "underlying"):
            why = "not an action kind" if target is None else f"an action on the {target}"
            out.append(
                loaded.problem(
                    ("arbitration", "intents", i),
                    "bad-value",
                    f"'{kind}' is {why}: an intent acts on a position or an account's symbol",
                )
            )
    ids = {r.id for r in model.rules}
    seen: dict[str, str] = {}
    for ci, cls in enumerate(arb.precedence):
        for ri, rule_id in enumerate(cls.rules):
            where = ("arbitration", "precedence", ci, "rules", ri)
            if rule_id not in ids:
                out.append(loaded.problem(where, "unknown-rule", f"no rule '{rule_id}'"))
            elif rule_id in seen:
                out.append(
                    loaded.problem(
                        where, "duplicate", f"rule '{rule_id}' is also in class '{seen[rule_id]}'"
                    )
                )
            seen.setdefault(rule_id, cls.name)
    return out


def _rule_problem(loaded: Loaded, index: int, exc: RuleError) -> Problem:
    path = ("rules", index, *exc.where.path)
    line, col = loaded.where(path)
    values = loaded.value_marks or {}
    if exc.where.path and exc.where.path[0] in ("when", "then") and path in values:
        line, col = _inside_scalar(loaded, *values[path], exc.where.offset)
    return Problem(loaded.source, line, col, exc.code, dotted(path), exc.message)


def _inside_scalar(loaded: Loaded, line: int, col: int, offset: int) -> tuple[int, int]:
    """Point at ``offset`` inside a one-line scalar (plain or quoted) starting at line:col."""
    lines = loaded.text.splitlines()
    if line - 1 >= len(lines):
        return line, col
    first = lines[line - 1][col - 1 : col]
    if first in ("|", ">"):
        return line + 1, col  # block scalars: point at their first line
    return line, col + offset + (1 if first in ("'", '"') else 0)
