"""Canonical JSON and digests: the identity of constitutions, facts and decisions.

Canonical form: UTF-8 JSON, keys sorted, no insignificant whitespace, floats as Python's
shortest round-trip repr, integers-valued floats kept as floats (1.0 stays 1.0), NaN/inf
refused. The same value always gives the same bytes in any process.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from typing import Any


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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return encoded(value)[1]


def encoded(value: Any) -> tuple[bytes, str]:
    """The canonical JSON of ``value`` and its digest, for a caller that needs both."""
    text = canonical_json(value)
    return text, "sha256:" + sha256_hex(text)
