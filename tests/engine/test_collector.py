"""The cyclic collector is off during an evaluation and as it was afterwards
(engine.rules.collector), also when the evaluation fails."""

from __future__ import annotations

import gc

import pytest

from engine.rules import evaluate as E
from engine.rules.collector import collector_paused


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_on_again_after(collector_on):
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the outer one turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_someone_turned_off_stays_off(collector_on):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_on_again_after_a_failure(collector_on):
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_an_evaluation_runs_with_it_paused_and_leaves_it_on(collector_on, bundled, monkeypatch):
    from tests.benchmarks.portfolios import portfolio

    seen = []
    real = E.run
    monkeypatch.setattr(E, "run", lambda *a: seen.append(gc.isenabled()) or real(*a))
    decision = E.evaluate(bundled, portfolio())
    assert seen == [False] and decision.actions and gc.isenabled()
