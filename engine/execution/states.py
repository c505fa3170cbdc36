"""The §9 state machine: the system's operating states and their guarded transitions.

§9 names the states: SAFE -> SCANNING -> ANALYZING -> ORDERING -> MONITORING -> CLOSING ->
RECONCILING -> SAFE is the trading cycle (one ``TradingCycle.run``: snapshot = SCANNING,
evaluate + risk review = ANALYZING, plan + submit = ORDERING, fills and marks = MONITORING,
exits = CLOSING, sync and reconcile = RECONCILING); EMERGENCY, MAINTENANCE and AUDIT are
outside it. The system's state is read from the ledger, one of:

* ACTIVE - trading;
* SAFE - no new risk (a VIX tier above 65, the broker down, a failed resume risk check);
* EMERGENCY - the kill switch, VIX above 80 (§6 "full system halt");
* MAINTENANCE - an operator's manual patch or upgrade: nothing that adds risk;
* AUDIT - a reconciliation check in progress: nothing that adds risk.

Every transition has a guard (``TRANSITIONS``); ``check`` refuses one whose guard does not
hold, with the reason. Market-driven transitions (VIX tiers, the broker) are made by the
cycle's planner (``money.kill_switch``, ``money.enter_safe_mode``, ``money.system_release``);
operator transitions by ``alluse paper maintenance|audit`` through ``enter`` / ``leave``.
Each is a ledger operation with its reason: recorded on entry and on exit. Risk-reducing
actions are allowed in every state (D61).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from constitution.errors import StopError
from engine.execution.ledger import LedgerState, SetFlag

STATE_FLAG = "state"  # ledger flag holding MAINTENANCE / AUDIT while an operator has one on


class SystemState(StrEnum):
    ACTIVE = "ACTIVE"
    SAFE = "SAFE"
    EMERGENCY = "EMERGENCY"
    MAINTENANCE = "MAINTENANCE"
    AUDIT = "AUDIT"


OPERATOR_STATES = (SystemState.MAINTENANCE, SystemState.AUDIT)
_FROM_MODE = {"active": SystemState.ACTIVE, "safe": SystemState.SAFE, "kill": SystemState.EMERGENCY}

# (from, to) -> the guard, in words; the code of each guard is in ``check``.
TRANSITIONS: dict[tuple[SystemState, SystemState], str] = {
    (SystemState.ACTIVE, SystemState.SAFE): "VIX > 65, the broker down, or a failed risk check",
    (SystemState.ACTIVE, SystemState.EMERGENCY): "VIX > 80",
    (SystemState.SAFE, SystemState.EMERGENCY): "VIX > 80",
    (SystemState.EMERGENCY, SystemState.SAFE): "VIX back at or under 80, still above 65",
    (SystemState.EMERGENCY, SystemState.ACTIVE): "VIX back at or under 65",
    (SystemState.SAFE, SystemState.ACTIVE): (
        "no SAFE condition holds; a latch needs an operator's reset after a passing risk check"
    ),
    **{
        (s, SystemState.MAINTENANCE): "an operator, with a reason"
        for s in (SystemState.ACTIVE, SystemState.SAFE, SystemState.EMERGENCY)
    },
    **{
        (s, SystemState.AUDIT): "an operator, with a reason; no order working"
        for s in (SystemState.ACTIVE, SystemState.SAFE)
    },
    (SystemState.MAINTENANCE, SystemState.SAFE): (
        "an operator ends it; the market's state applies from the next cycle"
    ),
    (SystemState.AUDIT, SystemState.SAFE): "the reconciliation is done",
}


class TransitionRefused(StopError):
    """A state change whose guard does not hold (exit 2, nothing written)."""

    exit_code = 2


def state_of(state: LedgerState) -> SystemState:
    flag = state.flags.get(STATE_FLAG)
    if flag is not None:
        return SystemState(flag.value)
    return _FROM_MODE.get(state.mode, SystemState.SAFE)


def check(state: LedgerState, to: SystemState, reason: str) -> None:
    """Refuse a transition the machine does not have, or whose guard does not hold."""
    now = state_of(state)
    if (now, to) not in TRANSITIONS:
        allowed = sorted(t.value for f, t in TRANSITIONS if f is now)
        raise TransitionRefused(
            f"{now.value} -> {to.value} is not a transition (from {now.value}: {', '.join(allowed)})"
        )
    if to in OPERATOR_STATES and not reason.strip():
        raise TransitionRefused(f"entering {to.value} needs a reason: it is recorded")
    if to is SystemState.AUDIT and state.open_orders():
        raise TransitionRefused(f"AUDIT waits: {len(state.open_orders())} order(s) working")


def enter(state: LedgerState, to: SystemState, reason: str, day: date, stamp: str) -> SetFlag:
    """The ledger operation that enters an operator state (MAINTENANCE, AUDIT)."""
    if to not in OPERATOR_STATES:
        raise TransitionRefused(f"{to.value} is entered by the market, not by an operator")
    check(state, to, reason)
    return SetFlag(f"state:{to.value}:{stamp}", STATE_FLAG, to.value, reason, day)


def leave(state: LedgerState, reason: str, day: date, stamp: str) -> SetFlag:
    """Leave MAINTENANCE / AUDIT: the system is SAFE until the next cycle judges the market."""
    now = state_of(state)
    if now not in OPERATOR_STATES:
        raise TransitionRefused(f"the system is {now.value}, not in MAINTENANCE or AUDIT")
    check(state, SystemState.SAFE, reason or "left")
    return SetFlag(f"state:leave:{now.value}:{stamp}", STATE_FLAG, "", reason or "left", day)


@dataclass(frozen=True, slots=True)
class StatusLine:
    """What ``paper status`` shows of the state machine."""

    state: SystemState
    reason: str
    since: date | None


def status(state: LedgerState) -> StatusLine:
    flag = state.flags.get(STATE_FLAG)
    if flag is not None:
        return StatusLine(SystemState(flag.value), flag.reason, flag.since)
    return StatusLine(state_of(state), state.mode_reason, None)
