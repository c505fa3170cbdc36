"""The risk guard: hard limits from the constitution, applied to every action of a decision.

It runs after the rules and before the decision is recorded, so the record holds one
``Verdict`` per action (same index) and a denial is recorded as fully as an approval. Limits:

* kill switch (market mode ``kill``, or a latched kill): no new orders of any kind and no
  money movements except the tax reserve; working orders are cancelled by execution;
* SAFE (market or account mode ``safe``, or a latched SAFE awaiting the resume sequence): no
  new risk - no entries, no LEAP purchases, no reinvestment; exits, rolls (defensive), hedges
  and releases stay allowed;
* Hedged Week: entries allowed at ``vix.hedged_week_deployment`` (x0.5) of normal size;
* forks beyond ``capital.max_subaccounts`` accounts are denied.
"""

from __future__ import annotations

from dataclasses import dataclass

from constitution.models import Constitution
from engine.decision import Action, Decision, Verdict

ORDER_KINDS = frozenset({"open_short_put", "open_covered_call", "close_position", "roll_position",
                         "deploy_hedge", "release_hedge", "buy_leap"})
NEW_RISK = frozenset({"open_short_put", "open_covered_call", "buy_leap", "reinvest"})
ENTRIES = frozenset({"open_short_put", "open_covered_call"})
KILL_ALLOWED = frozenset({"reserve_tax"})
MONEY_KINDS = frozenset({"fork_account", "merge_account", "reinvest", "reserve_tax"})
_RANK = {"active": 0, "hedged": 1, "safe": 2, "kill": 3}


@dataclass(frozen=True, slots=True)
class Limits:
    """What the planner must respect beyond the verdicts."""

    market_mode: str
    deployment_factor: float  # 1.0, or the Hedged Week factor


@dataclass(frozen=True, slots=True)
class GuardState:
    """What the guard needs from the ledger."""

    mode: str = "active"  # the ledger's mode (meaningful when latched)
    latched: bool = False
    accounts: int = 0  # active accounts


def market_mode(decision: Decision, guard: GuardState) -> str:
    derived = decision.derived.get("market", {}).get("mode", "active")
    latched = guard.mode if guard.latched else "active"
    return max(derived, latched, key=lambda m: _RANK.get(m, 0))


def review(constitution: Constitution, decision: Decision, guard: GuardState) -> tuple[Decision, Limits]:
    """The decision with one verdict per action, and the limits for planning."""
    mode = market_mode(decision, guard)
    factor = constitution.vix.hedged_week_deployment if mode == "hedged" else 1.0
    account_modes = {k: v.get("mode", "active") for k, v in decision.derived.get("accounts", {}).items()}
    forks = 0
    verdicts = []
    for i, action in enumerate(decision.actions):
        reasons = _denials(constitution, action, mode, account_modes, guard, forks)
        if action.kind == "fork_account" and not reasons:
            forks += 3 if action.params.get("creates") == "full" else 1
        if not reasons and mode == "hedged" and action.kind in ENTRIES:
            verdicts.append(Verdict(action=i, approved=True, reasons=(f"hedged_week: deployment x{factor:g}",)))
            continue
        verdicts.append(Verdict(action=i, approved=not reasons, reasons=tuple(reasons)))
    return decision.model_copy(update={"verdicts": tuple(verdicts)}), Limits(mode, factor)


def _denials(c: Constitution, a: Action, mode: str, account_modes: dict, guard: GuardState, forks: int) -> list[str]:
    out = []
    if mode == "kill" and (a.kind in ORDER_KINDS or a.kind in MONEY_KINDS) and a.kind not in KILL_ALLOWED:
        out.append("kill_switch: full halt, no new orders")
    elif a.kind in NEW_RISK and mode == "safe":
        out.append(f"safe_mode: no new risk ({guard.mode if guard.latched else 'market'} SAFE)")
    elif a.kind in NEW_RISK and a.account and account_modes.get(a.account) in ("safe", "kill"):
        out.append(f"safe_mode: account {a.account} is {account_modes[a.account]}")
    if a.kind == "fork_account":
        new = 3 if a.params.get("creates") == "full" else 1
        if guard.accounts + forks + new > c.capital.max_subaccounts:
            out.append(f"max_subaccounts: {guard.accounts + forks} accounts, a fork adds {new}, limit {c.capital.max_subaccounts}")
    return out
