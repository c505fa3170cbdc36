"""The governance gate's thresholds (governance.proposals), each as a boundary pair: a
proposal exactly at the limit passes, just past it fails."""

from __future__ import annotations

import pytest

from constitution.models import ProposalGate
from scheduler.proposal_gate import Figures, gate_checks

GATE = ProposalGate(max_drawdown_worsening=0.02, cagr_drop=0.02, kill_switch_days_added=0)


def _figures(cagr=0.20, drawdowns=None, kill_days=0) -> Figures:
    drawdowns = {"GEN": 0.05, "REV": 0.10, "COM": 0.08} if drawdowns is None else drawdowns
    return Figures(cagr=cagr, worst_drawdown=max(drawdowns.values(), default=0.0),
                   drawdowns=drawdowns, kill_days=kill_days, safe_days=0,
                   end_equity=1e6, trades=10, forks=0)  # fmt: skip


def _passed(new: Figures, current: Figures | None = None) -> dict[str, bool]:
    checks = gate_checks(GATE, current or _figures(), new)
    return {c.key.rsplit(".", 1)[-1]: c.passed for c in checks}


@pytest.mark.parametrize(("rev", "passes"), [(0.12, True), (0.1201, False)])
def test_an_account_s_drawdown_may_worsen_by_the_limit_not_more(rev, passes):
    new = _figures(drawdowns={"GEN": 0.05, "REV": rev, "COM": 0.08})
    assert _passed(new)["max_drawdown_worsening"] is passes


def test_the_drawdown_check_compares_account_by_account_not_the_worst_of_each_run():
    # REV worsens by 3 points while staying below COM's, the worst of both runs
    current = _figures(drawdowns={"REV": 0.01, "COM": 0.10})
    new = _figures(drawdowns={"REV": 0.04, "COM": 0.10})
    [dd] = [c for c in gate_checks(GATE, current, new) if "drawdown" in c.key]
    assert not dd.passed and dd.detail.startswith("REV +3.00 points")


def test_an_account_only_the_proposal_has_is_compared_with_no_drawdown():
    new = _figures(drawdowns={"GEN": 0.05, "REV": 0.10, "COM": 0.08, "MINI-1": 0.025})
    assert _passed(new)["max_drawdown_worsening"] is False


@pytest.mark.parametrize(("cagr", "passes"), [(0.18, True), (0.1799, False), (None, False)])
def test_cagr_may_fall_by_the_limit_not_more(cagr, passes):
    assert _passed(_figures(cagr=cagr))["cagr_drop"] is passes


@pytest.mark.parametrize(("days", "passes"), [(3, True), (4, False)])
def test_no_kill_switch_day_may_be_added(days, passes):
    assert (
        _passed(_figures(kill_days=days), _figures(kill_days=3))["kill_switch_days_added"] is passes
    )


def test_a_current_version_without_a_gate_fails_every_proposal():
    [check] = gate_checks(None, _figures(), _figures())
    assert not check.passed and check.key == "governance.proposals"
