from __future__ import annotations

import pytest

from scheduler.cadence import spec_from


@pytest.fixture(scope="session")
def spec(bundled):
    return spec_from(bundled.model)
