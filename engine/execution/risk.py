"""The risk guard: hard limits from the constitution, applied to every action of a decision.

It runs after the rules and before the decision is recorded, so the record holds one
``Verdict`` per action (same index) and a denial is recorded as fully as an approval. Limits:

* kill switch (market mode ``kill``): a full halt of everything that adds risk - no entries,
  no LEAP purchases, no rolls (a roll opens a new short), no forks or merges; working orders
  that add risk are cancelled by execution;
* SAFE (market or account mode ``safe``, a held account, or a latched SAFE awaiting the resume
  sequence): no new risk - no entries, no LEAP purchases; defensive rolls stay allowed;
* never refused under any halt (D61): what reduces risk - stop-loss and other exits, hedges,
  hedge releases (profit-taking) - and the quarter's money bookkeeping: the tax reserve and the
  reinvestment's split into the LEAP fund (the LEAP purchase itself waits for ACTIVE);
* a paused account (§0 user kill switch) is held like SAFE and makes no rolls either;
* Hedged Week: entries allowed at ``vix.hedged_week_deployment`` (x0.5) of normal size;
* forks beyond ``capital.max_subaccounts`` accounts are denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from constitution.models import Constitution
from engine.records.decision import Action, Decision, Verdict

ORDER_KINDS = frozenset(
    {
        "open_short_put",
        "open_covered_call",
        "close_position",
        "roll_position",
        "deploy_hedge",
        "release_hedge",
        "buy_leap",
        "roll_leap",
        "buy_shares",
    }
)
NEW_RISK = frozenset({"open_short_put", "open_covered_call", "buy_leap", "buy_shares"})
ENTRIES = frozenset({"open_short_put", "open_covered_call"})
# Never refused by a halt (D61): they reduce risk, or only move money inside an account.
RISK_REDUCING = frozenset({"close_position", "release_hedge", "deploy_hedge"})
NEVER_HALTED = RISK_REDUCING | {"reserve_tax", "reinvest"}
KILL_HALTS = NEW_RISK | {"roll_position", "roll_leap", "fork_account", "merge_account"}
PAUSE_HALTS = NEW_RISK | {"roll_position", "roll_leap"}
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
    holds: Mapping[str, str] = field(default_factory=dict)  # account -> safe | paused (ledger)
    state: str = "ACTIVE"  # the §9 state (engine.execution.states): MAINTENANCE / AUDIT halt


def market_mode(decision: Decision, guard: GuardState) -> str:
    derived = decision.derived.get("market", {}).get("mode", "active")
    latched = guard.mode if guard.latched else "active"
    return max(derived, latched, key=lambda m: _RANK.get(m, 0))


def review(
    constitution: Constitution, decision: Decision, guard: GuardState
) -> tuple[Decision, Limits]:
    """The decision with one verdict per action, and the limits for planning."""
    mode = market_mode(decision, guard)
    factor = constitution.vix.hedged_week_deployment if mode == "hedged" else 1.0
    account_modes = {
        k: v.get("mode", "active") for k, v in decision.derived.get("accounts", {}).items()
    }
    forks = 0
    verdicts = []
    for i, action in enumerate(decision.actions):
        reasons = _denials(constitution, action, mode, account_modes, guard, forks)
        if action.kind == "fork_account" and not reasons:
            forks += 3 if action.params.get("creates") == "full" else 1
        if not reasons and mode == "hedged" and action.kind in ENTRIES:
            verdicts.append(
                Verdict(action=i, approved=True, reasons=(f"hedged_week: deployment x{factor:g}",))
            )
            continue
        verdicts.append(Verdict(action=i, approved=not reasons, reasons=tuple(reasons)))
    return decision.model_copy(update={"verdicts": tuple(verdicts)}), Limits(mode, factor)


def _denials(
    c: Constitution, a: Action, mode: str, account_modes: dict, guard: GuardState, forks: int
) -> list[str]:
    out = _halts(a, mode, account_modes, guard)
    if a.kind == "fork_account":
        new = 3 if a.params.get("creates") == "full" else 1
        if guard.accounts + forks + new > c.capital.max_subaccounts:
            out.append(
                f"max_subaccounts: {guard.accounts + forks} accounts, a fork adds {new}, limit {c.capital.max_subaccounts}"
            )
    return out


def _halts(a: Action, mode: str, account_modes: dict, guard: GuardState) -> list[str]:
    """Why a halt refuses ``a`` (empty: it does not). Risk-reducing actions never appear."""
    if a.kind in NEVER_HALTED:
        return []
    held = guard.holds.get(a.account or "")
    if mode == "kill" and a.kind in KILL_HALTS:
        return ["kill_switch: full halt, nothing that adds risk"]
    if guard.state in ("MAINTENANCE", "AUDIT") and a.kind in KILL_HALTS:
        return [f"{guard.state.lower()}: an operator's {guard.state}, nothing that adds risk"]
    if held == "paused" and a.kind in PAUSE_HALTS:
        return [f"paused: account {a.account} is paused by its user (§0 kill switch)"]
    if a.kind not in NEW_RISK:
        return []
    if mode == "safe":
        return [f"safe_mode: no new risk ({guard.mode if guard.latched else 'market'} SAFE)"]
    if held == "safe":
        return [f"safe_mode: account {a.account} is held in SAFE until its reset (L3)"]
    if a.account and account_modes.get(a.account) in ("safe", "kill"):
        return [f"safe_mode: account {a.account} is {account_modes[a.account]}"]
    return []


def cancels_on_halt(action_kind: str) -> bool:
    """Working orders the kill switch cancels: those of actions that add risk."""
    return action_kind not in RISK_REDUCING
