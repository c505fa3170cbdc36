"""Live only: an order adding risk above governance.approvals.live_order_notional_above waits
for a person; once approved it is placed at the next cycle that still asks for it, up to the
approved notional. Paper ignores the limit. (The pipeline of open_paper_cycle in live mode:
the gate reads the run's mode; the broker is the paper venue.)"""

from __future__ import annotations

from datetime import timedelta

from adapters.storage.approvals_store import SqlApprovalStore
from adapters.storage.audit_store import AuditStore
from constitution.load import bundled_path, load_constitution_text
from engine.clock import WallClock
from engine.cycle.bootstrap import Portfolio, open_portfolio
from engine.execution.approvals import NEEDS_NOTIONAL, parse_policy
from scheduler.cli import main
from scheduler.compose import open_paper_cycle
from tests.execution import helpers

THURSDAY = helpers.WEEK + timedelta(days=3)
LIMIT = 100_000


def _cycle(url: str, mode: str):
    text = (
        bundled_path()
        .read_text("utf-8")
        .replace("live_order_notional_above: null", f"live_order_notional_above: {LIMIT}")
    )
    m = helpers.market()
    cycle, broker, store = open_paper_cycle(
        url,
        m,
        mode=mode,
        constitution=load_constitution_text(text, "notional.yaml"),
        approvals=parse_policy("person"),
    )
    t0 = helpers.at(helpers.WEEK, 9, 40)
    broker.sync(t0, m.snapshot(t0, cycle.symbols, cycle.params))
    open_portfolio(cycle, Portfolio(helpers.CAPITAL, helpers.WEEK), t0, broker.seed_position)
    return cycle, store


def _requests(url: str):
    audit = AuditStore.open(url, WallClock())
    try:
        return SqlApprovalStore(audit).listed(limit=100)
    finally:
        audit.close()


def _gen_puts(store) -> set[str]:
    return {
        o.request.contract.symbol
        for o in store.state.orders.values()
        if o.request.account == "GEN" and o.action_kind == "open_short_put"
    }


def test_live_entries_above_the_notional_wait_for_a_person_and_go_once_approved(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    cycle, store = _cycle(url, "live")
    cycle.run(helpers.at(THURSDAY, 10))
    held = _requests(url)
    assert held and {r.needs for r in held} == {NEEDS_NOTIONAL}
    assert all(r.notional > LIMIT for r in held) and _gen_puts(store) == set()
    waiting = {
        r.action_index for r in cycle.last_plan.rejections if r.reason == "awaiting-approval"
    }
    assert waiting == {r.action_index for r in held}  # each says why nothing was sent

    chosen = held[0]
    assert main(["approvals", "approve", chosen.id, "--reason", "size checked", "--db", url]) == 0
    capsys.readouterr()
    cycle.run(helpers.at(THURSDAY, 10, 20))  # still in Gen's window: the rule asks again

    assert _gen_puts(store) == {chosen.action.symbol}  # only the approved one was placed
    done = {r.id: r for r in _requests(url)}
    assert done[chosen.id].state == "executed"
    assert all(r.state == "pending" for k, r in done.items() if k != chosen.id)


def test_paper_ignores_the_live_notional_limit(tmp_path):
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    cycle, store = _cycle(url, "paper")
    cycle.run(helpers.at(THURSDAY, 10))
    assert _requests(url) == [] and _gen_puts(store)
