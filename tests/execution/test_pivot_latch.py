"""§0/§2 drawdown pivot "covered calls only until recovery" (issue 14 item 5, D7): the pivot is
latched in the ledger when it fires (a flag, recorded once with the reason), the facts carry it
as ``account.pivot_latched``, ``pivot.hold`` keeps CSPs suspended until recovery and
``pivot.recovered`` releases it (recorded). Rules, risk guard, planner and ledger are the real
ones; the scenarios (tests/scenarios/pivot_latch.yaml) cover the boundaries."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from constitution.yamlsafe import load_file
from engine.cycle.pipeline import after_evaluation
from engine.execution import planner
from engine.execution.ledger import LedgerState, OpenAccount, SetFlag, apply_all
from engine.execution.ledger_view import ledger_facts, pivot_flag
from engine.execution.risk import GuardState, Limits
from engine.facts.load import facts_from_data
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot
from engine.rules.evaluate import evaluate
from scheduler.scenarios import _overlay
from tests.engine.conftest import BASE

NY = ZoneInfo("America/New_York")
AT = datetime(2026, 11, 17, 12, tzinfo=NY)


def _decide(bundled, gen: dict, vix: float = 18.0, guard: GuardState | None = None):
    facts = facts_from_data(
        _overlay(load_file(BASE).data, {"market": {"vix": vix}, "accounts": [{"id": "GEN", **gen}]})
    )
    return after_evaluation(bundled, evaluate(bundled, facts), guard or GuardState())


def _plan(bundled, decision, state: LedgerState):
    view = MarketView(MarketSnapshot(as_of=AT))
    return planner.plan(bundled.model, decision, state, view, Limits("active", 1.0), {})


def _ledger() -> LedgerState:
    state, _ = apply_all(LedgerState(), [OpenAccount("o", "GEN", "gen", date(2026, 1, 2))])
    return state


def _flags(plan) -> list[SetFlag]:
    return [op for op in plan.ops if isinstance(op, SetFlag)]


def test_a_pivot_is_latched_once_and_holds_until_recovery_then_is_released(bundled):
    state = _ledger()
    # 15 % below the high: the §2 pivot fires and is recorded with its reason
    fired = _decide(bundled, {"equity": 340000, "high_water_mark": 400000})
    assert [a.rule for a in fired.actions if a.kind == "suspend_csp"] == ["pivot.drawdown_gen"]
    [on] = _flags(_plan(bundled, fired, state))
    assert on.name == pivot_flag("GEN") and on.value == "400000.00"
    assert "15.0% below the high of $400,000" in on.reason and "pivot.drawdown_gen" in on.reason
    state, _ = apply_all(state, [on])
    latched = {a.id: a for a in ledger_facts(state, MarketView(MarketSnapshot(as_of=AT))).accounts}
    assert latched["GEN"].pivot_latched
    # 14.9 % below: the latch holds; nothing new is recorded (one latch per pivot)
    held = _decide(bundled, {"equity": 340400, "high_water_mark": 400000, "pivot_latched": True})
    assert [a.rule for a in held.actions if a.kind == "suspend_csp"] == ["pivot.hold"]
    assert held.derived["accounts"]["GEN"]["csp_suspended"] is True
    assert _flags(_plan(bundled, held, state)) == []
    # within 5 % of the high: recovered - the release is recorded and the flag is gone
    back = _decide(bundled, {"equity": 380000, "high_water_mark": 400000, "pivot_latched": True})
    assert [a.kind for a in back.actions if a.account == "GEN"] == ["resume_csp"]
    [off] = _flags(_plan(bundled, back, state))
    assert off.name == pivot_flag("GEN") and off.value == "" and off.reason.startswith("recovered")
    state, _ = apply_all(state, [off])
    assert pivot_flag("GEN") not in state.flags
    after = {a.id: a for a in ledger_facts(state, MarketView(MarketSnapshot(as_of=AT))).accounts}
    assert not after["GEN"].pivot_latched


def test_the_latch_is_recorded_under_the_kill_switch_too(bundled):
    """Suspending puts reduces risk: no halt refuses it (§2 has no VIX condition)."""
    decision = _decide(bundled, {"equity": 340000, "high_water_mark": 400000}, vix=81)
    [i] = [n for n, a in enumerate(decision.actions) if a.kind == "suspend_csp"]
    assert decision.verdicts[i].approved
    assert [f.name for f in _flags(_plan(bundled, decision, _ledger()))] == [pivot_flag("GEN")]


def test_the_assignment_recovery_needs_no_latch(bundled):
    shares = [
        {"symbol": "AAPL", "right": "stock", "side": "long", "shares": 1000, "cost_basis": 210}
    ]
    decision = _decide(bundled, {"equity": 375000, "high_water_mark": 400000, "positions": shares})
    assert [a.rule for a in decision.actions if a.kind == "suspend_csp"] == [
        "pivot.assignment_recovery"
    ]
    assert _flags(_plan(bundled, decision, _ledger())) == []
