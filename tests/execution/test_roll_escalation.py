"""§6 roll economics "escalate to L3 instead" (issue 14 item 3, D9): a roll known to cost more
than half the original credit is the L3 of §6 - the stop-loss exit at market, SAFE until reset
for the breached account only (D11/D60, the same hold as an L3 breach) and the L3 incident
alert. Real rules, risk guard, planner, ledger and alerts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from constitution.yamlsafe import load_file
from engine.cycle.pipeline import after_evaluation
from engine.execution import planner
from engine.execution.broker import OrderSide
from engine.execution.ledger import (
    Holding,
    LedgerState,
    OpenAccount,
    SetAccountMode,
    apply_all,
)
from engine.execution.plan import option
from engine.execution.risk import GuardState, Limits, review
from engine.facts.load import facts_from_data
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot
from engine.records.alerts import alerts_of
from engine.rules.evaluate import evaluate
from scheduler.scenarios import _overlay
from tests.engine.conftest import BASE

NY = ZoneInfo("America/New_York")
AT = datetime(2026, 11, 17, 12, tzinfo=NY)
KEY = "GEN/AAPL/put/208/2026-11-20/short"


def _decision(bundled, roll_debit: float):
    put = {
        "symbol": "AAPL",
        "right": "put",
        "side": "short",
        "strike": 208,
        "expiry": "2026-11-20",
        "contracts": 10,
        "entry_credit": 2.0,
        "mark": 8.5,
        "delta": -0.85,
        "roll_debit": roll_debit,
    }
    data = _overlay(load_file(BASE).data, {"accounts": [{"id": "GEN", "positions": [put]}]})
    return after_evaluation(bundled, evaluate(bundled, facts_from_data(data)), GuardState())


def _ledger() -> tuple[LedgerState, Holding]:
    state, _ = apply_all(
        LedgerState(),
        [OpenAccount(f"o{a}", a, k, date(2026, 1, 2)) for a, k in (("GEN", "gen"), ("REV", "rev"))],
    )
    held = Holding(
        "GEN", option("AAPL", date(2026, 11, 20), 208, "P"), -10, 2.0, "income", AT.date()
    )
    return replace(state, holdings={("GEN", held.contract.key): held}), held


def _plan(bundled, decision, state, held):
    view = MarketView(MarketSnapshot(as_of=AT))
    return planner.plan(bundled.model, decision, state, view, Limits("active", 1.0), {KEY: held})


def test_an_uneconomic_roll_exits_at_market_and_holds_only_its_account(bundled):
    decision = _decision(bundled, roll_debit=1.01)  # 50.5 % of the 2.00 credit
    state, held = _ledger()
    plan = _plan(bundled, decision, state, held)
    [close] = plan.orders
    assert close.action_kind == "close_position" and close.why == "roll_uneconomic"
    assert close.request.side is OrderSide.BUY and close.request.quantity == 10
    assert close.ladder == ()  # at market
    [hold] = [op for op in plan.ops if isinstance(op, SetAccountMode)]
    assert (hold.account, hold.mode, hold.reason) == ("GEN", "safe", "roll_uneconomic")
    assert hold.release == bundled.model.protocol.l3_release
    after, _ = apply_all(state, plan.ops)
    assert after.mode == "active" and set(after.account_modes) == {"GEN"}


def test_the_held_account_gets_no_new_risk_until_its_reset(bundled):
    state, held = _ledger()
    after, _ = apply_all(state, _plan(bundled, _decision(bundled, 1.01), state, held).ops)
    entry = (
        _decision(bundled, 1.01)
        .actions[0]
        .model_copy(
            update={
                "kind": "open_short_put",
                "rule": "entry.csp.gen",
                "position": None,
                "params": {},
            }
        )
    )
    blank = _decision(bundled, 1.01).model_copy(update={"actions": (entry,), "verdicts": ()})
    reviewed, _ = review(
        bundled.model, blank, GuardState(holds={"GEN": after.account_modes["GEN"].mode})
    )
    assert not reviewed.verdicts[0].approved
    assert "held in SAFE until its reset" in reviewed.verdicts[0].reasons[0]


def test_the_escalation_raises_the_l3_incident_alert_once(bundled):
    alerts = alerts_of(_decision(bundled, 1.01), "paper")
    [incident] = [a for a in alerts if a.rule == "roll.uneconomic_exit"]
    assert incident.severity == "critical" and incident.title.startswith("L3 Preservation")
    assert incident.clause == "§6 roll economics"


def test_a_roll_at_exactly_half_the_credit_is_made_without_escalation(bundled):
    decision = _decision(bundled, roll_debit=1.0)
    kinds = [a.kind for a in decision.actions if a.account == "GEN"]
    assert "roll_position" in kinds and "enter_safe_mode" not in kinds
    assert not any(a.rule == "roll.uneconomic_exit" for a in alerts_of(decision, "paper"))
