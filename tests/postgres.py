"""PostgreSQL for the tests: found, not configured.

The base URL is ``ALLUSE_TEST_PG_URL`` when set, else the machine's local server
(``postgresql+psycopg://postgres@127.0.0.1:5432/test``) when it answers. Each test gets a fresh
schema, dropped afterwards, so concurrent runs never share tables. When no server answers the
PostgreSQL tests skip with the reason, except under CI (``CI`` set), where a test that needs
PostgreSQL fails instead: CI never passes with the real database silently left out.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

PG_ENV = "ALLUSE_TEST_PG_URL"
LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@functools.cache
def base_url() -> str | None:
    explicit = os.environ.get(PG_ENV)
    if explicit:
        return explicit
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return LOCAL_URL
    except OSError:
        return None


def require() -> str:
    url = base_url()
    if url is None:
        reason = f"no PostgreSQL: set {PG_ENV} or run a server on 127.0.0.1:5432 (database test, trust auth)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {reason}")
        pytest.skip(reason)
    return url


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0]


def fresh_schema(prefix: str) -> Iterator[str]:
    """A URL whose search_path is a new schema; the schema is dropped when the generator ends."""
    base = require()
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(psycopg_url(base), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(psycopg_url(base), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
