"""Execution: write before act, exactly once (docs/execution.md).

For one decision: the decision (with its verdicts) is recorded in the audit log and the
receipt held -> planner rejections are logged -> money operations are applied -> for each
order: the intent is written to the ledger, linked in the audit log, then submitted under its
``client_order_id`` (``DECISION_ID:ACTION:LEG``), and worked through the cancel-replace ladder
-> status and fill reports are linked back to the decision and booked in the ledger.

Exactly once. The broker refuses a second order for a known client order id; the ledger
refuses a second intent for it and a second booking of an execution id; re-planning the same
decision yields the same ids. A crash anywhere leaves at worst an intent the broker never saw,
which reconciliation (``engine.execution.resume``) marks abandoned.

Fill links. Every fill is linked in the audit log BEFORE the ledger books it, to a decision
known at that moment: a fill of our order to the order's decision; a broker-initiated fill
(expiry, assignment, called away) to the decision(s) whose orders opened the position it
settles (``origin_decisions``). A crash between the link and the booking is repaired without a
duplicate: a fill is linked at most once per decision, checked against the log
(``LinkReader``) for any decision this process did not itself record. A broker-initiated fill is
told by its ``origin`` (``assignment`` / ``expiry``), set by the broker adapter, never by its
client order id.

Routing (D28). An order for an account the broker cannot route (``BrokerPort.routes``: live, a
ledger account with no IB sub-account mapped, e.g. a Mini just forked) is refused before its
intent is written: a planner rejection ``no-broker-account`` in the audit log, like every other
rejection, and nothing reaches the broker. The rest of the decision is carried out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from engine.execution import risk
from engine.execution.broker import BrokerPort, Fill, OrderSide, OrderState, OrderStatus
from engine.execution.events import WeekEvent
from engine.execution.ledger import (
    ApplyFill,
    LedgerOp,
    LedgerState,
    OrderRecord,
    Purpose,
    RecordIntent,
    ReplaceOrder,
    UpdateOrder,
    apply,
)
from engine.execution.plan import Plan, PlannedOrder, Rejection
from engine.market.calendar import new_york_date
from engine.market.instruments import ContractSpec, SecType
from engine.records.audit import AuditRecord, ExecutionLink
from engine.records.decision import Decision
from engine.records.log import DecisionLog, InMemoryDecisionLog, Receipt

NO_BROKER_ACCOUNT = "no-broker-account"


class LedgerStore(Protocol):
    """Where the ledger lives. ``apply`` is atomic and durable, idempotent per op id."""

    @property
    def state(self) -> LedgerState: ...

    def apply(self, ops: Sequence[LedgerOp], at: datetime) -> LedgerState: ...


class MemoryLedgerStore:
    """The ledger in memory (backtests, tests). ``on_apply`` sees the state after each op."""

    def __init__(
        self,
        state: LedgerState | None = None,
        on_apply: Callable[[LedgerState, LedgerOp], None] | None = None,
    ):
        self._state = state or LedgerState()
        self.journal: list = []
        self.realised: list = []  # the tax ledger's lines (engine.execution.ledger.Realised)
        self._on_apply = on_apply

    @property
    def state(self) -> LedgerState:
        return self._state

    def realised_lines(self) -> list:
        """The tax ledger's lines, in the order they were realised."""
        return list(self.realised)

    def apply(self, ops: Sequence[LedgerOp], at: datetime) -> LedgerState:
        for op in ops:
            result = apply(self._state, op)
            self._state = result.state
            self.journal.extend(result.entries)
            self.realised.extend(result.realised)
            if self._on_apply:
                self._on_apply(self._state, op)
        return self._state


class LinkReader(Protocol):
    """The execution links the audit log already holds for a decision."""

    def links_of(self, decision_id: str) -> Sequence[ExecutionLink]: ...


class _MemoryLinks:
    def __init__(self, log: InMemoryDecisionLog):
        self._log = log

    def links_of(self, decision_id: str) -> list[ExecutionLink]:
        records = (
            AuditRecord.from_row(r)
            for r in self._log.rows
            if r.decision_id == decision_id and r.record_type == "link"
        )
        return [r.link for r in records if r.link is not None]


class _AuditRecords(Protocol):
    def for_decision(self, decision_id: str) -> Sequence[AuditRecord]: ...


class _RecordLinks:
    """Over any store with ``for_decision(decision_id) -> [AuditRecord]`` (the SQL audit store)."""

    def __init__(self, store: _AuditRecords) -> None:
        self._store = store

    def links_of(self, decision_id: str) -> list[ExecutionLink]:
        return [r.link for r in self._store.for_decision(decision_id) if r.link is not None]


def reader_for(log: DecisionLog) -> LinkReader | None:
    """How to read back what ``log`` holds: the in-memory log's rows, or the store of a SQL
    log (``log.store.for_decision``); None when the log cannot be read back."""
    if isinstance(log, InMemoryDecisionLog):
        return _MemoryLinks(log)
    store = getattr(log, "store", None)
    if store is None or not callable(getattr(store, "for_decision", None)):
        return None
    return _RecordLinks(store)


@dataclass
class ExecutionResult:
    submitted: int = 0
    fills: int = 0
    rejections: int = 0
    events: list[WeekEvent] = field(default_factory=list)


_FILL_EVENTS = {"roll_position": WeekEvent.L2_EXECUTED, "deploy_hedge": WeekEvent.HEDGE_DEPLOYED}


class Executor:
    def __init__(
        self,
        broker: BrokerPort,
        log: DecisionLog,
        store: LedgerStore,
        *,
        cancel_replace_seconds: float,  # orders.cancel_replace_seconds
        retry_smaller: bool,  # orders.retry_smaller
        wait: Callable[[float], None] = lambda seconds: None,
        links: LinkReader | None = None,
    ):
        self.broker = broker
        self.log = log
        self.store = store
        self.cancel_replace_seconds = cancel_replace_seconds
        self.retry_smaller = retry_smaller
        self.wait = wait  # live: sleeps on the clock; paper and replay: returns at once
        self.links = links if links is not None else reader_for(log)
        self._unlinked: list[
            Fill
        ] = []  # broker-initiated fills no decision of ours opened: next decision
        # decision id -> execution ids of the fills linked to it. A decision recorded by this
        # process starts empty; any other is read from the log once (a crash may have left a
        # link whose fill was never booked).
        self._fill_links: dict[str, set[str]] = {}
        self._synced_tail: tuple | None = (
            None  # (count, last execution id) of the broker fills last synced
        )

    # ------------------------------------------------------------------ one decision

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        """Write before act: the decision, verdicts included, durably in the audit log."""
        receipt = self.log.record(decision, constitution_text)
        if receipt.created:
            self._fill_links[decision.decision_id] = set()
        return receipt

    def execute(
        self, decision: Decision, receipt: Receipt, plan: Plan, at: datetime
    ) -> ExecutionResult:
        if receipt.decision_id != decision.decision_id:
            raise ValueError(
                f"receipt {receipt.decision_id} is not for decision {decision.decision_id}"
            )
        orders, refused = self._routable(plan.orders)
        rejections = plan.rejections + refused
        result = ExecutionResult(rejections=len(rejections))
        did = decision.decision_id
        for r in rejections:
            self.log.link(
                ExecutionLink(
                    decision_id=did,
                    kind="note",
                    ref=f"action:{r.action_index}",
                    data={"rejection": r.as_dict()},
                )
            )
        for f in self._unlinked:
            self._link_fill(did, f)
        self._unlinked.clear()
        self.store.apply(plan.ops, at)
        if any(
            a.kind == "kill_switch"
            for i, a in enumerate(decision.actions)
            if _approved(decision, i)
        ):
            self.cancel_all(did, at)
        for order in orders:
            result.submitted += self._place(did, order, at)
        result.fills += self.sync_fills(at, result.events)
        return result

    def _routable(
        self, orders: Sequence[PlannedOrder]
    ) -> tuple[tuple[PlannedOrder, ...], tuple[Rejection, ...]]:
        """The orders the broker can route, and one ``no-broker-account`` rejection per action
        whose account it cannot (all its legs are refused: they share the account)."""
        verdict: dict[str, bool] = {}
        kept, refused = [], {}
        for o in orders:
            account = o.request.account
            if account not in verdict:
                verdict[account] = bool(self.broker.routes(account))
            if verdict[account]:
                kept.append(o)
            elif o.action_index not in refused:
                refused[o.action_index] = Rejection(
                    o.action_index,
                    o.action_kind,
                    account,
                    o.request.contract.symbol,
                    NO_BROKER_ACCOUNT,
                    f"{account} has no broker sub-account; map it with --account {account}=CODE and restart",
                )
        return tuple(kept), tuple(refused.values())

    def _place(self, did: str, order: PlannedOrder, at: datetime) -> int:
        coid = order.request.client_order_id
        known = self.store.state.orders.get(coid)
        if known is not None and known.state.is_final:
            return 0  # done before this run (or abandoned by reconciliation): never resubmit
        if known is None:
            intent = OrderRecord(
                order.request,
                order.action_index,
                order.action_kind,
                order.purpose,
                order.funding,
                order.why,
                ladder=order.ladder,
            )
            self.store.apply([RecordIntent(f"intent:{coid}", intent)], at)
            self.log.link(ExecutionLink.of(did, "order", order.request))
        status = self._report(did, self.broker.submit(order.request), at)
        status = self._work(did, order, status, at)
        return 1 if known is None else 0

    def _work(
        self, did: str, order: PlannedOrder, status: OrderStatus, at: datetime, start: int = 1
    ) -> OrderStatus:
        """Cancel-replace: step the limit toward the worst acceptable price (from ladder step
        ``start``), then cancel the rest and (once) retry half of it at the worst price. Each
        step is in the ledger (the order's limit: a restart continues from it) and in the
        audit log (its status link names the step)."""
        coid = order.request.client_order_id
        last = len(order.ladder) - 1
        for k in range(start, len(order.ladder)):
            if status.state.is_final:
                return status
            self.wait(self.cancel_replace_seconds)
            price = order.ladder[k]
            step = {"step": "replace", "index": k, "of": last, "limit_price": price}
            status = self._report(did, self.broker.replace(coid, price), at, step)
        if status.state.is_final or order.request.order_type == "MKT":
            return status
        why = "the worst acceptable price (orders.max_worse_pct) did not fill it all"
        self.wait(self.cancel_replace_seconds)  # the last price gets its time too
        status = self._report(
            did, self.broker.cancel(coid), at, {"step": "cancel", "of": last, "why": why}
        )
        smaller = status.remaining // 2
        if self.retry_smaller and smaller >= 1 and not coid.endswith(".r"):
            request = order.request.model_copy(
                update={
                    "client_order_id": coid + ".r",
                    "quantity": smaller,
                    "limit_price": order.ladder[-1] if order.ladder else None,
                }
            )
            retry = PlannedOrder(
                request,
                order.action_index,
                order.action_kind,
                order.purpose,
                order.funding,
                (request.limit_price,) if request.limit_price else (),
                "retry smaller",
            )
            self._place(did, retry, at)
        return status

    def _report(
        self, did: str, status: OrderStatus, at: datetime, step: dict | None = None
    ) -> OrderStatus:
        """Link the broker's report (with the ladder step that caused it) and book it."""
        coid = status.client_order_id
        link = ExecutionLink.of(did, "status", status)
        if step is not None:
            link = link.model_copy(update={"data": {**link.data, "ladder": step}})
        self.log.link(link)
        ops: list[LedgerOp] = [
            UpdateOrder(f"status:{coid}:{status.state.value}:{status.filled}", status)
        ]
        if step is not None and step["step"] == "replace" and not status.state.is_final:
            ops.append(ReplaceOrder(f"replace:{coid}:{step['index']}", coid, step["limit_price"]))
        self.store.apply(ops, at)
        return status

    def resume_working(self, order: OrderRecord, at: datetime) -> OrderStatus | None:
        """Continue the cancel-replace ladder of a working limit order this process did not
        place (a restart after a crash): from the step after its current limit, to a fill or
        the constitution's cancel (and the one retry smaller). None if there is nothing to
        work (not a limit order, or already final at the broker)."""
        r = order.request
        if r.order_type != "LMT" or not order.is_open:
            return None
        ladder = order.ladder or ((r.limit_price,) if r.limit_price else ())
        start = ladder.index(r.limit_price) + 1 if r.limit_price in ladder else len(ladder)
        planned = PlannedOrder(
            r,
            order.action_index,
            order.action_kind,
            order.purpose,
            order.funding,
            ladder,
            order.why,
        )
        status = OrderStatus(
            client_order_id=r.client_order_id,
            broker_order_id="",
            state=order.state,
            filled=order.filled,
            remaining=r.quantity - order.filled,
            at=at,
        )
        return self._work(r.decision_id, planned, status, at, start=max(start, 1))

    def cancel_all(self, did: str, at: datetime) -> None:
        """The kill switch cancels the working orders that add risk; exits and hedges stay
        (a risk-reducing action is never refused by a halt, D61)."""
        for o in self.store.state.open_orders():
            if o.state is not OrderState.PENDING_SUBMIT and risk.cancels_on_halt(o.action_kind):
                self._report(did, self.broker.cancel(o.client_order_id), at)

    def cancel_account(self, did: str, at: datetime, account: str) -> int:
        """§0 the user's per-account pause "cancels live orders": every working order of the
        account, each status recorded against decision ``did``. Returns how many."""
        working = [
            o
            for o in self.store.state.open_orders(account)
            if o.state is not OrderState.PENDING_SUBMIT
        ]
        for o in working:
            self._report(did, self.broker.cancel(o.client_order_id), at)
        return len(working)

    # ------------------------------------------------------------------ fills

    def sync_fills(self, at: datetime, events: list[WeekEvent] | None = None) -> int:
        """Book every broker fill not yet in the ledger (idempotent by execution id), each
        linked in the audit log first: a fill of our order to its decision, a broker-initiated
        one (expiry, assignment) to the decision(s) that opened the position it settles, so the
        link is durable before the booking. Only a fill on a position no recorded order opened
        (brought in from outside) waits for the next decision."""
        fills = self.broker.fills()
        tail = (len(fills), fills[-1].execution_id if fills else None)
        if tail == self._synced_tail:  # brokers append executions; nothing new since the last sync
            return 0
        n = 0
        state = self.store.state
        for f in fills[self._already_synced(fills) :]:
            if f.execution_id in state.applied:
                continue
            order = None if f.broker_initiated else state.orders.get(f.client_order_id)
            targets = (
                (order.request.decision_id,) if order is not None else origin_decisions(state, f)
            )
            for did in targets:
                self._link_fill(did, f)
            if not targets:
                self._unlinked.append(f)
            state = self.store.apply(
                [ApplyFill(f.execution_id, f, purpose=_purpose_of(f, state))], at
            )
            n += 1
            if events is not None:
                events.extend(_events_of(f, order))
        self._synced_tail = tail
        return n

    def _already_synced(self, fills: Sequence[Fill]) -> int:
        """How many of ``fills`` the last sync saw: its count, when the broker's list still
        has the last fill it saw at that place (an append-only list); 0 (look at every fill,
        each checked against the ledger) when it does not."""
        if self._synced_tail is None:
            return 0
        count, last = self._synced_tail
        if 0 < count <= len(fills) and fills[count - 1].execution_id == last:
            return count
        return 0

    def _link_fill(self, did: str, f: Fill) -> None:
        """Link ``f`` to decision ``did`` unless the log has that link already."""
        linked = self._fill_links.get(did)
        if linked is None:
            found = self.links.links_of(did) if self.links is not None else ()
            linked = self._fill_links[did] = {
                str(x.data.get("execution_id")) for x in found if x.kind == "fill"
            }
        if f.execution_id in linked:
            return
        self.log.link(ExecutionLink.of(did, "fill", f))
        linked.add(f.execution_id)


def origin_decisions(state: LedgerState, f: Fill) -> tuple[str, ...]:
    """The decisions whose filled orders opened the position a broker-initiated fill settles.

    An option's expiry or assignment settles the account's orders on that contract (the
    opening side: the settlement trades the other way); an assignment's share delivery
    (stock bought for a put, sold for a call, at the strike) settles the short option on the
    symbol at that strike with the nearest expiry not before the fill. Orders of accounts
    merged away count when the account's own orders do not (a merge moves the position)."""
    opening = OrderSide.BUY if f.side is OrderSide.SELL else OrderSide.SELL
    if f.contract.sec_type is SecType.STOCK:
        if f.origin != "assignment":
            return ()
        right, day = ("P" if f.side is OrderSide.BUY else "C"), new_york_date(f.at)
        candidates = [
            o
            for o in state.orders.values()
            if o.filled
            and o.request.side is OrderSide.SELL
            and _assigned(o.request.contract, f.contract.symbol, right, f.price, day)
        ]
        if candidates:
            nearest = min(e for o in candidates if (e := o.request.contract.expiry) is not None)
            candidates = [o for o in candidates if o.request.contract.expiry == nearest]
    else:
        candidates = [
            o
            for o in state.orders.values()
            if o.filled
            and o.request.side is opening
            and o.request.contract.symbol == f.contract.symbol  # cheap, before the key's text
            and o.request.contract.key == f.contract.key
        ]
    own = [o for o in candidates if o.request.account == f.account]
    if not own:
        merged = {a.id for a in state.accounts.values() if a.status == "merged"}
        own = [o for o in candidates if o.request.account in merged]
    return tuple(sorted({o.request.decision_id for o in own}))


def _assigned(c: ContractSpec, symbol: str, right: str, strike: float, day: date) -> bool:
    return (
        c.symbol == symbol
        and c.right == right
        and c.strike is not None
        and abs(c.strike - strike) < 1e-6
        and c.expiry is not None
        and c.expiry >= day
    )


def _approved(decision: Decision, i: int) -> bool:
    return not decision.verdicts or decision.verdicts[i].approved


def _purpose_of(f: Fill, state: LedgerState) -> Purpose:
    held = state.holdings.get((f.account, f.contract.key))
    return held.purpose if held is not None else "income"


def _events_of(f: Fill, order: OrderRecord | None) -> list[WeekEvent]:
    if f.origin == "assignment" and f.contract.right is None:
        return [WeekEvent.ASSIGNMENT]
    if order is None:
        return []
    if (
        order.action_kind == "close_position"
        and order.why in ("l3_stop_loss", "roll_uneconomic")
        and f.side is OrderSide.BUY
    ):
        return [WeekEvent.L3_EXECUTED]
    event = _FILL_EVENTS.get(order.action_kind)
    return [event] if event else []
