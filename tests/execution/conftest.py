from __future__ import annotations

import pytest

from tests.execution import helpers


@pytest.fixture(scope="session")
def market():
    return helpers.market()


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'alluse.db'}"
