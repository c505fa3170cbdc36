"""Interactive Brokers broker adapter: ``IBBroker`` implements ``engine.execution.broker.BrokerPort``.

Threading model: the IB client library is asyncio-based and not thread-safe, so one
``IBSession`` owns it on a private event loop in a daemon thread. Every public method is a
synchronous call that runs a coroutine on that loop with a bound timeout; all adapter state is
touched only on the loop thread. Subscriber callbacks run on the loop thread too: keep them
short (append to a queue, write a record).

State comes from IB's reports, never from assumptions: an order that IB has not acknowledged
stays ``pending_submit``; after a reconnect the open orders, completed orders and executions are
re-read and matched by ``orderRef`` (= the client order id), so an order placed before a drop
is adopted, never placed twice.

Settlements: IB books an option's assignment, exercise and expiry as executions no order stands
behind (no orderRef; ``ib_mapping.is_settlement``). The client library stores them without
announcing them, so ``fills()`` (and reconciliation) picks them up and reports them as fills of
``origin`` ``assignment`` / ``expiry``, as the paper venue does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from adapters.ib import mapping as mp
from constitution.errors import OperationalError, RetryError, StopError
from engine.clock import Clock, WallClock
from engine.execution.broker import (
    BrokerEvent,
    BrokerPosition,
    Fill,
    OrderRequest,
    OrderState,
    OrderStatus,
)
from engine.market.instruments import ContractSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

PAPER_PORTS = (7497, 4002)  # TWS paper, Gateway paper
LIVE_PORTS = (7496, 4001)


# ----- errors -----


class IBUnavailable(RetryError):
    """The gateway is unreachable or the connection dropped (exit 3; retry later)."""


class IBPacing(RetryError):
    """IB kept refusing requests for pacing after every backoff attempt."""


class IBReadOnly(StopError):
    """The adapter was opened read-only; orders are refused before anything is sent."""


class IBAccountMismatch(OperationalError):
    """Paper mode connected to a live account (or the configured accounts are absent)."""


class IBContractNotFound(StopError):
    """IB has no (or more than one) contract for the specification."""


class UnknownOrder(StopError):
    """No order with this client order id is known to the adapter or to IB."""


# ----- configuration -----


class IBConfig(BaseModel):
    """How to reach TWS / IB Gateway. Paper (7497) by default; real money needs ``live``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=7497, gt=0, lt=65536)
    client_id: int = Field(default=1, ge=0)
    readonly: bool = False
    live: bool = False
    accounts: dict[str, str] = Field(default_factory=dict)  # GEN/REV/COM/MINI-n -> IB code
    connect_timeout: float = Field(default=4.0, gt=0)
    request_timeout: float = Field(default=15.0, gt=0)
    ack_timeout: float = Field(default=3.0, gt=0)
    reconnect_initial: float = Field(default=1.0, gt=0)
    reconnect_max: float = Field(default=60.0, gt=0)
    reconnect_attempts: int | None = Field(default=None, ge=1)  # None: keep trying
    pacing_initial: float = Field(default=2.0, gt=0)
    pacing_max: float = Field(default=120.0, gt=0)
    pacing_attempts: int = Field(default=6, ge=1)
    commission_grace: float = Field(default=2.0, ge=0)

    def account_map(self) -> mp.AccountMap:
        return mp.AccountMap(codes=self.accounts)


def backoff(initial: float, cap: float, attempt: int) -> float:
    """Exponential backoff: initial, 2x, 4x ... capped (attempt counts from 0)."""
    return min(cap, initial * (2**attempt))


# ----- the session: one IB client on its own event loop -----


class IBSession:
    """Owns the IB client, its loop thread, the connection and reconnection with backoff."""

    def __init__(self, config: IBConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or WallClock()
        self.ib: Any = None
        self.accounts: list[str] = []
        self.server_version = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="ib-session", daemon=True)
        self._thread.start()
        self._closing = False
        self.pacing_waits = 0  # how often this session slowed down for IB's pacing
        self._reconnecting: asyncio.Task | None = None
        self._on_drop: list[Callable[[str], None]] = []
        self._on_restore: list[Callable[[], Awaitable[None]]] = []
        self._on_give_up: list[Callable[[str], None]] = []
        self.call(self._create())

    def _run_loop(self) -> None:
        # ib_insync looks the loop up through the policy (get_event_loop), not the running loop
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _create(self) -> None:
        self.ib = mp.iblib.IB()
        self.ib.RaiseRequestErrors = True  # a refused request raises, so pacing can be told apart
        self.ib.disconnectedEvent += self._dropped

    # --- running code on the loop ---

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the session loop; bounded by ``timeout`` (default request_timeout)."""
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout or self.config.request_timeout)
        except FutureTimeout:
            fut.cancel()
            raise IBUnavailable(
                f"IB did not answer within {timeout or self.config.request_timeout:g}s"
            ) from None

    # --- connection ---

    def is_connected(self) -> bool:
        return bool(self.ib is not None and self.ib.isConnected())

    def connect(self) -> None:
        self._closing = False
        self.call(self._connect(), timeout=self.config.connect_timeout * 4 + 5)

    async def _connect(self) -> None:
        c = self.config
        try:
            await self.ib.connectAsync(
                c.host, c.port, clientId=c.client_id, timeout=c.connect_timeout, readonly=c.readonly
            )
        except (TimeoutError, OSError, ConnectionError) as exc:
            raise IBUnavailable(
                f"cannot reach TWS/IB Gateway at {c.host}:{c.port} "
                f"(client id {c.client_id}): {exc or type(exc).__name__}"
            ) from None
        self.accounts = list(self.ib.managedAccounts())
        self.server_version = self.ib.client.serverVersion()
        self._check_accounts()

    def _check_accounts(self) -> None:
        c = self.config
        live_accounts = [a for a in self.accounts if not mp.is_paper_account(a)]
        if not c.live and live_accounts:
            self._close_now()
            raise IBAccountMismatch(
                f"paper mode, but {c.host}:{c.port} manages live account(s) "
                f"{', '.join(live_accounts)}; refusing to continue"
            )
        missing = c.account_map().missing(self.accounts)
        if missing:
            self._close_now()
            raise IBAccountMismatch(
                f"configured sub-account(s) {', '.join(missing)} are not among "
                f"the gateway's accounts {', '.join(self.accounts)}"
            )

    def disconnect(self) -> None:
        self._closing = True
        self.call(self._disconnect())

    async def _disconnect(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            self._reconnecting = None
        self._close_now()

    def _close_now(self) -> None:
        self._closing = True
        self.ib.disconnect()

    def close(self) -> None:
        """Disconnect and stop the loop thread."""
        if self._thread.is_alive():
            self.disconnect()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # --- drops and reconnection ---

    def on_drop(self, fn: Callable[[str], None]) -> None:
        self._on_drop.append(fn)

    def on_restore(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._on_restore.append(fn)

    def on_give_up(self, fn: Callable[[str], None]) -> None:
        self._on_give_up.append(fn)

    def _dropped(self) -> None:
        if self._closing:
            return
        for fn in self._on_drop:
            fn("connection to IB lost")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        c, attempt = self.config, 0
        while not self._closing:
            await asyncio.sleep(backoff(c.reconnect_initial, c.reconnect_max, attempt))
            attempt += 1
            try:
                await self._connect()
            except IBAccountMismatch as exc:
                return self._give_up(str(exc))
            except IBUnavailable as exc:
                if c.reconnect_attempts is not None and attempt >= c.reconnect_attempts:
                    return self._give_up(f"{exc}; gave up after {attempt} attempt(s)")
                continue
            for hook in self._on_restore:
                await hook()
            return None

    def _give_up(self, why: str) -> None:
        for fn in self._on_give_up:
            fn(why)

    # --- pacing ---

    async def paced(self, request: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``request``; on an IB pacing error wait (exponential backoff) and try again."""
        c = self.config
        for attempt in range(c.pacing_attempts):
            try:
                return await request()
            except mp.iblib.RequestError as exc:
                if not mp.is_pacing(exc.code, exc.message):
                    raise
                log.warning("IB pacing on %s (code %s); slowing down", what, exc.code)
                self.pacing_waits += 1
                await asyncio.sleep(backoff(c.pacing_initial, c.pacing_max, attempt))
        raise IBPacing(f"IB still refuses {what} for pacing after {c.pacing_attempts} attempts")


# ----- the broker -----


@dataclass
class _Tracked:
    """One order as the adapter knows it (touched only on the loop thread)."""

    client_order_id: str
    sub_account: str
    spec: ContractSpec
    quantity: float
    trade: Any = None
    perm_id: int = 0
    order_id: int = 0
    state: OrderState = OrderState.PENDING_SUBMIT
    filled: float = 0.0
    avg_price: float = 0.0
    reason: str = ""
    error: tuple[int, str] | None = None
    status: OrderStatus | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class IBBroker:
    """``BrokerPort`` over TWS / IB Gateway. Paper (port 7497) unless ``IBConfig.live``."""

    name = "ib"

    def __init__(
        self,
        config: IBConfig | None = None,
        clock: Clock | None = None,
        session: IBSession | None = None,
    ) -> None:
        self.config = config or IBConfig()
        self.clock = clock or WallClock()
        self.is_live = self.config.live
        self.accounts = self.config.account_map()
        self.session = session or IBSession(self.config, self.clock)
        self._orders: dict[str, _Tracked] = {}
        self._by_order_id: dict[int, _Tracked] = {}
        self._contracts: dict[str, Any] = {}
        self._fills: dict[str, Fill] = {}
        self._pending_fills: dict[str, Any] = {}
        self._scanned = 0  # how many of the client's executions fills() has looked at
        self._subscribers: list[Callable[[BrokerEvent], None]] = []
        self.session.call(self._wire())

    async def _wire(self) -> None:
        ib = self.session.ib
        ib.orderStatusEvent += self._on_status
        ib.errorEvent += self._on_error
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        self.session.on_drop(self._on_drop)
        self.session.on_restore(self._on_restore)
        self.session.on_give_up(lambda why: self._emit(BrokerEvent(kind="error", message=why)))

    # ----- BrokerPort: connection -----

    def connect(self) -> None:
        self.session.connect()
        self.session.call(self._reconcile())

    def disconnect(self) -> None:
        self.session.disconnect()

    def close(self) -> None:
        self.session.close()

    def is_connected(self) -> bool:
        """False while the gateway is down or reconnecting: the facts' ``broker_connected``."""
        return self.session.is_connected()

    def subscribe(self, callback: Callable[[BrokerEvent], None]) -> None:
        self._subscribers.append(callback)

    def routes(self, account: str) -> bool:
        """Only a sub-account mapped to an IB account code (``IBConfig.accounts``) is routed."""
        return account in self.accounts.codes

    # ----- BrokerPort: orders -----

    def submit(self, order: OrderRequest) -> OrderStatus:
        self._writable()
        return self.session.call(self._submit(order), timeout=self._order_budget())

    def cancel(self, client_order_id: str) -> OrderStatus:
        self._writable()
        return self.session.call(self._cancel(client_order_id), timeout=self._order_budget())

    def replace(self, client_order_id: str, limit_price: float) -> OrderStatus:
        """Cancel-replace as IB's in-place modification (same order id): atomic at the
        exchange, so there is no moment with two live orders or none."""
        self._writable()
        return self.session.call(
            self._replace(client_order_id, limit_price), timeout=self._order_budget()
        )

    def status(self, client_order_id: str) -> OrderStatus:
        return self.session.call(self._status_of(client_order_id))

    def open_orders(self) -> Sequence[OrderStatus]:
        self._connected()
        return self.session.call(self._open_orders())

    def positions(self) -> Sequence[BrokerPosition]:
        self._connected()
        return self.session.call(self._positions())

    def fills(self, since: datetime | None = None) -> Sequence[Fill]:
        return self.session.call(self._fills_since(since))

    def cash_balances(self) -> dict[str, float]:
        """Cash of each mapped sub-account as IB reports it (``TotalCashValue``, in USD or the
        account's base currency). A sub-account IB reports no cash for is absent: the caller
        decides (the live ledger refuses to open without it)."""
        self._connected()
        return self.session.call(self._cash_balances())

    def reconcile(self) -> None:
        """Re-read open and completed orders and executions from IB and adopt them."""
        self._connected()
        self.session.call(self._reconcile())

    # ----- guards -----

    def _writable(self) -> None:
        if self.config.readonly:
            raise IBReadOnly("IB adapter is read-only: no order was sent")

    def _connected(self) -> None:
        if not self.session.is_connected():
            raise IBUnavailable("not connected to TWS/IB Gateway")

    def _order_budget(self) -> float:
        c = self.config
        pacing = sum(backoff(c.pacing_initial, c.pacing_max, i) for i in range(c.pacing_attempts))
        return c.request_timeout * 3 + c.ack_timeout * (c.pacing_attempts + 1) + pacing

    # ----- submit -----

    async def _submit(self, req: OrderRequest) -> OrderStatus:
        known = self._orders.get(req.client_order_id)
        if known is not None:
            return self._snapshot(known)
        self._connected()
        account = self.accounts.to_ib(req.account)
        if await self._find_at_broker(req.client_order_id):
            return self._snapshot(self._orders[req.client_order_id])
        contract = await self._qualify(req.contract)
        c = self.config
        for attempt in range(c.pacing_attempts):
            t = self._place(req, contract, account)
            await self._wait_change(t, c.ack_timeout)
            if t.error is None or not mp.is_pacing(t.error[0]):
                return self._snapshot(t)
            # IB dropped the order message for pacing: wait, then make sure it really is
            # absent before sending it again
            self._forget(t)
            self.session.pacing_waits += 1
            await asyncio.sleep(backoff(c.pacing_initial, c.pacing_max, attempt))
            if await self._find_at_broker(req.client_order_id):
                return self._snapshot(self._orders[req.client_order_id])
        raise IBPacing(
            f"IB refused order {req.client_order_id} for pacing {c.pacing_attempts} times"
        )

    def _place(self, req: OrderRequest, contract: Any, account: str) -> _Tracked:
        t = _Tracked(req.client_order_id, req.account, req.contract, float(req.quantity))
        self._orders[req.client_order_id] = t
        t.trade = self.session.ib.placeOrder(contract, mp.to_ib_order(req, account))
        t.order_id = t.trade.order.orderId
        self._by_order_id[t.order_id] = t
        self._refresh(t)
        return t

    def _forget(self, t: _Tracked) -> None:
        self._orders.pop(t.client_order_id, None)
        self._by_order_id.pop(t.order_id, None)

    async def _wait_change(self, t: _Tracked, timeout: float) -> None:
        """Wait for IB's next word on the order; silence is not a state (a timeout leaves
        the order pending, to be settled by later reports or reconciliation)."""
        t.changed.clear()
        try:
            await asyncio.wait_for(t.changed.wait(), timeout)
        except TimeoutError:
            pass

    async def _qualify(self, spec: ContractSpec) -> Any:
        cached = self._contracts.get(spec.key)
        if cached is not None:
            return cached
        contract = mp.to_ib_contract(spec)
        try:
            details = await self.session.paced(
                lambda: self.session.ib.reqContractDetailsAsync(contract), f"contract {spec.key}"
            )
        except mp.iblib.RequestError as exc:
            raise IBContractNotFound(f"IB has no contract for {spec.key}: {exc.message}") from None
        if len(details) != 1:
            raise IBContractNotFound(f"IB returned {len(details)} contracts for {spec.key}")
        found = details[0].contract
        found.exchange = contract.exchange  # keep SMART routing; details name the venue
        self._contracts[spec.key] = found
        return found

    # ----- cancel / replace / status -----

    async def _cancel(self, coid: str) -> OrderStatus:
        t = self._known(coid)
        if t.state.is_final:
            return self._snapshot(t)
        self._connected()
        self._require_trade(t)
        self.session.ib.cancelOrder(t.trade.order)
        await self._wait_until(t, lambda: t.state.is_final, self.config.ack_timeout)
        return self._snapshot(t)

    async def _replace(self, coid: str, limit_price: float) -> OrderStatus:
        t = self._known(coid)
        if t.state.is_final:
            # filled (or cancelled) between the last report and this step of the ladder:
            # nothing to move; the final state is the answer, as the paper broker gives it
            return self._snapshot(t)
        self._connected()
        self._require_trade(t)
        order = t.trade.order
        order.lmtPrice = float(limit_price)
        self.session.ib.placeOrder(t.trade.contract, order)
        await self._wait_change(t, self.config.ack_timeout)
        return self._snapshot(t)

    async def _wait_until(self, t: _Tracked, done: Callable[[], bool], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not done() and loop.time() < end:
            await self._wait_change(t, end - loop.time())

    def _known(self, coid: str) -> _Tracked:
        t = self._orders.get(coid)
        if t is None:
            raise UnknownOrder(f"no order with client order id {coid!r}")
        return t

    def _require_trade(self, t: _Tracked) -> None:
        if t.trade is None or not t.trade.order.orderId:
            raise IBUnavailable(
                f"order {t.client_order_id} is not bound to this session yet; reconcile first"
            )

    async def _status_of(self, coid: str) -> OrderStatus:
        return self._snapshot(self._known(coid))

    async def _open_orders(self) -> list[OrderStatus]:
        await self._adopt_open()
        return [self._snapshot(t) for t in self._orders.values() if not t.state.is_final]

    async def _positions(self) -> list[BrokerPosition]:
        rows = await self.session.paced(self.session.ib.reqPositionsAsync, "positions")
        out = []
        for p in rows:
            spec = mp.from_ib_contract(p.contract)
            if spec is not None and p.position:
                out.append(
                    mp.to_position(self.accounts.from_ib(p.account), spec, p.position, p.avgCost)
                )
        return sorted(out, key=lambda p: (p.account, p.contract.key))

    async def _fills_since(self, since: datetime | None) -> list[Fill]:
        await self._take_settlements()
        fills = sorted(self._fills.values(), key=lambda f: (f.at, f.execution_id))
        return [f for f in fills if since is None or f.at >= since]

    async def _cash_balances(self) -> dict[str, float]:
        ib, out = self.session.ib, {}
        for sub, code in sorted(self.accounts.codes.items()):
            cash = mp.cash_value(ib.accountValues(code))
            if cash is None:  # not synchronised at connect (more than IB's sub-account limit)
                await self.session.paced(
                    partial(ib.reqAccountUpdatesMultiAsync, code), f"account values of {code}"
                )
                cash = mp.cash_value(ib.accountValues(code))
            if cash is not None:
                out[sub] = cash
        return out

    # ----- reconciliation -----

    async def _find_at_broker(self, coid: str) -> bool:
        """Is an order with this orderRef already at IB (working or done today)?"""
        await self._adopt_open()
        if coid not in self._orders:
            await self._adopt_completed()
        return coid in self._orders

    async def _adopt_open(self) -> set[str]:
        trades = await self.session.paced(self.session.ib.reqAllOpenOrdersAsync, "open orders")
        return {self._adopt(trade) for trade in trades}

    async def _adopt_completed(self) -> set[str]:
        trades = await self.session.paced(
            lambda: self.session.ib.reqCompletedOrdersAsync(False), "completed orders"
        )
        return {self._adopt(trade) for trade in trades}

    async def _reconcile(self) -> None:
        if self.config.readonly:
            return  # IB does not serve order state to read-only clients
        seen = await self._adopt_open() | await self._adopt_completed()
        fills = await self.session.paced(self.session.ib.reqExecutionsAsync, "executions")
        settlements = []
        for f in fills:
            if mp.is_settlement(f.execution, self._order_known(f.execution.permId)):
                settlements.append(f)
            else:
                self._record_fill(f, f.commissionReport.commission)
        self._record_settlements(settlements)
        for t in list(self._orders.values()):
            if not t.state.is_final and t.client_order_id not in seen:
                t.error = None
                t.reason = "not found at IB on reconciliation (the order never reached IB)"
                self._set_state(t, OrderState.INACTIVE)

    def _adopt(self, trade: Any) -> str:
        order = trade.order
        coid = order.orderRef or f"ib:{order.permId}"  # manual TWS orders have no orderRef
        t = self._orders.get(coid)
        if t is None:
            spec = mp.from_ib_contract(trade.contract)
            if spec is None:
                return coid
            t = _Tracked(
                coid, self.accounts.from_ib(order.account), spec, float(order.totalQuantity)
            )
            self._orders[coid] = t
        t.trade = trade  # after a reconnect the old Trade object is dead: bind the new one
        if order.orderId:  # completed orders come without one
            t.order_id = order.orderId
            self._by_order_id[order.orderId] = t
        t.perm_id = order.permId or t.perm_id
        self._refresh(t)
        return coid

    # ----- events from IB (loop thread) -----

    def _on_status(self, trade: Any) -> None:
        t = self._tracked_for(trade.order)
        if t is not None:
            # the client library reports an order error as a status change *before* it
            # publishes the error itself: judge the state once both are in
            asyncio.get_running_loop().call_soon(self._refresh_and_wake, t)

    def _refresh_and_wake(self, t: _Tracked) -> None:
        self._refresh(t)
        t.changed.set()  # IB answered (e.g. acknowledged a modification), even if unchanged

    def _on_error(self, req_id: int, code: int, text: str, _contract: Any = None) -> None:
        t = self._by_order_id.get(req_id)
        if t is None or mp.is_warning(code):
            return
        t.error = (code, text)
        if mp.is_rejection(code) or code == mp.ORDER_CANCELLED_CODE:
            t.reason = text
        asyncio.get_running_loop().call_soon(self._refresh, t)
        t.changed.set()

    def _tracked_for(self, order: Any) -> _Tracked | None:
        if order.orderRef and order.orderRef in self._orders:
            return self._orders[order.orderRef]
        return self._by_order_id.get(order.orderId)

    def _refresh(self, t: _Tracked) -> None:
        if t.trade is None:
            return
        st, order = t.trade.orderStatus, t.trade.order
        t.perm_id = st.permId or order.permId or t.perm_id
        filled = max(st.filled, _finite_or_zero(getattr(order, "filledQuantity", 0.0)))
        t.filled = max(t.filled, filled)
        if st.avgFillPrice:
            t.avg_price = st.avgFillPrice
        state = mp.order_state(st.status, t.filled, t.error[0] if t.error else None)
        if state is not None and not (t.state.is_final and not state.is_final):
            self._set_state(t, state)
        else:
            self._publish(t)

    def _set_state(self, t: _Tracked, state: OrderState) -> None:
        t.state = state
        self._publish(t)

    def _publish(self, t: _Tracked) -> None:
        status = self._snapshot(t)
        if t.status is None or _differs(t.status, status):
            t.status = status
            t.changed.set()
            self._emit(BrokerEvent(kind="status", status=status))

    def _snapshot(self, t: _Tracked) -> OrderStatus:
        avg = t.avg_price or self._avg_from_fills(t.client_order_id)
        return mp.to_order_status(
            t.client_order_id,
            t.perm_id,
            t.state,
            t.filled,
            t.quantity,
            avg,
            t.reason,
            self.clock.now(),
        )

    def _avg_from_fills(self, coid: str) -> float:
        mine = [f for f in self._fills.values() if f.client_order_id == coid]
        qty = sum(f.quantity for f in mine)
        return sum(f.quantity * f.price for f in mine) / qty if qty else 0.0

    def _on_exec(self, trade: Any, fill: Any) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._fills or exec_id in self._pending_fills:
            return
        # the commission report follows the execution; wait a moment for it
        self._pending_fills[exec_id] = fill
        grace = self.config.commission_grace
        asyncio.get_running_loop().call_later(grace, self._flush_fill, exec_id)

    def _on_commission(self, _trade: Any, fill: Any, report: Any) -> None:
        pending = self._pending_fills.pop(fill.execution.execId, None)
        if pending is not None:
            self._record_fill(pending, report.commission)

    def _flush_fill(self, exec_id: str) -> None:
        pending = self._pending_fills.pop(exec_id, None)
        if pending is not None:
            self._record_fill(pending, float("nan"))

    def _record_fill(self, fill: Any, commission: float) -> None:
        ex = fill.execution
        if ex.execId in self._fills or not ex.orderRef and not ex.permId:
            return
        coid = ex.orderRef or f"ib:{ex.permId}"
        t = self._orders.get(coid)
        spec = t.spec if t is not None else mp.from_ib_contract(fill.contract)
        if spec is None:
            return
        sub = t.sub_account if t is not None else self.accounts.from_ib(ex.acctNumber)
        recorded = mp.to_fill(coid, sub, spec, ex, commission)
        self._fills[ex.execId] = recorded
        self._emit(BrokerEvent(kind="fill", fill=recorded))

    # ----- settlements (assignment, exercise, expiry) -----

    def _order_known(self, perm_id: int) -> bool:
        return bool(perm_id) and any(t.perm_id == perm_id for t in self._orders.values())

    async def _take_settlements(self) -> None:
        """Executions the client library stored without announcing them (no order of this
        session behind them): settlements, or fills of an order placed by hand, which IB
        reports among its open or completed orders."""
        fills = self.session.ib.fills()
        if len(fills) == self._scanned:
            return
        new = [
            f
            for f in fills
            if f.execution.execId not in self._fills
            and f.execution.execId not in self._pending_fills
            and not f.execution.orderRef
        ]
        if (
            any(f.execution.permId and not self._order_known(f.execution.permId) for f in new)
            and self.session.is_connected()
            and not self.config.readonly
        ):
            await self._adopt_open()
            await self._adopt_completed()
        settlements = []
        for f in new:
            if mp.is_settlement(f.execution, self._order_known(f.execution.permId)):
                settlements.append(f)
            else:
                self._record_fill(f, f.commissionReport.commission)
        self._record_settlements(settlements)
        self._scanned = len(fills)

    def _record_settlements(self, fills: list[Any]) -> None:
        rows = []
        for f in sorted(fills, key=lambda f: (f.execution.time, f.execution.execId)):
            ex = f.execution
            spec = mp.from_ib_contract(f.contract)
            if ex.execId in self._fills or spec is None:
                continue
            rows.append((self.accounts.from_ib(ex.acctNumber), spec, f))
        origins = mp.settlement_origins([(sub, spec, f.execution) for sub, spec, f in rows])
        for (sub, spec, f), origin in zip(rows, origins, strict=True):
            recorded = mp.to_fill(
                origin, sub, spec, f.execution, f.commissionReport.commission, origin
            )
            self._fills[f.execution.execId] = recorded
            self._emit(BrokerEvent(kind="fill", fill=recorded))

    # ----- connection events -----

    def _on_drop(self, why: str) -> None:
        for t in self._orders.values():
            t.changed.set()  # wake any waiter: its answer will come from reconciliation
        self._by_order_id.clear()
        self._emit(BrokerEvent(kind="disconnected", message=why))

    async def _on_restore(self) -> None:
        try:
            await self._reconcile()
        except Exception as exc:  # noqa: BLE001 - keep the session alive; report it
            self._emit(BrokerEvent(kind="error", message=f"reconciliation failed: {exc}"))
        self._emit(BrokerEvent(kind="reconnected", message="reconnected and reconciled"))

    def _emit(self, event: BrokerEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not break the IB loop
                log.exception("broker event subscriber failed on %s", event.kind)


def _differs(a: OrderStatus, b: OrderStatus) -> bool:
    return (a.state, a.filled, a.remaining, a.avg_fill_price, a.reason, a.broker_order_id) != (
        b.state,
        b.filled,
        b.remaining,
        b.avg_fill_price,
        b.reason,
        b.broker_order_id,
    )


def _finite_or_zero(x: float) -> float:
    return x if 0 <= x < 1e300 else 0.0
