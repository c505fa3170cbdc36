from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

from tests.execution import helpers

PG_ENV = "ALLUSE_TEST_PG_URL"


@pytest.fixture(scope="session")
def market():
    return helpers.market()


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'alluse.db'}"


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path):
    """A fresh database per test: a SQLite file, and (when ALLUSE_TEST_PG_URL is set) a new
    PostgreSQL schema, dropped afterwards, so concurrent runs never share tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL run needs {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    psycopg = pytest.importorskip("psycopg")
    schema = f"alluse_x_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_psycopg_url(base), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(_psycopg_url(base), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
