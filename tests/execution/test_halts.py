"""No halt ever refuses a risk-reducing action (§6, §0; docs/decisions.md D61), and each halt
refuses exactly what adds risk: the guard's verdicts for every action kind under every halt."""

from __future__ import annotations

import pytest

from engine.execution.risk import GuardState, review
from engine.records.decision import Action, ConstitutionRef, Decision

REDUCING = ("close_position", "release_hedge", "deploy_hedge", "reserve_tax", "reinvest")
ADDING = ("open_short_put", "open_covered_call", "buy_leap")
HALTS = {
    "kill": ("kill", GuardState()),
    "vix-safe": ("safe", GuardState()),
    "latched-safe": ("active", GuardState(mode="safe", latched=True)),
    "l3-hold": ("active", GuardState(holds={"GEN": "safe"})),
    "user-pause": ("active", GuardState(holds={"GEN": "paused"})),
}


def _decision(kinds, mode: str) -> Decision:
    actions = tuple(
        Action(kind=k, account="GEN", symbol="AAPL", rule="r", clause="§6", salience=1, reason="t")
        for k in kinds
    )
    return Decision(
        decision_id="d-1",
        as_of="2024-01-11T15:00:00+00:00",
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={"market": {"mode": mode}, "accounts": {}},
        fired=(),
        actions=actions,
    )


@pytest.mark.parametrize("halt", sorted(HALTS))
def test_no_halt_refuses_a_risk_reducing_action(bundled, halt):
    mode, guard = HALTS[halt]
    d, _ = review(bundled.model, _decision(REDUCING, mode), guard)
    assert [(v.approved, v.reasons) for v in d.verdicts] == [(True, ())] * len(REDUCING)


@pytest.mark.parametrize("halt", sorted(HALTS))
def test_every_halt_refuses_new_risk_with_its_reason(bundled, halt):
    mode, guard = HALTS[halt]
    d, _ = review(bundled.model, _decision(ADDING, mode), guard)
    assert [v.approved for v in d.verdicts] == [False] * len(ADDING)
    assert all(v.reasons for v in d.verdicts)


def test_an_account_hold_leaves_the_other_accounts_trading(bundled):
    d, _ = review(
        bundled.model,
        _decision(("open_short_put",), "active").model_copy(
            update={
                "actions": (
                    Action(
                        kind="open_short_put",
                        account="REV",
                        symbol="NVDA",
                        rule="r",
                        clause="§3",
                        salience=1,
                        reason="t",
                    ),
                )
            }
        ),
        GuardState(holds={"GEN": "safe"}),
    )
    assert d.verdicts[0].approved


@pytest.mark.parametrize(
    ("halt", "roll_approved"),
    [("kill", False), ("vix-safe", True), ("l3-hold", True), ("user-pause", False)],
)
def test_defensive_rolls_go_on_in_safe_and_stop_under_the_kill_switch_and_a_pause(
    bundled, halt, roll_approved
):
    mode, guard = HALTS[halt]
    d, _ = review(bundled.model, _decision(("roll_position",), mode), guard)
    assert d.verdicts[0].approved is roll_approved
