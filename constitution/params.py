"""Resolving ``params.a.b.c`` names against a validated constitution."""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import BaseModel

from constitution.suggest import did_you_mean

NOT_PARAMS = ("rules", "meta", "schema_version")


class ParamError(LookupError):
    pass


def resolve(constitution: BaseModel, parts: tuple[str, ...]) -> Any:
    """The value at ``params.<parts>``: a number, string, bool, list or model.

    Times of day become minutes since midnight so they compare with ``clock.minutes_et``.
    """
    if not parts:
        raise ParamError("'params' needs a path, e.g. params.vix.kill_switch")
    if parts[0] in NOT_PARAMS:
        raise ParamError(f"'{parts[0]}' is not a parameter section")
    node: Any = constitution
    walked = ["params"]
    for part in parts:
        node = _step(node, part, ".".join(walked))
        walked.append(part)
    return as_rule_value(node)


def _step(node: Any, part: str, where: str) -> Any:
    if isinstance(node, BaseModel):
        fields = [f for f in type(node).model_fields if f not in NOT_PARAMS]
        if part not in fields:
            hint = did_you_mean(part, fields)
            raise ParamError(f"{where} has no '{part}'{hint} (it has: {', '.join(fields)})")
        return getattr(node, part)
    raise ParamError(f"{where} is a value, not a section; '{part}' cannot follow it")


def as_rule_value(value: Any) -> Any:
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if isinstance(value, tuple | list):
        return [as_rule_value(v) for v in value]
    if isinstance(value, BaseModel):
        return {
            k: as_rule_value(v) for k, v in value.model_dump(mode="python", by_alias=True).items()
        }
    if isinstance(value, dict):
        return {k: as_rule_value(v) for k, v in value.items()}
    return value
