"""Crash safety: the SAFE -> ACTIVE resume sequence (§9) and order reconciliation.

load state -> fetch the broker's open orders, fills and positions -> reconcile:

* fills the ledger has not booked are booked (exactly once, by execution id);
* a ledger order the broker is working is *adopted* (its status updated);
* a ledger order the broker no longer works is closed with the broker's last word: filled
  (by its fills) or cancelled; an intent the broker never saw (a crash between writing the
  intent and the submit) is marked ``inactive`` - it is never sent late, on stale prices;
* an order the broker works that the ledger does not know is an *orphan*: cancelled;
* positions that differ between ledger and broker are recorded and keep the system SAFE;

every difference is recorded (a ``Note`` in the ledger's operation log) -> risk check
(``risk_problems``: positions agree with the broker, the ledger balances) -> ACTIVE. A failed
risk check latches SAFE (a kill stays a kill), whatever was asked: a reset never overrides it,
and only an operator's reset after a passing check clears the latch. A SAFE or kill that is
not latched is the market's (a VIX tier, the broker down): resume leaves it, and the cycle
releases it once the market no longer says so (D60). Accounts held by an L3 or a user's pause
are released by their own paths (``money.account_releases``, ``alluse account resume``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from constitution.errors import AllUseError
from engine.execution.broker import BrokerPort, OrderState, OrderStatus
from engine.execution.executor import Executor, LedgerStore
from engine.execution.ledger import LedgerState, Note, SetMode, TradingMode, UpdateOrder, total


@dataclass(frozen=True, slots=True)
class Difference:
    """What reconciliation found (``kind``, ``ref``, ``detail``) and what it did about it."""

    kind: str  # adopted | closed | abandoned | orphan-cancelled | position-mismatch | worked
    ref: str
    detail: str = ""
    did: str = ""


@dataclass(frozen=True)
class ResumeReport:
    differences: tuple[Difference, ...]
    fills_booked: int
    mode_before: str
    mode_after: str
    problems: tuple[str, ...] = ()  # why the risk check failed (empty: it passed)
    latched_after: bool = False

    @property
    def clean(self) -> bool:
        return not self.problems


def reconcile_orders(store: LedgerStore, broker: BrokerPort, at: datetime) -> list[Difference]:
    state = store.state
    working = {s.client_order_id: s for s in broker.open_orders()}
    filled: dict[str, int] | None = None  # summed from the broker's fills only when needed
    diffs, ops = [], []
    for o in state.open_orders():
        coid = o.client_order_id
        if coid in working:
            status = working[coid]
            if status.state != o.state or status.filled != o.filled:
                diffs.append(
                    Difference(
                        "adopted",
                        coid,
                        f"{o.state.value} -> {status.state.value}",
                        "took the broker's status",
                    )
                )
        else:
            if filled is None:
                filled = defaultdict(int)
                for f in broker.fills():
                    filled[f.client_order_id] += f.quantity
            got = filled.get(coid, 0)
            last = _last_word(broker, coid) if got == 0 else None
            if last is not None and last.state.is_final:  # it got there, and ended unfilled
                state_, why = last.state, last.reason or f"{last.state.value} at the broker"
                diffs.append(
                    Difference(
                        "closed",
                        coid,
                        f"{o.state.value} -> {state_.value} at the broker ({why})",
                        "closed in the ledger with the broker's last word",
                    )
                )
            elif got == 0 and o.state is OrderState.PENDING_SUBMIT:
                state_, why = OrderState.INACTIVE, "intent never reached the broker; not sent late"
                diffs.append(Difference("abandoned", coid, why, "marked inactive"))
            else:
                state_ = OrderState.FILLED if got >= o.request.quantity else OrderState.CANCELLED
                why = "closed at the broker"
                diffs.append(
                    Difference(
                        "closed",
                        coid,
                        f"{o.state.value} -> {state_.value} ({got} filled)",
                        "closed in the ledger with the broker's last word",
                    )
                )
            status = OrderStatus(
                client_order_id=coid,
                broker_order_id="",
                state=state_,
                filled=got,
                remaining=o.request.quantity - got,
                reason=why,
                at=at,
            )
        ops.append(UpdateOrder(f"reconcile:{coid}:{status.state.value}:{status.filled}", status))
    for coid, status in working.items():
        if coid not in state.orders:
            broker.cancel(coid)
            diffs.append(
                Difference(
                    "orphan-cancelled",
                    coid,
                    f"{status.state.value}, unknown to the ledger",
                    "cancelled at the broker",
                )
            )
    store.apply(ops, at)
    return diffs


def _last_word(broker: BrokerPort, coid: str) -> OrderStatus | None:
    """The broker's status of an order it no longer works, where the adapter can say
    (``status``: the paper venue, IB); None when it cannot or never had the order."""
    status_of = getattr(broker, "status", None)
    if status_of is None:
        return None
    try:
        return status_of(coid)
    except (KeyError, LookupError, AllUseError):
        return None


def work_resumed_orders(store: LedgerStore, executor: Executor, at: datetime) -> list[Difference]:
    """A working limit order a crashed process left behind continues its cancel-replace
    ladder from where it stopped, to a fill or the constitution's cancel (and retry
    smaller); it never rests at a stale price blocking re-entry. Each step is linked to
    the order's decision in the audit log."""
    working = {s.client_order_id for s in executor.broker.open_orders()}
    out = []
    for o in store.state.open_orders():
        if o.client_order_id not in working or o.request.order_type != "LMT":
            continue
        before = o.request.limit_price
        status = executor.resume_working(o, at)
        if status is None:
            continue
        now = store.state.orders[o.client_order_id]
        avg = f" at {now.avg_fill_price:.2f} on average" if now.avg_fill_price else ""
        out.append(
            Difference(
                "worked",
                o.client_order_id,
                f"working at {before} ({o.filled}/{o.request.quantity} filled), ladder {list(o.ladder)}",
                f"continued its ladder: {now.state.value}, {now.filled}/{o.request.quantity} "
                f"filled{avg}",
            )
        )
    return out


def position_differences(state: LedgerState, broker: BrokerPort) -> list[Difference]:
    ours = {(h.account, h.key): h.quantity for h in state.holdings.values() if h.quantity}
    theirs = {(p.account, p.contract.key): p.quantity for p in broker.positions() if p.quantity}
    return [
        Difference(
            "position-mismatch",
            f"{a}/{k}",
            f"ledger {ours.get((a, k), 0)}, broker {theirs.get((a, k), 0)}",
            "SAFE until they agree",
        )
        for a, k in sorted(set(ours) | set(theirs))
        if ours.get((a, k), 0) != theirs.get((a, k), 0)
    ]


def risk_problems(state: LedgerState, differences: list[Difference]) -> list[str]:
    """The resume sequence's risk check: what must hold before the system may be ACTIVE."""
    out = []
    mismatches = [d for d in differences if d.kind == "position-mismatch"]
    if mismatches:
        out.append(
            f"positions differ from the broker's ({len(mismatches)}: {', '.join(d.ref for d in mismatches[:3])})"
        )
    if total(state) != 0:
        out.append(f"the ledger does not balance (sum {total(state)} cents)")
    return out


def resume(
    store: LedgerStore, executor: Executor, at: datetime, *, reset: bool = False, reason: str = ""
) -> ResumeReport:
    """Run the resume sequence. ``reset`` clears a latched SAFE/kill (an operator's reset;
    ``reason`` is written on the mode). Mode changes get an id unique to the ledger's state, so
    a later resume at the same time still records its own."""
    before = store.state.mode
    if not executor.broker.is_connected():
        executor.broker.connect()
    booked = executor.sync_fills(at)
    diffs = reconcile_orders(store, executor.broker, at)
    diffs += work_resumed_orders(store, executor, at)
    booked += executor.sync_fills(at)
    diffs += position_differences(store.state, executor.broker)
    stamp = at.isoformat()
    if diffs:
        n0 = len(store.state.applied)
        store.apply(
            [
                Note(
                    f"reconcile:{stamp}:{n0}:{n}",
                    d.kind,
                    (("ref", d.ref), ("detail", d.detail), ("did", d.did)),
                )
                for n, d in enumerate(diffs)
            ],
            at,
        )
    state = store.state
    problems = risk_problems(state, diffs)
    op_id = f"mode:resume:{stamp}:{len(state.applied)}"
    if problems:  # latched SAFE, or a kill stays a kill (never weakened by a failed check)
        failed = "resume risk check failed: " + "; ".join(problems)
        mode: TradingMode
        mode, why = (
            ("kill", f"{state.mode_reason}; {failed}") if state.mode == "kill" else ("safe", failed)
        )
        store.apply([SetMode(op_id, mode, why, True)], at)
    elif state.mode != "active" and state.latched and reset:
        why = f"reset: {reason}" if reason else "reset: reconciled, risk check passed"
        store.apply([SetMode(op_id, "active", why)], at)
    # An unlatched SAFE or kill is a market condition (a VIX tier, the broker down): the next
    # cycle releases it when the market no longer says so (money.system_release, D60).
    state = store.state
    return ResumeReport(tuple(diffs), booked, before, state.mode, tuple(problems), state.latched)
