"""The event-driven replay (scheduler.replay) does exactly what the tick-by-tick replay does.

The same synthetic span is replayed twice through the real paper pipeline: once running every
tick, once waking only at scheduled events, working orders and ticks where a decision could
change. Both audit logs must be the same chain record for record (so the same decisions, the
same order and fill links, the same weekly reports with the same cycle counts), and the
orders, fills, ledger and summary the same. Span: 2024-01-02..2024-02-16 (33 sessions, seven
weekly reports, entries in every window, a holiday Monday); the full year 2024, early closes
included, was compared the same way by hand (docs/scheduler.md) - too slow for the suite.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

import pytest

from adapters.storage.audit_store import AuditStore
from engine.clock import WallClock
from scheduler import compose
from scheduler.backtest import run_backtest

FIRST, LAST = date(2024, 1, 2), date(2024, 2, 16)


def _run(bundled, path, skip: bool):
    cycles = []

    def factory(ctx):
        build = compose.paper_cycle_factory(ctx)

        def make(constitution):
            opening = build(constitution)
            cycles.append(opening.cycle)
            return opening

        return make

    url = f"sqlite:///{path}"
    summary = run_backtest(bundled, FIRST, LAST, url, factory, synthetic_seed=7, skip_quiet=skip)
    store = AuditStore.open(url, WallClock())
    rows = list(store.rows())
    store.close()
    return summary, rows, cycles[-1]


@pytest.fixture(scope="module")
def both(bundled, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replays")
    return _run(bundled, tmp / "ticks.db", skip=False), _run(bundled, tmp / "events.db", skip=True)


@pytest.mark.slow
def test_the_event_driven_replay_writes_the_same_audit_chain(both):
    (ticks, tick_rows, _), (events, event_rows, _) = both
    assert events.run < ticks.run // 5  # most ticks were not run at all
    assert events.cycles == ticks.cycles == ticks.run
    assert [r.decision_id for r in event_rows] == [r.decision_id for r in tick_rows]
    assert [r.body for r in event_rows] == [r.body for r in tick_rows]
    assert event_rows[-1].hash == tick_rows[-1].hash  # recorded at the same instants too
    kinds = {r.record_type for r in tick_rows}
    assert kinds == {"decision", "link"} and len(tick_rows) > 200


@pytest.mark.slow
def test_the_event_driven_replay_trades_and_reports_the_same(both):
    (ticks, _, tick_cycle), (events, _, event_cycle) = both

    def orders(cycle):
        return sorted(
            (o.request.client_order_id, o.state, o.filled, o.avg_fill_price)
            for o in cycle.store.state.orders.values()
        )

    assert orders(event_cycle) == orders(tick_cycle) and len(orders(tick_cycle)) > 10
    assert event_cycle.broker.fills() == tick_cycle.broker.fills()
    assert event_cycle.store.state.balances == tick_cycle.store.state.balances
    assert event_cycle.store.state.holdings == tick_cycle.store.state.holdings
    a, b = asdict(events), asdict(ticks)
    for key in ("db_url", "run"):
        a.pop(key), b.pop(key)
    assert a == b and b["trades"] > 0 and b["weeks"] == 7
