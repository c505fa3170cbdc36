"""§5 "the triggers revert" (D16): ``market.hedge_trigger_off_closes`` counts the consecutive
closes, the last included, at which no strategic trigger held - judged by the constitution's
``hedging.triggers`` from the adapter's trigger history."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from adapters.market_data.files import BarMarketData
from engine.market import calendar
from engine.market.facts_builder import build_facts
from engine.market.params import market_params
from engine.market.snapshot import (
    TRIGGER_HISTORY_CLOSES,
    MarketSnapshot,
    Quote,
    TriggerReading,
)
from tests.market.conftest import history, ny

AT = ny(date(2022, 7, 20), 10, 0)
DAYS = calendar.sessions_between(date(2022, 6, 1), date(2022, 7, 19)).astype(date).tolist()


def _snapshot(readings, **changes) -> MarketSnapshot:
    return MarketSnapshot(
        as_of=AT,
        vix=Quote("VIX", 24.0, AT),
        trigger_history=tuple(
            TriggerReading(d, v, dd) for d, (v, dd) in zip(DAYS, readings, strict=False)
        ),
        breadth_above_50dma=0.5,
        **changes,
    )


def _off(bundled, snap: MarketSnapshot) -> int | None:
    facts = build_facts(snap, [], params=market_params(bundled.model))
    return facts.market.hedge_trigger_off_closes


@pytest.mark.parametrize(
    ("drawdown", "off"),
    [(0.20, 2), (0.199, 5)],  # "drawdown >= 20 %": exactly 20 % is a trigger close, 19.9 % is not
)
def test_off_closes_count_back_to_the_last_close_a_drawdown_trigger_held(bundled, drawdown, off):
    readings = [(0, 0.1), (0, 0.1), (0, drawdown), (0, 0.15), (0, 0.12)]
    assert _off(bundled, _snapshot(readings)) == off


@pytest.mark.parametrize(("closes_above", "off"), [(5, 1), (4, 3)])  # vix_days = 5
def test_a_close_with_five_vix_closes_above_30_is_a_trigger_close(bundled, closes_above, off):
    readings = [(0, 0.0), (closes_above, 0.0), (0, 0.0)]
    assert _off(bundled, _snapshot(readings)) == off


def test_the_count_saturates_at_the_history_depth(bundled):
    readings = [(0, 0.0)] * TRIGGER_HISTORY_CLOSES
    assert _off(bundled, _snapshot(readings)) == TRIGGER_HISTORY_CLOSES


@pytest.mark.parametrize(("breadth", "off"), [(0.19, 0), (0.20, 3)])  # breadth < 20 % triggers
def test_breadth_counts_as_it_stands_now(bundled, breadth, off):
    snap = replace(_snapshot([(0, 0.0)] * 3), breadth_above_50dma=breadth)
    assert _off(bundled, snap) == off


def test_without_history_the_count_is_unknown(bundled):
    # the triggers always come with the constitution's market parameters (engine/market/params.py)
    assert _off(bundled, _snapshot([])) is None


def test_an_adapter_that_knows_the_count_directly_gives_it(bundled):
    assert _off(bundled, _snapshot([], hedge_trigger_off_closes=7)) == 7


def test_the_bar_adapter_gives_each_close_as_its_own_snapshot_would(bundled):
    """The last reading is the snapshot's own trigger inputs; each earlier one is what the
    snapshot after that close says (no look-ahead, the same computation)."""
    n = len(DAYS)
    vix = np.where(np.arange(n) % 9 < 6, 33.0, 25.0)
    spx = 4000 * (1 - np.linspace(0.15, 0.24, n))
    bars = {
        "VIX": history("VIX", DAYS, vix),
        "SPX": history("SPX", DAYS, spx),
    }
    market = BarMarketData(bars, index_symbol="SPX", chains=False)
    params = market_params(bundled.model)
    snap = market.snapshot(AT, [], params)
    assert len(snap.trigger_history) == TRIGGER_HISTORY_CLOSES
    last = snap.trigger_history[-1]
    assert (last.day, last.vix_closes_above_30, last.spx_drawdown) == (
        DAYS[-1],
        snap.vix_closes_above_30,
        snap.spx_drawdown,
    )
    for r in snap.trigger_history[-4:-1]:
        after_close = ny(calendar.next_session(r.day), 10, 0)
        then = BarMarketData(bars, index_symbol="SPX", chains=False).snapshot(
            after_close, [], params
        )
        assert (r.vix_closes_above_30, r.spx_drawdown) == (
            then.vix_closes_above_30,
            then.spx_drawdown,
        )
    assert [r.day for r in snap.trigger_history] == DAYS[-TRIGGER_HISTORY_CLOSES:]
    assert snap.trigger_history[0].day > DAYS[0] - timedelta(days=1)
