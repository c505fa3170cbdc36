"""Approvals, pure part: which actions wait for a person, the life of a request, and the
policies that answer for a person in paper runs and backtests (docs/operations.md).

What needs a person (the constitution says, §13-§15, §17):

* an action whose kind is in ``governance.approvals.actions`` (v1.3.1: forks and merges);
* ``buy_leap`` while ``llms.human_approval`` is true (§17: a human approves LEAP strikes and
  expiries);
* live only: the orders of an action adding risk whose notional is above
  ``governance.approvals.live_order_notional_above``.

Risk-reducing actions never wait (the models refuse to list them).

A request is identified by its decision and action (``approval_id``) and is *about* a subject:
the action kind, account, symbol, position and parameters. One request per subject is open at
a time; later decisions asking for the same thing wait on it. Life of a request::

    pending --approve--> approved --carried out--> executed
       |                    `--not carried out before expires_at--> lapsed
       |--deny--> declined
       `--expires_at passed--> expired (declined) or approved (on_expiry: approve)

Paper runs and backtests declare a ``Policy`` that answers instead of a person: auto-approve,
auto-deny, or approve N minutes after the request on the run's clock (the replay clock in a
backtest), so a backtest decides the same way every time. A live run always asks a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from constitution.canonical import canonical_json
from constitution.errors import StopError
from constitution.models import Approvals, Constitution
from engine.execution.plan import Plan, PlannedOrder
from engine.market.instruments import SecType
from engine.records.alerts import Alert
from engine.records.audit import ExecutionLink
from engine.records.decision import Action

State = Literal["pending", "approved", "declined", "expired", "executed", "lapsed"]
OPEN_STATES: frozenset[str] = frozenset({"pending", "approved"})
NEW_RISK_ORDERS = frozenset({"open_short_put", "open_covered_call", "buy_leap"})
# Approved requests carried out from their own decision even when no later decision asks again:
# a LEAP purchase is asked for once, at the quarter's report, its funds set aside then (D112).
CARRIED = frozenset({"buy_leap"})

NEEDS_KIND = "governance.approvals.actions"
NEEDS_LEAP = "llms.human_approval"
NEEDS_NOTIONAL = "governance.approvals.live_order_notional_above"


class ApprovalClosed(StopError):
    """The request was already answered (or expired): nothing is changed (exit 2)."""

    exit_code = 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approval(_Frozen):
    id: str
    subject: str
    decision_id: str
    decision_seq: int  # where the request's decision sits in the audit log
    decision_hash: str
    action_index: int
    action: Action
    mode: str
    needs: str  # the constitution key that asks for a person
    notional: float | None = None
    requested_at: datetime
    expires_at: datetime
    state: State = "pending"
    by: str | None = None  # who answered: a login, "policy:auto-approve", "expiry"
    reason: str | None = None
    answered_at: datetime | None = None
    executed_by: str | None = None  # the decision whose plan carried it out

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


class Policy(_Frozen):
    """Who answers requests in a run: a person, or a declared rule (paper and backtests)."""

    kind: Literal["person", "auto-approve", "auto-deny", "approve-after"] = "person"
    minutes: int = 0  # approve-after: minutes after the request, on the run's clock

    def render(self) -> str:
        return f"approve-after:{self.minutes}" if self.kind == "approve-after" else self.kind


PERSON = Policy()


def parse_policy(text: str) -> Policy:
    """``person``, ``auto-approve``, ``auto-deny`` or ``approve-after:MINUTES``; ValueError
    with a sentence otherwise."""
    value = text.strip()
    if value in ("person", "auto-approve", "auto-deny"):
        return Policy(kind=value)
    head, _, minutes = value.partition(":")
    if head == "approve-after" and minutes.isdigit() and int(minutes) >= 0:
        return Policy(kind="approve-after", minutes=int(minutes))
    raise ValueError(
        f"approval policy {text!r}: use person, auto-approve, auto-deny or approve-after:MINUTES"
    )


class ApprovalStore(Protocol):
    """Where requests live (adapters/storage/approvals_store.py; ``MemoryApprovalStore``)."""

    def open_approvals(self) -> Sequence[Approval]:
        """Pending and approved requests, oldest first."""

    def last_closed(self, subject: str) -> Approval | None:
        """The most recently answered request about ``subject`` that is no longer open."""

    def save(
        self, approval: Approval, prior: State | None, link: ExecutionLink, alerts: Sequence[Alert]
    ) -> None:
        """Atomically: store ``approval`` (new when ``prior`` is None, else moved from
        ``prior``: ``ApprovalClosed`` if the stored state is another), append ``link`` to the
        audit log, queue ``alerts``."""


# --------------------------------------------------------------------------- what needs a person


def needs_person(c: Constitution, a: Action) -> str | None:
    """The constitution key that makes ``a`` wait for a person, or None."""
    if a.kind == "buy_leap" and c.llms.human_approval:
        return NEEDS_LEAP
    rules = c.governance.approvals
    if rules is not None and a.kind in rules.actions:
        return NEEDS_KIND
    return None


def notional_limit(c: Constitution, mode: str) -> float | None:
    rules = c.governance.approvals
    return rules.live_order_notional_above if rules is not None and mode == "live" else None


def order_notional(o: PlannedOrder) -> float:
    """Dollars at stake: a sold option's strike, a bought one's price, a stock's price, times
    quantity and multiplier."""
    c = o.request.contract
    price = o.request.limit_price or (o.ladder[0] if o.ladder else 0.0)
    per_unit = c.strike if c.sec_type is not SecType.STOCK and c.strike and _sells(o) else price
    return round(float(per_unit or 0.0) * o.request.quantity * c.multiplier, 2)


def _sells(o: PlannedOrder) -> bool:
    return o.request.side.value.upper().startswith("S")


def over_notional(plan: Plan, limit: float | None) -> dict[int, float]:
    """Action index -> notional of its orders, for actions adding risk above ``limit``."""
    if limit is None:
        return {}
    totals: dict[int, float] = {}
    for o in plan.orders:
        if o.action_kind in NEW_RISK_ORDERS:
            totals[o.action_index] = totals.get(o.action_index, 0.0) + order_notional(o)
    return {i: round(n, 2) for i, n in totals.items() if n > limit}


def subject_of(a: Action) -> str:
    """What a request is about: the same kind, target and parameters ask the same thing."""
    body = canonical_json([a.kind, a.account, a.symbol, a.position, a.params])
    return f"{a.kind}:{a.account or ''}:{a.symbol or ''}:" + sha256(body).hexdigest()[:12]


def approval_id(decision_id: str, index: int) -> str:
    return "A-" + sha256(f"{decision_id}:{index}".encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- the life of a request


def request(
    rules: Approvals | None,
    decision_id: str,
    seq_hash: tuple[int, str],
    index: int,
    action: Action,
    mode: str,
    needs: str,
    at: datetime,
    notional: float | None = None,
) -> Approval:
    wait = rules.wait_minutes if rules is not None else DEFAULT_WAIT_MINUTES
    return Approval(
        id=approval_id(decision_id, index),
        subject=subject_of(action),
        decision_id=decision_id,
        decision_seq=seq_hash[0],
        decision_hash=seq_hash[1],
        action_index=index,
        action=action,
        mode=mode,
        needs=needs,
        notional=notional,
        requested_at=at,
        expires_at=at + timedelta(minutes=wait),
    )


# Versions that declare no ``governance.approvals`` (before 1.3.1) still ask for LEAP
# purchases (llms.human_approval); their requests wait a day, as 1.3.1's do.
DEFAULT_WAIT_MINUTES = 1440


def answer(a: Approval, approve: bool, by: str, reason: str, at: datetime) -> Approval:
    """A person's (or a policy's) answer to a pending request."""
    if a.state != "pending":
        raise ApprovalClosed(f"approval {a.id} is {a.state}, not pending: nothing changed")
    return a.model_copy(
        update={
            "state": "approved" if approve else "declined",
            "by": by,
            "reason": reason,
            "answered_at": at,
        }
    )


def expiry(rules: Approvals | None, a: Approval, at: datetime) -> Approval | None:
    """What ``a`` becomes at ``at`` if its time is up (None while it may still wait):
    a pending request expires (or is approved, on_expiry: approve); an approved one that was
    not carried out lapses."""
    if at < a.expires_at or not a.open:
        return None
    if a.state == "approved":
        return a.model_copy(update={"state": "lapsed"})
    waited = (
        f"no answer within {int((a.expires_at - a.requested_at).total_seconds() // 60)} minutes"
    )
    approve = rules is not None and rules.on_expiry == "approve"
    return a.model_copy(
        update={
            "state": "approved" if approve else "expired",
            "by": "expiry",
            "reason": waited,
            "answered_at": at,
        }
    )


def executed(a: Approval, decision_id: str) -> Approval:
    return a.model_copy(update={"state": "executed", "executed_by": decision_id})


def policy_answer(policy: Policy, a: Approval, at: datetime) -> Approval | None:
    """The policy's answer to pending ``a`` at ``at`` (None: not yet, or a person answers)."""
    if a.state != "pending" or policy.kind == "person":
        return None
    if policy.kind == "approve-after":
        if at < a.requested_at + timedelta(minutes=policy.minutes):
            return None
        return answer(a, True, f"policy:{policy.render()}", "approved by the run's policy", at)
    approve = policy.kind == "auto-approve"
    return answer(a, approve, f"policy:{policy.kind}", "answered by the run's policy", at)


def event_of(a: Approval) -> str:
    """The audit-log event name of ``a``'s current state."""
    return {
        "pending": "approval_requested",
        "approved": "approval_approved",
        "declined": "approval_declined",
        "expired": "approval_expired",
        "executed": "approval_executed",
        "lapsed": "approval_lapsed",
    }[a.state]


def link_of(a: Approval) -> ExecutionLink:
    """The audit-log record of ``a``'s current state, on the decision that asked."""
    data = {"event": event_of(a), **a.model_dump(mode="json", exclude={"action"})}
    data["action"] = {"kind": a.action.kind, "account": a.action.account, "symbol": a.action.symbol}
    return ExecutionLink(decision_id=a.decision_id, kind="note", ref=f"approval:{a.id}", data=data)


def alert_of(a: Approval) -> Alert:
    """The notification of ``a``'s current state (a request is a warning: someone must act)."""
    what = " ".join(x for x in (a.action.kind, a.action.account, a.action.symbol) if x)
    event = event_of(a)
    words = {
        "approval_requested": f"approval needed: {what} (alluse approvals approve {a.id} --reason ...)",
        "approval_approved": f"approved: {what} by {a.by}",
        "approval_declined": f"declined: {what} by {a.by}",
        "approval_expired": f"expired (declined): {what}",
        "approval_executed": f"carried out: {what}",
        "approval_lapsed": f"lapsed (approved, not carried out in time): {what}",
    }[event]
    detail = f"{a.reason}. " if a.reason else ""
    return Alert(
        key=f"alluse:{a.id}:{a.state}",
        kind="approval",
        severity="warning" if a.state == "pending" else "info",
        title=words,
        message=f"{detail}{a.needs}; requested {a.requested_at.isoformat()}, expires "
        f"{a.expires_at.isoformat()}; decision {a.decision_id} action {a.action_index}",
        at=(a.answered_at or a.requested_at).isoformat(),
        mode=a.mode,
        condition=f"approval:{a.id}:{a.state}",
        decision_id=a.decision_id,
        account=a.action.account,
        symbol=a.action.symbol,
        rule=a.action.rule,
        clause=a.action.clause,
    )
