"""§5/§6 hedges leg by leg (issue 14 item 10): a leg the planner cannot place is a recorded
rejection naming the leg, and the other leg is still bought. Before, with no SPY/SPX quote the
SPX put leg vanished from the plan without a trace."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.execution import protect
from engine.execution.ledger import Deposit, LedgerState, OpenAccount, apply_all
from engine.execution.plan import Context
from engine.execution.risk import Limits
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote
from engine.records.decision import Action
from tests.execution import helpers

NY = ZoneInfo("America/New_York")
AT = datetime(2024, 5, 14, 10, tzinfo=NY)


def _ctx(bundled, quotes: dict[str, float], vix: float | None, action: Action) -> Context:
    snap = MarketSnapshot(
        as_of=AT,
        quotes={s: Quote(s, p, AT) for s, p in quotes.items()},
        vix=Quote("VIX", vix, AT) if vix else None,
    )
    decision = helpers.one_action_decision(action, AT.isoformat(), "d-9")
    ops = [OpenAccount("o", "GEN", "gen", date(2024, 1, 2)), Deposit("d", "GEN", 4_000_000_00)]
    state, _ = apply_all(LedgerState(), ops)
    accounts = {"GEN": {"equity": 4_000_000.0, "quarter_gains": 0.0}}
    return Context(
        bundled.model, decision, state, MarketView(snap), Limits("active", 1.0), accounts, {}
    )


def _hedge(kind: str) -> Action:
    return Action(
        kind="deploy_hedge",
        account="GEN",
        rule=f"hedge.{kind}",
        clause="§5",
        salience=23,
        params={"kind": kind},
        reason="t",
    )


@pytest.mark.parametrize("kind", ["strategic", "tactical"])
def test_without_an_spx_level_the_put_leg_is_a_recorded_rejection_and_the_vix_leg_is_bought(
    bundled, kind
):
    part = protect.deploy_hedge(_ctx(bundled, {"AAPL": 190.0}, 15.0, _hedge(kind)), 0, _hedge(kind))
    # (orders over 50 contracts are sliced: several orders, one contract)
    assert {(o.request.contract.symbol, o.request.contract.right) for o in part.orders} == {
        ("VIX", "C")
    }
    [rejection] = part.rejections
    assert (rejection.reason, rejection.leg, rejection.kind) == ("no-spot", "spx", "deploy_hedge")
    assert rejection.as_dict()["leg"] == "spx"  # what the audit log's rejection event carries


def test_with_spy_only_the_spx_level_is_derived_and_both_legs_are_bought(bundled):
    part = protect.deploy_hedge(
        _ctx(bundled, {"SPY": 520.0}, 15.0, _hedge("strategic")), 0, _hedge("strategic")
    )
    assert {o.request.contract.symbol for o in part.orders} == {"SPX", "VIX"}
    assert part.rejections == []


def test_without_a_vix_level_both_legs_are_recorded_rejections(bundled):
    part = protect.deploy_hedge(
        _ctx(bundled, {"SPY": 520.0}, None, _hedge("strategic")), 0, _hedge("strategic")
    )
    assert part.orders == []  # an option is priced off VIX: without it the SPX put has no quote
    assert sorted((r.reason, r.leg) for r in part.rejections) == [
        ("no-quote", "spx"),
        ("no-spot", "vix"),
    ]


def test_a_leg_too_small_for_one_contract_names_its_leg(bundled):
    ctx = _ctx(bundled, {"SPY": 520.0}, 15.0, _hedge("strategic"))
    ctx.facts_accounts["GEN"]["equity"] = 10_000.0  # 1 % = $100: no SPX put, no VIX call
    part = protect.deploy_hedge(ctx, 0, _hedge("strategic"))
    assert part.orders == []
    assert sorted((r.reason, r.leg) for r in part.rejections) == [
        ("budget-below-one-contract", "spx"),
        ("budget-below-one-contract", "vix"),
    ]


def test_a_rejection_of_a_whole_action_keeps_its_recorded_shape(bundled):
    part = protect.buy_leap(
        _ctx(bundled, {"SPY": 520.0}, 15.0, _hedge("strategic")), 0, _hedge("strategic")
    )
    [rejection] = part.rejections  # the LEAP fund is empty: the action, not a leg
    assert rejection.leg == "" and "leg" not in rejection.as_dict()
