"""The cyclic collector is off during an evaluation and as it was afterwards
(engine.rules.collector), also when the evaluation fails."""

from __future__ import annotations

import gc

import pytest

from engine.rules import evaluate as E
from engine.rules.collector import LARGE, collector_paused


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


class _Node:
    def __init__(self):
        self.other = None


def _made(n: int) -> list[list]:
    return [[k] for k in range(n)]  # n tracked objects (lists are always tracked)


def _in_generation(objs, generation: int) -> bool:
    ids = {id(o) for o in gc.get_objects(generation)}
    return all(id(o) in ids for o in objs)


@pytest.mark.parametrize(("n", "oldest"), [(LARGE + 1000, True), (LARGE - 1000, False)])
def test_a_large_evaluations_survivors_go_to_the_oldest_generation(collector_on, n, oldest):
    """Past ``LARGE`` young objects, the pause's end moves them to the oldest generation
    (no young pass over them); below it (every usual portfolio) they take the usual way."""
    gc.collect()
    with collector_paused():
        kept = _made(n)
    # the oldest at once; else the young pass after the pause moved them one generation up
    assert _in_generation(kept[::997], 2 if oldest else 1)
    assert not _in_generation(kept[:1], 1 if oldest else 2)


def test_a_cycle_moved_to_the_oldest_generation_is_still_collected(collector_on):
    import weakref

    gc.collect()
    with collector_paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: reference counting alone never frees it
        watch = weakref.ref(a)
        kept = _made(LARGE + 1000)
    del a, b
    assert watch() is not None and kept
    gc.collect()  # a full collection walks the oldest generation
    assert watch() is None
