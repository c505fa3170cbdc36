"""The canonical text of the last few decisions' facts, kept by digest.

A decision's facts are encoded twice: once for their digest (the decision's identity,
``engine.rules.explained.facts_identity``) and again inside the decision's audit record. On
a 33-year backtest the second encoding was ~6 % of the run. The text made for the digest is
kept here under that digest (it is, by construction, the text that hashes to it), and the
record splices it in where the decision's facts are the very data it was made from
(``engine.records.audit.draft_decision``); anything else encodes the facts again.
"""

from __future__ import annotations

from typing import Any

KEPT = 8  # a cycle records its decision right after evaluating it; a few cover any overlap
_kept: dict[str, tuple[dict[str, Any], bytes]] = {}


def keep(digest: str, data: dict[str, Any], text: bytes) -> None:
    """``text`` is ``canonical_json(data)`` and ``digest`` its ``sha256:`` digest."""
    _kept.pop(digest, None)
    _kept[digest] = (data, text)
    while len(_kept) > KEPT:
        del _kept[next(iter(_kept))]


def text_of(digest: str, facts: dict[str, Any]) -> bytes | None:
    """The kept text of ``facts`` when they are the data kept under ``digest``: the same keys
    with the very same values (a decision's facts are a copy of that dict, not of its values)."""
    kept = _kept.get(digest)
    if kept is None:
        return None
    data, text = kept
    if len(facts) != len(data) or any(k not in facts or facts[k] is not v for k, v in data.items()):
        return None
    return text
