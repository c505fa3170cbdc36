"""Turning pydantic and jsonschema errors into located ``Problem`` lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import jsonschema

from constitution.errors import Problem
from constitution.suggest import did_you_mean
from constitution.yamlsafe import Loaded

_PYDANTIC_CODES = {
    "missing": "missing",
    "extra_forbidden": "unknown-key",
    "finite_number": "not-finite",
    "greater_than": "range",
    "greater_than_equal": "range",
    "less_than": "range",
    "less_than_equal": "range",
    "literal_error": "bad-value",
    "enum": "bad-value",
    "timezone_aware": "no-offset",
    "value_error": "inconsistent",
    "assertion_error": "inconsistent",
}


class HasErrors(Protocol):
    """A pydantic ``ValidationError``, or a wrapper that rewrites its locations."""

    def errors(self, *, include_url: bool = True) -> Sequence[Mapping[str, Any]]: ...


def pydantic_problems(exc: HasErrors, loaded: Loaded, base: tuple = ()) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        path = (*base, *loc)
        code = _PYDANTIC_CODES.get(
            err["type"],
            "type" if err["type"].endswith("_type") or "parsing" in err["type"] else "invalid",
        )
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if (
            err["type"] not in ("missing", "extra_forbidden")
            and "input" in err
            and not isinstance(err["input"], dict | list)
        ):
            msg = f"{msg} (got {err['input']!r})"
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'"
        out.append(loaded.problem(path, code, msg))
    return out


def _is_union_tag(part: object) -> bool:
    # pydantic adds the chosen union member / function name to loc; users never wrote those
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)


_SCHEMA_CODES = {
    "additionalProperties": "unknown-key",
    "required": "missing",
    "type": "type",
    "minimum": "range",
    "maximum": "range",
    "exclusiveMinimum": "range",
    "exclusiveMaximum": "range",
    "enum": "bad-value",
    "const": "bad-value",
    "pattern": "bad-value",
    "minItems": "range",
    "maxItems": "range",
    "minLength": "range",
}


def schema_problems(errors: Iterable[jsonschema.ValidationError], loaded: Loaded) -> list[Problem]:
    out = []
    for err in errors:
        path = tuple(err.absolute_path)
        code = _SCHEMA_CODES.get(str(err.validator), "schema")
        msg = err.message
        if err.validator == "additionalProperties":
            known = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
            instance = err.instance if isinstance(err.instance, dict) else {}
            for key in sorted(set(instance) - set(known)):
                hint = did_you_mean(str(key), known)
                out.append(loaded.problem((*path, key), code, f"unknown key '{key}'{hint}"))
            continue
        if err.validator == "required":
            msg = err.message.replace("is a required property", "is required")
        out.append(loaded.problem(path, code, msg))
    return out
