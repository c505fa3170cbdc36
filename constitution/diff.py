"""Semantic diff of two constitutions: parameters by dotted path, rules by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constitution import expr as E
from constitution.load import identity_data
from constitution.models import Constitution


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class RuleChange:
    id: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Diff:
    old_version: str
    new_version: str
    parameters: tuple[Change, ...] = ()
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[RuleChange, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.parameters or self.rules_added or self.rules_removed or self.rules_changed)

    def to_json(self) -> dict:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "parameters": [c.__dict__ for c in self.parameters],
            "rules": {
                "added": list(self.rules_added),
                "removed": list(self.rules_removed),
                "changed": [
                    {"id": r.id, "changes": [c.__dict__ for c in r.changes]}
                    for r in self.rules_changed
                ],
            },
        }


def diff(old: Constitution, new: Constitution) -> Diff:
    # as the digest sees them: a key added after a release (``since``) that a file does not
    # state is absent, so a version stating one shows it (e.g. protocol.covered_call: None -> ...)
    a, b = identity_data(old), identity_data(new)
    a.pop("rules", None)
    b.pop("rules", None)
    params = tuple(Change(p, x, y) for p, x, y in _compare(a, b, ""))
    old_rules = {r.id: _rule_view(r) for r in old.rules}
    new_rules = {r.id: _rule_view(r) for r in new.rules}
    changed = []
    for rid in sorted(old_rules.keys() & new_rules.keys()):
        changes = tuple(Change(p, x, y) for p, x, y in _compare(old_rules[rid], new_rules[rid], ""))
        if changes:
            changed.append(RuleChange(rid, changes))
    return Diff(
        old.meta.version,
        new.meta.version,
        params,
        tuple(sorted(new_rules.keys() - old_rules.keys())),
        tuple(sorted(old_rules.keys() - new_rules.keys())),
        tuple(changed),
    )


def _rule_view(rule) -> dict:
    view = rule.model_dump(mode="json", by_alias=True, exclude={"id"})
    try:  # compare conditions by meaning of layout: whitespace and line breaks do not count
        view["when"] = E.render(E.parse(rule.when))
    except E.ExprError:
        pass
    return view


def _compare(a: Any, b: Any, path: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                yield sub, None, b[key]
            elif key not in b:
                yield sub, a[key], None
            else:
                yield from _compare(a[key], b[key], sub)
    elif a != b or type(a) is not type(b) and not _same_number(a, b):
        yield path, a, b


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and a == b
