"""Shared fixtures for the market-data tests: real history (when present) and small builders."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pytest

from engine.facts.model import NEW_YORK
from engine.market.snapshot import DailyHistory

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real history {path} is absent (it lives beside the repository, not in it)")
    return path


def ny(day: date, hh: int = 10, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=NEW_YORK)


def history(symbol: str, days, close, high=None, low=None, open_=None, volume=None) -> DailyHistory:
    n = len(close)
    nan = np.full(n, np.nan)
    close_only = high is None
    return DailyHistory(
        symbol,
        np.array([np.datetime64(d, "D") for d in days]),
        nan
        if open_ is None and close_only
        else np.asarray(open_ if open_ is not None else close, float),
        nan if close_only else np.asarray(high, float),
        nan if close_only else np.asarray(low, float),
        np.asarray(close, float),
        nan if volume is None else np.asarray(volume, float),
        close_only=close_only,
    )


@pytest.fixture(scope="session")
def vix_csv() -> Path:
    return shared_file("vix-daily.csv")


@pytest.fixture(scope="session")
def spx_csv() -> Path:
    return shared_file("spx-daily-close.csv")
