"""Shared test helpers. Real history lives beside the project in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def bundled():
    from constitution.load import bundled_path, load_constitution

    return load_constitution(bundled_path())


@pytest.fixture(scope="session")
def bundled_text() -> str:
    from constitution.load import bundled_path

    return bundled_path().read_text("utf-8")
