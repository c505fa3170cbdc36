"""Replay: re-run the decision pipeline on a recorded decision's inputs and compare everything.

The pipeline (evaluate, then every step: arbitration, risk review) is passed in as
``redecide`` (``engine.cycle.pipeline.redecide``): this room may not import the rooms above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from constitution.canonical import canonical_json
from engine.records.audit import AuditRecord
from engine.records.decision import Decision
from engine.records.masking import mask


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplayResult(_Frozen):
    decision_id: str
    identical: bool
    differences: tuple[str, ...] = ()  # in pipeline order: the first is where it went apart
    notes: tuple[str, ...] = ()

    @property
    def first_difference(self) -> str | None:
        """The first differing field's path (``verdicts[2].approved``), or None."""
        return self.differences[0].split(": ", 1)[0] if self.differences else None


# Fields compared when facts were masked: the ids are digests of the (now masked) facts.
_ID_FIELDS = ("decision_id", "facts_digest")


# Top-level fields in the order the pipeline produces them, so the first difference listed is
# the earliest step that went another way (facts before firings before verdicts).
_ORDER = tuple(Decision.model_fields)


def replay(
    record: AuditRecord,
    constitution_text: str,
    load: Callable[[str, str], Any],
    redecide: Callable[[Any, Decision], Decision],
) -> ReplayResult:
    """Re-run the pipeline on the stored inputs under the stored constitution and compare.

    The new decision is masked with the same pointers before comparing, so masked values
    compare equal. When facts were masked, the ids (digests of the facts) cannot match and
    are left out of the comparison, with a note saying so."""
    stored = record.decision
    if stored is None:
        raise ValueError(
            f"record {record.seq} is a {record.record_type.value} record, not a decision"
        )
    constitution = load(constitution_text, f"audit:{stored.constitution.digest}")
    fresh = redecide(constitution, stored)
    fresh_doc, _ = mask({"decision": fresh.model_dump(mode="json")}, record.masked)
    old, new = record.body["decision"], fresh_doc["decision"]
    facts_masked = any(p.startswith("/decision/facts") for p in record.masked)
    skip = _ID_FIELDS if facts_masked else ()
    keys = sorted(set(old) | set(new), key=lambda k: (_rank(k), k))
    diffs = tuple(
        d for key in keys if key not in skip for d in _diff(key, old.get(key), new.get(key))
    )
    notes = (
        ("facts were masked: decision_id and facts_digest not compared",) if facts_masked else ()
    )
    return ReplayResult(
        decision_id=stored.decision_id, identical=not diffs, differences=diffs, notes=notes
    )


def _rank(key: str) -> int:
    return _ORDER.index(key) if key in _ORDER else len(_ORDER)


def _diff(path: str, old: Any, new: Any) -> list[str]:
    """Readable differences between two JSON values, down to the first differing leaves."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted(set(old) | set(new))
            for d in _diff(f"{path}.{k}", old.get(k), new.get(k))
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in _diff(f"{path}[{i}]", a, b)
        ]
    return [f"{path}: recorded {_short(old)}, replayed {_short(new)}"]


def _short(value: Any, limit: int = 200) -> str:
    text = canonical_json(value).decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."
