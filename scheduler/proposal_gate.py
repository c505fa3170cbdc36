"""The governance gate of a proposal (§15, D113): figures from the two backtests and the
checks of the current version's ``governance.proposals`` thresholds. Pure: no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from constitution.models import ProposalGate

if TYPE_CHECKING:
    from scheduler.backtest import BacktestSummary


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


EPSILON = 1e-9  # a figure exactly at its threshold passes (float noise aside)


class Figures(_Frozen):
    """What the gate compares, from one backtest's summary."""

    cagr: float | None
    worst_drawdown: float  # the deepest account max drawdown (fraction)
    drawdowns: dict[str, float]
    kill_days: int
    safe_days: int
    end_equity: float
    trades: int
    forks: int


class Check(_Frozen):
    name: str
    key: str  # the constitution key holding the threshold
    unit: Literal["fraction", "days", ""] = "fraction"
    limit: float
    current: float | None
    new: float | None
    passed: bool
    detail: str


def figures_of(summary: BacktestSummary) -> Figures:
    """From a ``scheduler.backtest.BacktestSummary``."""
    return Figures(
        cagr=summary.cagr,
        worst_drawdown=max(summary.max_drawdown.values(), default=0.0),
        drawdowns=dict(summary.max_drawdown),
        kill_days=len(summary.mode_days.get("kill", ())),
        safe_days=len(summary.mode_days.get("safe", ())),
        end_equity=summary.end_equity,
        trades=summary.trades,
        forks=summary.forks,
    )


def gate_checks(gate: ProposalGate | None, current: Figures, new: Figures) -> tuple[Check, ...]:
    """NEW against CURRENT under CURRENT's thresholds; no thresholds: one failed check."""
    if gate is None:
        return (
            Check(
                name="gate declared",
                key="governance.proposals",
                unit="",
                limit=0.0,
                current=None,
                new=None,
                passed=False,
                detail="the current version declares no proposal gate: only an override approves",
            ),
        )
    account, worse = worst_worsening(current, new)
    checks = [
        Check(
            name="max drawdown may not worsen beyond the limit",
            key="governance.proposals.max_drawdown_worsening",
            limit=gate.max_drawdown_worsening,
            current=current.drawdowns.get(account, 0.0) if account else current.worst_drawdown,
            new=new.drawdowns.get(account, 0.0) if account else new.worst_drawdown,
            passed=worse <= gate.max_drawdown_worsening + EPSILON,
            detail=f"{account or 'no account'} {_pts(worse)} points "
            f"(limit {_pts(gate.max_drawdown_worsening)})",
        ),
        _cagr_check(gate, current, new),
    ]
    added = new.kill_days - current.kill_days
    checks.append(
        Check(
            name="no new kill-switch days beyond the limit",
            key="governance.proposals.kill_switch_days_added",
            unit="days",
            limit=gate.kill_switch_days_added,
            current=current.kill_days,
            new=new.kill_days,
            passed=added <= gate.kill_switch_days_added,
            detail=f"{added:+d} days (limit {gate.kill_switch_days_added})",
        )
    )
    return tuple(checks)


def _cagr_check(gate: ProposalGate, current: Figures, new: Figures) -> Check:
    key, name = "governance.proposals.cagr_drop", "CAGR may not fall beyond the limit"
    if current.cagr is None or new.cagr is None:
        return Check(name=name, key=key, limit=gate.cagr_drop, current=current.cagr,
                     new=new.cagr, passed=False, detail="no CAGR: the history is too short")  # fmt: skip
    drop = current.cagr - new.cagr
    return Check(
        name=name,
        key=key,
        limit=gate.cagr_drop,
        current=current.cagr,
        new=new.cagr,
        passed=drop <= gate.cagr_drop + EPSILON,
        detail=f"{_pts(-drop)} points (limit -{100 * gate.cagr_drop:.2f})",
    )


def worst_worsening(current: Figures, new: Figures) -> tuple[str | None, float]:
    """(account, points as a fraction) of the account whose max drawdown worsened most; an
    account only the proposal has (a fork it made) is compared with no drawdown."""
    worst: tuple[str | None, float] = (None, 0.0)
    for account in sorted(new.drawdowns):
        worse = new.drawdowns[account] - current.drawdowns.get(account, 0.0)
        if worst[0] is None or worse > worst[1]:
            worst = (account, worse)
    return worst


def _pts(fraction: float) -> str:
    return f"{100 * fraction:+.2f}"
