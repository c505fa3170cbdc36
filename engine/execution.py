"""Execution: write before act, exactly once (docs/execution.md).

For one decision: the decision (with its verdicts) is recorded in the audit log and the
receipt held -> planner rejections are logged -> money operations are applied -> for each
order: the intent is written to the ledger, linked in the audit log, then submitted under its
``client_order_id`` (``DECISION_ID:ACTION:LEG``), and worked through the cancel-replace ladder
-> status and fill reports are linked back to the decision and booked in the ledger.

Exactly once. The broker refuses a second order for a known client order id; the ledger
refuses a second intent for it and a second booking of an execution id; re-planning the same
decision yields the same ids. A crash anywhere leaves at worst an intent the broker never saw,
which reconciliation (``engine.resume``) marks abandoned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from engine.audit import DecisionLog, ExecutionLink, Receipt
from engine.broker import BrokerPort, Fill, OrderSide, OrderState, OrderStatus
from engine.cycle import WeekEvent
from engine.decision import Decision
from engine.ledger import (
    ApplyFill,
    LedgerOp,
    LedgerState,
    OrderRecord,
    RecordIntent,
    UpdateOrder,
    apply_all,
)
from engine.plan_types import Plan, PlannedOrder


class LedgerStore(Protocol):
    """Where the ledger lives. ``apply`` is atomic and durable, idempotent per op id."""

    @property
    def state(self) -> LedgerState: ...

    def apply(self, ops: Sequence[LedgerOp], at: datetime) -> LedgerState: ...


class MemoryLedgerStore:
    """The ledger in memory (backtests, tests). ``on_apply`` sees the state after each op."""

    def __init__(self, state: LedgerState | None = None, on_apply: Callable[[LedgerState, LedgerOp], None] | None = None):
        self._state = state or LedgerState()
        self.journal: list = []
        self._on_apply = on_apply

    @property
    def state(self) -> LedgerState:
        return self._state

    def apply(self, ops: Sequence[LedgerOp], at: datetime) -> LedgerState:
        for op in ops:
            self._state, entries = apply_all(self._state, [op])
            self.journal.extend(entries)
            if self._on_apply:
                self._on_apply(self._state, op)
        return self._state


@dataclass
class ExecutionResult:
    submitted: int = 0
    fills: int = 0
    rejections: int = 0
    events: list[WeekEvent] = field(default_factory=list)


_FILL_EVENTS = {"roll_position": WeekEvent.L2_EXECUTED, "deploy_hedge": WeekEvent.HEDGE_DEPLOYED}


class Executor:
    def __init__(self, broker: BrokerPort, log: DecisionLog, store: LedgerStore, *,
                 cancel_replace_seconds: float = 3.0, retry_smaller: bool = True,
                 wait: Callable[[float], None] = lambda seconds: None):
        self.broker = broker
        self.log = log
        self.store = store
        self.cancel_replace_seconds = cancel_replace_seconds
        self.retry_smaller = retry_smaller
        self.wait = wait  # live: sleeps on the clock; paper and replay: returns at once
        self._unlinked: list[Fill] = []  # broker-initiated fills waiting for the next decision

    # ------------------------------------------------------------------ one decision

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        """Write before act: the decision, verdicts included, durably in the audit log."""
        return self.log.record(decision, constitution_text)

    def execute(self, decision: Decision, receipt: Receipt, plan: Plan, at: datetime) -> ExecutionResult:
        if receipt.decision_id != decision.decision_id:
            raise ValueError(f"receipt {receipt.decision_id} is not for decision {decision.decision_id}")
        result = ExecutionResult(rejections=len(plan.rejections))
        did = decision.decision_id
        for r in plan.rejections:
            self.log.link(ExecutionLink(decision_id=did, kind="note", ref=f"action:{r.action_index}", data={"rejection": r.as_dict()}))
        for f in self._unlinked:
            self.log.link(ExecutionLink.of(did, "fill", f))
        self._unlinked.clear()
        self.store.apply(plan.ops, at)
        if any(a.kind == "kill_switch" for i, a in enumerate(decision.actions) if _approved(decision, i)):
            self.cancel_all(did, at)
        for order in plan.orders:
            result.submitted += self._place(did, order, at)
        result.fills += self.sync_fills(at, result.events)
        return result

    def _place(self, did: str, order: PlannedOrder, at: datetime) -> int:
        coid = order.request.client_order_id
        known = self.store.state.orders.get(coid)
        if known is not None and known.state.is_final:
            return 0  # done before this run (or abandoned by reconciliation): never resubmit
        if known is None:
            intent = OrderRecord(order.request, order.action_index, order.action_kind, order.purpose, order.funding, order.why)
            self.store.apply([RecordIntent(f"intent:{coid}", intent)], at)
            self.log.link(ExecutionLink.of(did, "order", order.request))
        status = self._report(did, self.broker.submit(order.request), at)
        status = self._work(did, order, status, at)
        return 1 if known is None else 0

    def _work(self, did: str, order: PlannedOrder, status: OrderStatus, at: datetime) -> OrderStatus:
        """Cancel-replace: step the limit toward the worst acceptable price, then cancel the
        rest and (once) retry half of it at the worst price."""
        coid = order.request.client_order_id
        for price in order.ladder[1:]:
            if status.state.is_final:
                return status
            self.wait(self.cancel_replace_seconds)
            status = self._report(did, self.broker.replace(coid, price), at)
        if status.state.is_final or order.request.order_type == "MKT":
            return status
        status = self._report(did, self.broker.cancel(coid), at)
        smaller = status.remaining // 2
        if self.retry_smaller and smaller >= 1 and not coid.endswith(".r"):
            request = order.request.model_copy(update={"client_order_id": coid + ".r", "quantity": smaller,
                                                       "limit_price": order.ladder[-1] if order.ladder else None})
            retry = PlannedOrder(request, order.action_index, order.action_kind, order.purpose, order.funding,
                                 (request.limit_price,) if request.limit_price else (), "retry smaller")
            self._place(did, retry, at)
        return status

    def _report(self, did: str, status: OrderStatus, at: datetime) -> OrderStatus:
        self.log.link(ExecutionLink.of(did, "status", status))
        self.store.apply([UpdateOrder(f"status:{status.client_order_id}:{status.state.value}:{status.filled}", status)], at)
        return status

    def cancel_all(self, did: str, at: datetime) -> None:
        for o in self.store.state.open_orders():
            if o.state is not OrderState.PENDING_SUBMIT:
                self._report(did, self.broker.cancel(o.client_order_id), at)

    # ------------------------------------------------------------------ fills

    def sync_fills(self, at: datetime, events: list[WeekEvent] | None = None) -> int:
        """Book every broker fill not yet in the ledger (idempotent by execution id). Fills
        of our orders are linked to their decision first; broker-initiated ones (expiry,
        assignment) to the next decision recorded."""
        n = 0
        state = self.store.state
        for f in self.broker.fills():
            if f.execution_id in state.applied:
                continue
            order = state.orders.get(f.client_order_id)
            if order is not None:
                self.log.link(ExecutionLink.of(order.request.decision_id, "fill", f))
            else:
                self._unlinked.append(f)
            state = self.store.apply([ApplyFill(f.execution_id, f, purpose=_purpose_of(f, state))], at)
            n += 1
            if events is not None:
                events.extend(_events_of(f, order))
        return n


def _approved(decision: Decision, i: int) -> bool:
    return not decision.verdicts or decision.verdicts[i].approved


def _purpose_of(f: Fill, state: LedgerState) -> str:
    held = state.holdings.get((f.account, f.contract.key))
    return held.purpose if held is not None else "income"


def _events_of(f: Fill, order: OrderRecord | None) -> list[WeekEvent]:
    if f.client_order_id == "assignment" and f.contract.right is None:
        return [WeekEvent.ASSIGNMENT]
    if order is None:
        return []
    if order.action_kind == "close_position" and order.why in ("l3_stop_loss", "roll_uneconomic") and f.side is OrderSide.BUY:
        return [WeekEvent.L3_EXECUTED]
    event = _FILL_EVENTS.get(order.action_kind)
    return [event] if event else []
