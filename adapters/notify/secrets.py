"""Secrets for the notifiers: read from environment variables, never logged or printed.

Every resolved value is remembered so ``scrub`` can take it out of any text that leaves the
notify adapters (error messages stored in the outbox, printed by ``alluse alerts``). A URL's
path and query are secrets too (a Slack webhook URL *is* its token).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from constitution.errors import InvalidInput, Problem

MASK = "***"


class Secrets:
    def __init__(self, env: Mapping[str, str] | None = None):
        self._env = os.environ if env is None else env
        self._values: set[str] = set()

    def get(self, var: str, where: str = "") -> str:
        value = self._env.get(var, "")
        if not value:
            raise InvalidInput(
                [Problem(where or var, 1, 1, "secret-not-set", "", f"{var} is not set")],
                what="config",
            )
        self._values.add(value)
        parts = urlsplit(value)
        for piece in (parts.path, parts.query, parts.password or ""):
            if len(piece) >= 6:
                self._values.add(piece)
        return value

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


def shown_url(url: str) -> str:
    """Scheme, host and port only: what a URL may show of itself."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
