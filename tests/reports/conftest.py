from __future__ import annotations

import pytest

from tests.reports.backtest import short_backtest


@pytest.fixture(scope="session")
def backtest_db(tmp_path_factory):
    return short_backtest(tmp_path_factory)
