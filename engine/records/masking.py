"""Masking secrets in audit documents: by RFC 6901 JSON pointers (``*`` matches any key), and by
value (a secret the process knows, such as the IB account codes of a live run, masked wherever
it appears); and masking an account code for display."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"

# Body-relative JSON pointers masked by default. None: no field of the facts, the decision or a
# broker value holds a secret (account ids are ALL-USE's own names: GEN, REV, MINI-1), which
# ``tests/audit/test_secrets.py`` checks against the models. What can carry a secret is a
# value - an IB account code reported for an unmapped account - so a live run masks its codes
# by value (``mask_values``). Deployments may still add pointers of their own.
DEFAULT_MASKS: tuple[str, ...] = ()


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901 JSON pointer -> segments (``~1`` is ``/``, ``~0`` is ``~``)."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/"))


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def mask(document: Any, pointers: Iterable[str]) -> tuple[Any, tuple[str, ...]]:
    """Replace the values at ``pointers`` with ``MASK``; return (new document, concrete
    pointers masked, sorted). The input is not modified. ``*`` matches every key/index."""
    masked: list[str] = []
    for pointer in pointers:
        document = _mask_at(document, parse_pointer(pointer), "", masked)
    return document, tuple(sorted(set(masked)))


def _mask_at(node: Any, segments: tuple[str, ...], here: str, out: list[str]) -> Any:
    if not segments:
        out.append(here)
        return MASK
    head, rest = segments[0], segments[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        if not keys:
            return node
        copy = dict(node)
        for k in keys:
            copy[k] = _mask_at(node[k], rest, f"{here}/{_escape(k)}", out)
        return copy
    if isinstance(node, list):
        indexes: list[int]
        if head == "*":
            indexes = list(range(len(node)))
        elif head.isdigit() and int(head) < len(node):
            indexes = [int(head)]
        else:
            return node
        items = list(node)
        for i in indexes:
            items[i] = _mask_at(node[i], rest, f"{here}/{i}", out)
        return items
    return node


def mask_values(document: Any, secrets: Iterable[str]) -> tuple[Any, tuple[str, ...]]:
    """Replace every string that contains one of ``secrets`` by ``MASK``; return (new
    document, pointers masked, sorted). Keys are not secrets and are kept."""
    wanted = tuple(s for s in secrets if s)
    if not wanted:
        return document, ()
    masked: list[str] = []
    return _mask_strings(document, wanted, "", masked), tuple(sorted(masked))


def _mask_strings(node: Any, secrets: tuple[str, ...], here: str, out: list[str]) -> Any:
    if isinstance(node, str):
        if any(s in node for s in secrets):
            out.append(here)
            return MASK
        return node
    if isinstance(node, dict):
        return {k: _mask_strings(v, secrets, f"{here}/{_escape(k)}", out) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask_strings(v, secrets, f"{here}/{i}", out) for i, v in enumerate(node)]
    return node


def mask_code(code: str) -> str:
    """An account code for display: its first two and last two characters (``DU*****61``)."""
    if len(code) <= 4:
        return "*" * len(code)
    return code[:2] + "*" * (len(code) - 4) + code[-2:]
