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
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from constitution.canonical import canonical_json, digest
from constitution.compile import CompiledRules, RuleError, assemble, compile_rule, stratify
from constitution.errors import ConstitutionInvalid, InvalidInput, Problem
from constitution.located import pydantic_problems, schema_problems
from constitution.models import SUPPORTED_SCHEMA_VERSIONS, Constitution
from constitution.yamlsafe import Loaded, dotted, load_file, load_text

# Explicit migrations: schema_version N -> N+1, applied to the raw data before validation.
MIGRATIONS: dict[int, callable] = {}


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


def load_constitution(path: str | Path, display: str | None = None) -> LoadedConstitution:
    loaded = load_file(path, display)
    return _validate(loaded)


def load_constitution_text(text: str, source: str) -> LoadedConstitution:
    return _validate(load_text(text, source))


def bundled_path() -> Path:
    return Path(str(resources.files("constitution") / "v1.3.yaml"))


def validate_file(path: str | Path) -> list[Problem]:
    """Every problem in ``path`` (empty when valid)."""
    try:
        load_constitution(path)
    except InvalidInput as exc:
        return list(exc.problems)
    return []


def constitution_digest(model: Constitution) -> str:
    return digest(model.model_dump(mode="json", by_alias=True))


def canonical_bytes(model: Constitution) -> bytes:
    return canonical_json(model.model_dump(mode="json", by_alias=True))


@cache
def json_schema() -> dict:
    return json.loads((resources.files("constitution") / "schema.json").read_text("utf-8"))


def _validate(loaded: Loaded) -> LoadedConstitution:
    data = loaded.data
    if not isinstance(data, dict):
        raise ConstitutionInvalid([loaded.problem((), "type", "a constitution is a mapping of sections")])
    data = _migrate(loaded, data)
    problems = schema_problems(_schema_errors(data), loaded)
    try:
        model = Constitution.model_validate(data)
    except ValidationError as exc:
        problems += _new_only(pydantic_problems(exc, loaded), problems)
        raise ConstitutionInvalid(problems) from None
    if problems:  # the schema is stricter than the model somewhere: report it
        raise ConstitutionInvalid(problems)
    rules = _compile_rules(model, loaded)
    return LoadedConstitution(model, constitution_digest(model), loaded.source, loaded.text, rules)


def _migrate(loaded: Loaded, data: dict) -> dict:
    version = data.get("schema_version")
    if version is None:
        raise ConstitutionInvalid([loaded.problem((), "missing", "schema_version is required (this ALL-USE reads 1)")])
    while isinstance(version, int) and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ConstitutionInvalid(
            [loaded.problem(("schema_version",), "schema-version", f"unknown schema_version {version!r} (this ALL-USE reads {supported})")]
        )
    return data


@cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    # The models have no recursive types, so every $ref can be inlined once; this spares
    # jsonschema a reference lookup at each of thousands of nodes (about half its time).
    schema = json_schema()
    return jsonschema.Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})))


def _inline_refs(node, defs: dict):
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline_refs(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _schema_errors(data: dict):
    for err in _schema_validator().iter_errors(data):
        if err.validator in ("anyOf", "oneOf") and err.context:
            yield best_match(err.context)
        else:
            yield err


def _new_only(candidates: list[Problem], known: list[Problem]) -> list[Problem]:
    """Drop pydantic problems already reported by the schema pass at the same place or below."""
    seen = {p.path for p in known}
    return [p for p in candidates if not any(p.path == s or p.path.startswith(s + ".") or p.path.startswith(s + "[") for s in seen if s)]


def _compile_rules(model: Constitution, loaded: Loaded) -> CompiledRules:
    problems, compiled, first_seen = [], [], {}
    for i, rule in enumerate(model.rules):
        if rule.id in first_seen:
            problems.append(loaded.problem(("rules", i, "id"), "duplicate", f"rule id '{rule.id}' is also rules[{first_seen[rule.id]}]"))
            continue
        first_seen[rule.id] = i
        try:
            compiled.append(compile_rule(rule, model))
        except RuleError as exc:
            problems.append(_rule_problem(loaded, i, exc))
    stratified, cycles = stratify(compiled)
    index = {r.id: i for i, r in enumerate(model.rules)}
    for rule_id, chain in cycles:
        problems.append(loaded.problem(("rules", index[rule_id], "then"), "cycle",
                                       f"derivations form a cycle: {' -> '.join(chain)}"))
    if problems:
        raise ConstitutionInvalid(problems)
    return assemble(stratified)


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
