"""The risk guard's verdicts and the planner's money-side operations."""

from __future__ import annotations

from engine.execution.risk import GuardState, review
from engine.records.decision import Action, ConstitutionRef, Decision


def _decision(*actions: Action, mode: str = "active") -> Decision:
    return Decision(
        decision_id="d-1",
        as_of="2024-01-11T15:00:00+00:00",
        constitution=ConstitutionRef(version="1.3.0", digest="x"),
        facts_digest="f",
        facts={},
        derived={"market": {"mode": mode}, "accounts": {}},
        fired=(),
        actions=actions,
    )


def _a(kind: str, **params) -> Action:
    return Action(
        kind=kind,
        account="GEN",
        symbol="AAPL",
        rule="r",
        clause="§2",
        salience=70,
        params=params,
        reason="test",
    )


def test_kill_switch_halts_what_adds_risk_and_lets_exits_and_the_tax_reserve_through(bundled):
    d, limits = review(
        bundled.model,
        _decision(
            _a("open_short_put"),
            _a("close_position"),
            _a("reserve_tax"),
            _a("roll_position"),
            _a("fork_account", creates="mini", amount=100000),
            mode="kill",
        ),
        GuardState(),
    )
    assert [v.approved for v in d.verdicts] == [False, True, True, False, False]
    assert d.verdicts[0].reasons[0].startswith("kill_switch") and limits.market_mode == "kill"


def test_safe_mode_blocks_new_risk_and_allows_exits(bundled):
    d, _ = review(
        bundled.model,
        _decision(_a("open_short_put"), _a("close_position"), _a("deploy_hedge"), mode="safe"),
        GuardState(),
    )
    assert [v.approved for v in d.verdicts] == [False, True, True]
    assert "safe_mode" in d.verdicts[0].reasons[0]


def test_a_latched_safe_blocks_entries_even_when_the_market_is_calm(bundled):
    d, limits = review(
        bundled.model, _decision(_a("open_short_put")), GuardState(mode="safe", latched=True)
    )
    assert not d.verdicts[0].approved and limits.market_mode == "safe"


def test_hedged_week_approves_entries_at_half_deployment_with_the_reason(bundled):
    d, limits = review(bundled.model, _decision(_a("open_short_put"), mode="hedged"), GuardState())
    assert d.verdicts[0].approved and limits.deployment_factor == 0.5
    assert d.verdicts[0].reasons == ("hedged_week: deployment x0.5",)


def test_a_fork_beyond_the_subaccount_limit_is_denied(bundled):
    d, _ = review(
        bundled.model,
        _decision(_a("fork_account", creates="full", amount=500000)),
        GuardState(accounts=6),
    )
    assert not d.verdicts[0].approved and d.verdicts[0].reasons[0].startswith("max_subaccounts")
