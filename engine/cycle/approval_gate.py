"""The approval step of a trading cycle: actions waiting for a person are held out of the
plan until someone (or the run's declared policy) approves them (engine.execution.approvals).

Per cycle, after the decision is recorded:

* ``tick(at)`` (every tick, quiet or not) - expiries and policy answers that fell due; True
  when a request was approved since the last decided cycle, so this tick must decide;
* ``gate`` - the decision the planner sees: each action needing a person is approved in it
  only if an approved request about the same subject exists (it is *consumed*); otherwise a
  request is made (or the open one waited on) and the action is held, with an
  ``awaiting-approval`` rejection in the plan so the audit log says why nothing was sent;
* ``screen`` - live only: the orders of an action adding risk above the notional limit are
  held the same way;
* ``settle`` - a consumed request whose action the planner carried out (no rejection) is
  ``executed``; one the planner deferred stays approved for the next cycle;
* ``carried`` - approved LEAP purchases (asked for once a quarter) are carried out from their
  own decision id, planned on this cycle's facts and re-reviewed by the risk guard.

Every change of a request is one call to the store: the request's state, its audit-log
record (a ``note`` link on the decision that asked) and its notification, atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from constitution.models import Constitution
from engine.execution import risk
from engine.execution.approvals import (
    CARRIED,
    NEEDS_NOTIONAL,
    PERSON,
    Approval,
    ApprovalClosed,
    ApprovalStore,
    Policy,
    State,
    alert_of,
    executed,
    expiry,
    link_of,
    needs_person,
    notional_limit,
    over_notional,
    policy_answer,
    request,
    subject_of,
)
from engine.execution.plan import Plan, Rejection
from engine.market.calendar import new_york_date
from engine.records.alerts import Alert
from engine.records.audit import ExecutionLink
from engine.records.decision import Action, Decision, Verdict
from engine.records.log import DecisionLog, Receipt

AWAITING = "awaiting-approval"


class ApprovalGate:
    def __init__(
        self, constitution: Constitution, store: ApprovalStore, mode: str, policy: Policy = PERSON
    ):
        if mode == "live" and policy.kind != "person":
            raise ValueError("a live run asks a person: its approval policy is 'person'")
        self.c = constitution
        self.store = store
        self.mode = mode
        self.policy = policy
        self._consumed: list[tuple[Approval, int]] = []
        self._seen_approved: set[str] = set()
        self._open: dict[str, Approval] = {}  # subject -> open request, as of the last read

    # ------------------------------------------------------------------ every tick

    def tick(self, at: datetime) -> bool:
        rules = self.c.governance.approvals
        for a in self.store.open_approvals():
            moved = expiry(rules, a, at) or policy_answer(self.policy, a, at)
            if moved is not None:
                self._save(moved, a.state)
        self._open = {a.subject: a for a in self.store.open_approvals()}
        return any(
            a.state == "approved" and a.id not in self._seen_approved for a in self._open.values()
        )

    # ------------------------------------------------------------------ one decision

    def gate(self, decision: Decision, receipt: Receipt, at: datetime) -> tuple[Decision, Plan]:
        """(the decision the planner sees, a plan holding only the held actions' rejections)."""
        self._consumed = []
        verdicts = list(decision.verdicts) or [
            Verdict(action=i, approved=True) for i in range(len(decision.actions))
        ]
        held: list[Rejection] = []
        for i, a in enumerate(decision.actions):
            needs = needs_person(self.c, a) if verdicts[i].approved else None
            if needs is None:
                continue
            note = self._ask(decision, receipt, i, a, needs, None, at)
            if note is not None:
                reasons = (*verdicts[i].reasons, note)
                verdicts[i] = verdicts[i].model_copy(update={"approved": False, "reasons": reasons})
                held.append(Rejection(i, a.kind, a.account, a.symbol, AWAITING, note))
        self._seen_approved |= {a.id for a, _ in self._consumed}
        gated = decision.model_copy(update={"verdicts": tuple(verdicts)})
        return gated, Plan(rejections=tuple(held))

    def screen(self, decision: Decision, receipt: Receipt, plan: Plan, at: datetime) -> Plan:
        """Live: hold the orders of actions adding risk above the notional limit."""
        over = over_notional(plan, notional_limit(self.c, self.mode))
        held: dict[int, str] = {}
        for i, notional in sorted(over.items()):
            note = self._ask(
                decision, receipt, i, decision.actions[i], NEEDS_NOTIONAL, notional, at
            )
            if note is not None:
                held[i] = note
        if not held:
            return plan
        rejections = tuple(
            Rejection(i, decision.actions[i].kind, decision.actions[i].account,
                      decision.actions[i].symbol, AWAITING, note)
            for i, note in held.items()
        )  # fmt: skip
        orders = tuple(o for o in plan.orders if o.action_index not in held)
        return replace(plan, orders=orders, rejections=plan.rejections + rejections)

    def settle(self, plan: Plan, decision_id: str) -> None:
        """Requests consumed by ``plan`` whose actions were carried out become executed."""
        refused = {r.action_index for r in plan.rejections}
        for a, i in self._consumed:
            if i not in refused:
                self._save(executed(a, decision_id), "approved")
        self._consumed = []

    def carried(
        self, decision: Decision, guard: risk.GuardState
    ) -> list[tuple[Decision, Receipt, Approval]]:
        """Approved LEAP purchases no decision of this cycle asked for again: for each, a
        decision to plan (this cycle's facts under the request's decision id, only the
        approved action approved, reviewed by the risk guard now) and the request's receipt."""
        asked = {subject_of(a) for a in decision.actions}
        out = []
        for a in self._open.values():
            if a.state != "approved" or a.action.kind not in CARRIED or a.subject in asked:
                continue
            shell = _shell(decision, a)
            verdict = risk.review(self.c, shell, guard)[0].verdicts[a.action_index]
            if not verdict.approved:
                continue  # held until the guard allows it, or until it lapses
            reviewed = shell.model_copy(update={"verdicts": (*shell.verdicts[:-1], verdict)})
            receipt = Receipt(
                seq=a.decision_seq, hash=a.decision_hash, decision_id=a.decision_id, created=False
            )
            self._seen_approved.add(a.id)
            out.append((reviewed, receipt, a))
        return out

    def finish(self, a: Approval, plan: Plan, decision_id: str) -> None:
        """A carried request whose plan had no rejection for its action is executed."""
        if a.action_index not in {r.action_index for r in plan.rejections}:
            self._save(executed(a, decision_id), "approved")

    # ------------------------------------------------------------------ requests

    def _ask(
        self,
        decision: Decision,
        receipt: Receipt,
        i: int,
        a: Action,
        needs: str,
        notional: float | None,
        at: datetime,
    ) -> str | None:
        """None when an approved request lets ``a`` through (consumed); else why it waits."""
        subject = subject_of(a)
        found = self._open.get(subject)
        if found is not None:
            if found.state == "approved" and (notional or 0.0) <= (
                found.notional or notional or 0.0
            ):
                self._consumed.append((found, i))
                return None
            return f"waiting for approval {found.id} ({found.state}, since {found.requested_at.isoformat()})"
        closed = self.store.last_closed(subject)
        if (
            closed is not None
            and closed.state in ("declined", "expired")
            and new_york_date(closed.requested_at) == new_york_date(at)
        ):  # one request per subject per session: a declined one is asked again next session
            return f"{closed.id} {closed.state} by {closed.by}: {closed.reason}; asked again next session"
        new = request(
            self.c.governance.approvals,
            decision.decision_id,
            (receipt.seq, receipt.hash),
            i,
            a,
            self.mode,
            needs,
            at,
            notional,
        )
        self._save(new, None)
        answered = policy_answer(self.policy, new, at)
        if answered is not None:
            self._save(answered, "pending")
            new = answered
        self._open[subject] = new
        if new.state == "approved":
            self._consumed.append((new, i))
            return None
        return f"approval {new.id} {new.state} ({needs})"

    def _save(self, a: Approval, prior: State | None) -> None:
        self.store.save(a, prior, link_of(a), (alert_of(a),))
        if a.open:
            self._open[a.subject] = a
        elif self._open.get(a.subject, a).id == a.id:
            self._open.pop(a.subject, None)


def _shell(decision: Decision, a: Approval) -> Decision:
    """This cycle's decision under the request's id, holding the approved action at its own
    index (the actions before it are copies, not approved), so the planner derives the
    request's client order ids and business keys."""
    actions: Sequence[Action] = (a.action,) * (a.action_index + 1)
    verdicts = tuple(Verdict(action=k, approved=k == a.action_index) for k in range(len(actions)))
    return decision.model_copy(
        update={"decision_id": a.decision_id, "actions": tuple(actions), "verdicts": verdicts}
    )


class MemoryApprovalStore:
    """Requests in memory, their records in a decision log (tests, dry runs)."""

    def __init__(self, log: DecisionLog):
        self.log = log
        self.rows: dict[str, Approval] = {}
        self.alerts: list[Alert] = []

    def open_approvals(self) -> list[Approval]:
        return sorted(
            (a for a in self.rows.values() if a.open), key=lambda a: (a.requested_at, a.id)
        )

    def last_closed(self, subject: str) -> Approval | None:
        closed = [a for a in self.rows.values() if a.subject == subject and not a.open]
        return max(closed, key=lambda a: (a.answered_at or a.requested_at, a.id), default=None)

    def save(
        self, approval: Approval, prior: State | None, link: ExecutionLink, alerts: Sequence[Alert]
    ) -> None:
        stored = self.rows.get(approval.id)
        if (stored.state if stored else None) != prior:
            raise ApprovalClosed(
                f"approval {approval.id} is {stored.state if stored else 'unknown'}"
            )
        self.log.link(link)
        self.rows[approval.id] = approval
        self.alerts.extend(alerts)
