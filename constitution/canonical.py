"""Canonical JSON and digests: the identity of constitutions, facts and decisions.

Canonical form: UTF-8 JSON, keys sorted, no insignificant whitespace, floats as Python's
shortest round-trip repr, integers-valued floats kept as floats (1.0 stays 1.0), NaN/inf
refused. The same value always gives the same bytes in any process.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, time
from typing import Any

import orjson


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in canonical JSON")
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    ).encode("utf-8")


# orjson writes a float below 1e-4 as "0.00001" or "-1e-7" where Python writes "1e-05" and
# "-1e-07"; every other finite float, and everything else JSON holds, it writes as the
# standard library does (tests/constitution/test_canonical.py compares both on 60,000 floats
# and on strings of every escape). A text with either form anywhere is encoded again by the
# standard library: a string that merely looks like one costs time, never a different byte.
_SHORT_EXPONENT = re.compile(rb"e-[0-9](?![0-9])")
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def finite_canonical_json(value: Any) -> bytes:
    """``canonical_json(value)`` for data known to hold no NaN or infinity (facts validated by
    their model: orjson would write those as null where ``canonical_json`` refuses them), in a
    sixth of the time. Anything orjson does not write exactly as the standard library (a type
    beyond JSON's own, a non-string key, an integer beyond 64 bits, a tiny float) is
    encoded by ``canonical_json``."""
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return canonical_json(value)
    return canonical_json(value) if _orjson_only(text) else text


def _orjson_only(text: bytes) -> bool:
    """``text`` may hold a float orjson writes otherwise (a search ten times a find's cost,
    so only once the find has seen an "e-")."""
    return b"0.0000" in text or (b"e-" in text and _SHORT_EXPONENT.search(text) is not None)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return encoded(value)[1]


def encoded(value: Any, *, finite: bool = False) -> tuple[bytes, str]:
    """The canonical JSON of ``value`` and its digest, for a caller that needs both;
    ``finite``: ``value`` holds no NaN or infinity (``finite_canonical_json``)."""
    text = finite_canonical_json(value) if finite else canonical_json(value)
    return text, "sha256:" + sha256_hex(text)
