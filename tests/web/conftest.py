from __future__ import annotations

import pytest

from tests.reports.backtest import short_backtest
from tests.waiting import wait_until
from tests.web.server import ready, serving


@pytest.fixture(scope="session")
def backtest_db(tmp_path_factory):
    return short_backtest(tmp_path_factory)


@pytest.fixture(scope="module")
def server(backtest_db):
    """A dashboard on the short backtest's database, ready (its chain verified)."""
    with serving(backtest_db) as base:
        wait_until(lambda: ready(base), 60, "the start-up chain verification")
        yield base
