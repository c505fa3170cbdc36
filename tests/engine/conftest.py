from __future__ import annotations

from pathlib import Path

import pytest

from constitution.yamlsafe import load_file
from engine.facts.load import facts_from_data
from scheduler.scenarios import _overlay

BASE = Path(__file__).resolve().parents[1] / "scenarios" / "base.yaml"


@pytest.fixture
def facts_with():
    """Facts from the scenario base with an overlay: facts_with({"market": {"vix": 81}})."""
    base = load_file(BASE).data

    def make(overlay: dict | None = None):
        return facts_from_data(_overlay(base, overlay or {}))

    return make
