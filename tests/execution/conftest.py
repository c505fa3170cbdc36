from __future__ import annotations

import pytest

from tests import postgres
from tests.execution import helpers


@pytest.fixture(scope="session")
def market():
    return helpers.market()


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'alluse.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request, tmp_path):
    """A fresh database per test: a SQLite file, and a new PostgreSQL schema (``tests.postgres``),
    dropped afterwards, so concurrent runs never share tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    yield from postgres.fresh_schema("alluse_x")
