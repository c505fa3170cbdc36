"""A TWS / IB Gateway stand-in speaking the real socket protocol on 127.0.0.1.

It runs its own asyncio loop in a background thread, so tests stay synchronous, and the real
IB client (ib_async, or ib_insync) connects to it exactly as it would to TWS. It never imports
an IB client library: it speaks bytes (``wire.py``) laid out as ``messages.py`` documents.

Faults are injected per order (``OrderScript``: fill, rest, reject, partial fills, drop the
connection before the acknowledgement, a pacing violation, a slow acknowledgement) and per
gateway (``Faults``: NaN quotes, missing greeks, no option-data subscription, historical-data
pacing violations, slow answers to a request type). ``stop()`` is a gateway going away;
``start()`` again on the same port is it coming back.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from . import messages as m
from .market import SecurityMaster, Underlying, black_scholes, years_between
from .wire import Deframer, parse_version_range

SERVER_VERSION = 178  # the highest ib_async 2.x accepts; the stub goes lower if the client asks
WAIT = 5.0  # bound on every cross-thread call into the stub


@dataclass
class OrderScript:
    """What the gateway does with one order (keyed by orderRef)."""

    action: str = "fill"  # fill | rest | reject | drop | lose | pace
    fills: tuple[float, ...] = ()  # partial fill quantities for "fill" (default: all at once)
    price: float | None = None  # fill price (default: the limit)
    reason: str = "Order rejected - reason:stub"  # for "reject"
    delay: float = 0.0  # seconds before the acknowledgement (a slow answer)
    pace_times: int = 1  # for "pace": how many placements are refused before one is accepted


@dataclass
class Faults:
    nan_quotes: set[str] = field(default_factory=set)  # symbols whose bid/ask arrive as NaN
    missing_greeks: set[str] = field(default_factory=set)  # option computations "not computed"
    no_option_data: bool = False  # error 354 for option market data (no OPRA subscription)
    hist_pacing: int = 0  # number of historical requests answered with a pacing violation
    hist_pacing_at: int | None = None  # ... starting with this historical request (0-based)
    hist_drop_at: int | None = None  # drop the connection on this historical request (0-based)
    hist_down_after_drop: bool = False  # and stop listening (the gateway went away)
    slow: dict[int, float] = field(default_factory=dict)  # request msg id -> answer delay (s)


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    version: int = 0
    client_id: int = -1


class TwsStub:
    def __init__(
        self,
        accounts: tuple[str, ...] = ("DU111", "DU222", "DU333", "DU444"),
        today: date = date(2025, 1, 6),
        commission: float = 1.05,
    ) -> None:
        self.accounts = list(accounts)
        self.today = today
        self.commission = commission
        self.master = SecurityMaster()
        self.faults = Faults()
        self.scripts: dict[str, OrderScript] = {}
        self.orders: dict[int, m.StubOrder] = {}
        self.positions: dict[tuple[str, int], list[float]] = {}  # (acct, conId) -> [qty, cost]
        self.account_values: dict[str, dict[str, str]] = {}
        self.requests: list[list[str]] = []  # every message received, for assertions
        self.port = 0
        self._sessions: list[_Session] = []
        self._next_order_id = 1
        self._next_perm = 9000
        self._next_exec = 1
        self.settlements: list[
            tuple[m.StubOrder, str, float, float]
        ] = []  # broker-initiated executions
        self._pacing_seen: dict[str, int] = {}
        self._hist_seen = 0
        self.hist_requests: list[dict] = []  # every historical-data request, parsed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.AbstractServer | None = None
        self._handlers: dict[int, Callable] = {
            71: self._start_api,
            61: self._req_positions,
            5: self._req_open_orders,
            16: self._req_open_orders,
            99: self._req_completed,
            6: self._req_account_updates,
            76: self._req_account_multi,
            7: self._req_executions,
            9: self._req_contract_details,
            78: self._req_secdef,
            1: self._req_mkt_data,
            20: self._req_historical,
            3: self._place_order,
            4: self._cancel_order,
            49: self._req_current_time,
        }

    # ----- lifecycle (called from the test thread) -----

    def start(self) -> int:
        self._call(self._listen())
        return self.port

    def stop(self) -> None:
        """The gateway goes away: the listener closes and every session is dropped."""
        self._call(self._shutdown())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()

    def drop_connections(self) -> None:
        """A network blip: sessions are cut, the gateway keeps listening."""
        self._call(self._drop())

    def connected_clients(self) -> list[int]:
        return self._call(self._clients())

    def _call(self, coro):
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(WAIT)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port or 0, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._drop()

    async def _drop(self) -> None:
        for s in list(self._sessions):
            s.writer.close()
        self._sessions.clear()

    async def _clients(self) -> list[int]:
        return [s.client_id for s in self._sessions if s.client_id >= 0]

    # ----- scripting (test thread) -----

    def add_underlying(self, u: Underlying) -> None:
        self._call(self._async(lambda: self.master.add(u)))

    def set_position(self, account: str, symbol: str, qty: float, avg_cost: float) -> None:
        def put():
            c = self.master.underlying_contract(symbol)
            self.positions[(account, c.con_id)] = [qty, avg_cost]

        self._call(self._async(put))

    def set_option_position(
        self,
        account: str,
        symbol: str,
        expiry: str,
        strike: float,
        right: str,
        qty: float,
        avg_cost: float,
    ) -> None:
        """An option position (``avg_cost`` per contract, as IB reports it)."""

        def put():
            u = self.master.underlyings[symbol]
            c = self.master._option(symbol, expiry, strike, right, u.symbol)
            self.positions[(account, c.con_id)] = [qty, avg_cost]

        self._call(self._async(put))

    def set_account_value(self, account: str, key: str, value: str) -> None:
        self._call(
            self._async(lambda: self.account_values.setdefault(account, {}).__setitem__(key, value))
        )

    def placed_orders(self) -> list[m.StubOrder]:
        """Every order the gateway accepted, in order of arrival."""
        return self._call(
            self._async(lambda: sorted(self.orders.values(), key=lambda o: o.order_id))
        )

    def script(self, order_ref: str, script: OrderScript) -> None:
        self._call(self._async(lambda: self.scripts.__setitem__(order_ref, script)))

    def fill(self, order_ref: str, qty: float, price: float) -> None:
        """The market trades against a resting order."""

        async def go():
            o = self._by_ref(order_ref)
            self._execute(o, qty, price)

        self._call(go())

    def assign(
        self, account: str, symbol: str, expiry: str, strike: float, right: str, contracts: int
    ) -> None:
        """IB assigns ``contracts`` short options: it books two executions no order stands
        behind (orderId 0, permId 0, no orderRef) - the option bought back at 0 and the shares
        delivered at the strike (bought for a put, sold for a call) - and sends them to every
        client, unasked."""

        async def go():
            u = self.master.underlyings[symbol]
            option = self.master._option(symbol, expiry, strike, right, u.symbol)
            shares = self.master.underlying_contract(symbol)
            qty = contracts * float(option.multiplier or 100)
            self._settle(account, option, "BUY", contracts, 0.0)
            self._settle(account, shares, "BUY" if right == "P" else "SELL", qty, strike)

        self._call(go())

    def expire(
        self, account: str, symbol: str, expiry: str, strike: float, right: str, contracts: int
    ) -> None:
        """IB expires ``contracts`` short options worthless: one execution at 0, no order."""

        async def go():
            u = self.master.underlyings[symbol]
            self._settle(
                account,
                self.master._option(symbol, expiry, strike, right, u.symbol),
                "BUY",
                contracts,
                0.0,
            )

        self._call(go())

    def _settle(
        self, account: str, contract: m.StubContract, action: str, qty: float, price: float
    ) -> None:
        o = m.StubOrder(
            order_id=0,
            perm_id=0,
            client_id=0,
            contract=contract,
            action=action,
            quantity=qty,
            order_type="",
            limit=None,
            tif="",
            account=account,
            order_ref="",
            status="Filled",
            filled=qty,
            avg_price=price,
        )
        exec_id = f"0000s{self._next_exec:04d}.01.01"
        self._next_exec += 1
        self.settlements.append((o, exec_id, qty, price))
        self._book(o, qty, price)
        for s in self._sessions:
            self._send(s, m.execution(s.version, -1, o, exec_id, self._stamp(), qty, price))
            self._send(s, m.commission_report(exec_id, 0.0))

    def order(self, order_ref: str) -> m.StubOrder:
        return self._call(self._async(lambda: self._by_ref(order_ref)))

    def placements(self, order_ref: str) -> int:
        """How many placeOrder messages for a NEW order id carried this orderRef."""

        def count():
            seen = {
                (f[1]) for f in self.requests if f[0] == "3" and len(f) > 26 and f[26] == order_ref
            }
            return len(seen)

        return self._call(self._async(count))

    def count_requests(self, msg_id: int) -> int:
        return self._call(self._async(lambda: sum(1 for f in self.requests if f[0] == str(msg_id))))

    async def _async(self, fn):
        return fn()

    def _by_ref(self, order_ref: str) -> m.StubOrder:
        matches = [o for o in self.orders.values() if o.order_ref == order_ref]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} orders with orderRef {order_ref!r}")
        return matches[0]

    # ----- connection -----

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        self._sessions.append(session)
        deframer = Deframer()
        try:
            while data := await reader.read(65536):
                for fields in deframer.feed(data):
                    await self._dispatch(session, fields)
        except (ConnectionError, ValueError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()

    async def _dispatch(self, s: _Session, fields: list[str]) -> None:
        if not s.version:
            _low, high = parse_version_range(fields)
            s.version = min(SERVER_VERSION, high)
            self._send(s, m.handshake(s.version, "20250106 09:30:00 EST"))
            return
        self.requests.append(fields)
        msg_id = int(fields[0])
        delay = self.faults.slow.get(msg_id, 0.0)
        handler = self._handlers.get(msg_id)
        if handler is None:
            return
        if delay:
            asyncio.get_running_loop().create_task(self._later(delay, handler, s, fields))
        else:
            handler(s, fields)

    async def _later(self, delay: float, handler, s: _Session, fields: list[str]) -> None:
        await asyncio.sleep(delay)
        if s in self._sessions:
            handler(s, fields)

    def _send(self, s: _Session, data: bytes) -> None:
        if not s.writer.is_closing():
            s.writer.write(data)

    def _to_owner(self, o: m.StubOrder, data: bytes) -> None:
        for s in self._sessions:
            if s.client_id == o.client_id:
                self._send(s, data)

    # ----- account and order state requests -----

    def _start_api(self, s: _Session, f: list[str]) -> None:
        s.client_id = int(f[2])
        used = max([o.order_id for o in self.orders.values()], default=0)
        self._next_order_id = max(self._next_order_id, used + 1)
        self._send(s, m.next_valid_id(self._next_order_id))
        self._send(s, m.managed_accounts(self.accounts))
        self._send(s, m.error(s.version, -1, 2104, "Market data farm connection is OK:usfarm"))

    def _req_current_time(self, s: _Session, f: list[str]) -> None:
        self._send(
            s,
            m.current_time(
                int(datetime(self.today.year, self.today.month, self.today.day, 15).timestamp())
            ),
        )

    def _req_positions(self, s: _Session, f: list[str]) -> None:
        for (acct, con_id), (qty, cost) in sorted(self.positions.items()):
            self._send(s, m.position(acct, self.master.contracts[con_id], qty, cost))
        self._send(s, m.position_end())

    def _req_open_orders(self, s: _Session, f: list[str]) -> None:
        everyone = f[0] == "16"
        for o in self.orders.values():
            if o.status in ("PreSubmitted", "Submitted") and (
                everyone or o.client_id == s.client_id
            ):
                self._send(s, m.open_order(s.version, o))
                self._send(s, m.order_status(o))
        self._send(s, m.open_order_end())

    def _req_completed(self, s: _Session, f: list[str]) -> None:
        for o in self.orders.values():
            if o.status in ("Filled", "Cancelled", "Inactive"):
                self._send(s, m.completed_order(s.version, o))
        self._send(s, m.completed_orders_end())

    def _req_account_updates(self, s: _Session, f: list[str]) -> None:
        acct = f[3]
        for key, value in self.account_values.get(acct, {"NetLiquidation": "100000"}).items():
            self._send(s, m.account_value(key, value, "USD", acct))
        self._send(s, m.account_download_end(acct))

    def _req_account_multi(self, s: _Session, f: list[str]) -> None:
        req_id, acct = int(f[2]), f[3]
        for key, value in self.account_values.get(acct, {"NetLiquidation": "100000"}).items():
            self._send(s, m.account_update_multi(req_id, acct, key, value, "USD"))
        self._send(s, m.account_update_multi_end(req_id))

    def _req_executions(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        for o in self.orders.values():
            if o.client_id != s.client_id:
                continue
            for exec_id, qty, price in o.executions:
                self._send(s, m.execution(s.version, req_id, o, exec_id, self._stamp(), qty, price))
                self._send(s, m.commission_report(exec_id, self.commission * qty))
        for o, exec_id, qty, price in self.settlements:  # the account's, whoever asks
            self._send(s, m.execution(s.version, req_id, o, exec_id, self._stamp(), qty, price))
            self._send(s, m.commission_report(exec_id, 0.0))
        self._send(s, m.execution_end(req_id))

    # ----- reference and market data -----

    def _req_contract_details(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        want = _contract_from(f, 3)
        found = self.master.match(want)
        if not found:
            self._send(
                s,
                m.error(
                    s.version, req_id, 200, "No security definition has been found for the request"
                ),
            )
            return
        for c in found:
            under = self.master.underlying_contract(c.symbol) if c.sec_type == "OPT" else None
            self._send(s, m.contract_details(req_id, c, under.con_id if under else 0))
        self._send(s, m.contract_details_end(req_id))

    def _req_secdef(self, s: _Session, f: list[str]) -> None:
        req_id, symbol = int(f[1]), f[2]
        u = self.master.underlyings.get(symbol)
        if u is not None:
            under = self.master.underlying_contract(symbol)
            self._send(
                s,
                m.secdef_opt_params(
                    req_id, "SMART", under.con_id, symbol, "100", list(u.expiries), list(u.strikes)
                ),
            )
        self._send(s, m.secdef_opt_params_end(req_id))

    def _req_mkt_data(self, s: _Session, f: list[str]) -> None:
        req_id = int(f[2])
        c = self.master.contracts.get(int(f[3] or 0)) or _first(
            self.master.match(_contract_from(f, 3))
        )
        snapshot = f[17] == "1"
        if c is None:
            self._send(s, m.error(s.version, req_id, 200, "No security definition has been found"))
            return
        if c.sec_type == "OPT" and self.faults.no_option_data:
            self._send(
                s, m.error(s.version, req_id, 354, "Requested market data is not subscribed.OPRA")
            )
            return
        self._send(s, m.market_data_type(req_id, 1))
        if c.sec_type == "OPT":
            self._send_option_ticks(s, req_id, c)
        else:
            self._send_quote(s, req_id, c.symbol, self.master.underlyings[c.symbol].price)
        if snapshot:
            self._send(s, m.tick_snapshot_end(req_id))

    def _send_quote(self, s: _Session, req_id: int, symbol: str, mid: float) -> None:
        if symbol in self.faults.nan_quotes:
            bid = ask = float("nan")
        else:
            half = max(0.01, round(mid * 0.002, 2))
            bid, ask = round(mid - half, 2), round(mid + half, 2)
        self._send(s, m.tick_price(req_id, 1, bid, 10))
        self._send(s, m.tick_price(req_id, 2, ask, 12))
        self._send(s, m.tick_price(req_id, 4, round(mid, 2), 1))
        self._send(s, m.tick_price(req_id, 9, round(mid, 2), 0))

    def _send_option_ticks(self, s: _Session, req_id: int, c: m.StubContract) -> None:
        u = self.master.underlyings[c.symbol]
        g = black_scholes(u.price, c.strike, years_between(self.today, c.expiry), u.iv, c.right)
        self._send_quote(s, req_id, c.symbol, max(g.price, 0.05))
        self._send(s, m.tick_size(req_id, 27 if c.right == "C" else 28, 1500))
        self._send(s, m.tick_size(req_id, 8, 2500))  # the day's volume
        if c.symbol in self.faults.missing_greeks:
            self._send(s, m.tick_option_computation(req_id, 13, -1, -2, -1, -2, -2, -2, u.price))
            return
        for tick_type in (10, 11, 13):
            self._send(
                s,
                m.tick_option_computation(
                    req_id, tick_type, u.iv, g.delta, g.price, g.gamma, g.vega, g.theta, u.price
                ),
            )

    def _req_historical(self, s: _Session, f: list[str]) -> None:
        """reqHistoricalData (msg 20, no version field): reqId, the 12 contract fields,
        includeExpired, endDateTime, barSize, duration, useRTH, whatToShow, formatDate,
        keepUpToDate, chartOptions. Daily bars in the window that ends at endDateTime's day and
        spans the duration ("N D" / "N W" / "N M" / "N Y"), as TWS answers: one historicalData
        message (start and end of the window as "YYYYMMDD HH:MM:SS", then the bars)."""
        req_id = int(f[1])
        c = self.master.contracts.get(int(f[2] or 0)) or _first(
            self.master.match(_contract_from(f, 2))
        )
        seen = self._hist_seen
        self._hist_seen += 1
        self.hist_requests.append(
            {
                "req_id": req_id,
                "end": f[15],
                "bar_size": f[16],
                "duration": f[17],
                "rth": f[18],
                "what": f[19],
                "symbol": c.symbol if c else f[3],
            }
        )
        if self.faults.hist_drop_at == seen:
            s.writer.close()
            if self.faults.hist_down_after_drop:
                asyncio.get_running_loop().create_task(self._shutdown())
            return
        first_pacing = self.faults.hist_pacing_at or 0
        if self.faults.hist_pacing > 0 and seen >= first_pacing:
            self.faults.hist_pacing -= 1
            self._send(
                s,
                m.error(
                    s.version,
                    req_id,
                    162,
                    "Historical Market Data Service error "
                    "message:Historical data request pacing violation",
                ),
            )
            return
        bars = self._bars_in_window(c, f[15], f[17]) if c is not None else []
        if not bars:
            self._send(
                s,
                m.error(
                    s.version,
                    req_id,
                    162,
                    "Historical Market Data Service error message:HMDS query returned no data",
                ),
            )
            return
        start, end = _window(f[15], f[17], self.today)
        self._send(
            s,
            m.historical_data(req_id, f"{start:%Y%m%d} 00:00:00", f"{end:%Y%m%d} 23:59:59", bars),
        )

    def _bars_in_window(self, c: m.StubContract, end_text: str, duration: str) -> list[tuple]:
        start, end = _window(end_text, duration, self.today)
        return [
            b
            for b in self.master.underlyings[c.symbol].bars
            if start <= datetime.strptime(b[0], "%Y%m%d").date() <= end
        ]

    # ----- orders -----

    def _place_order(self, s: _Session, f: list[str]) -> None:
        order_id = int(f[1])
        existing = self.orders.get(order_id)
        if existing is not None:
            self._modify(s, existing, f)
            return
        ref = f[26]
        script = self.scripts.get(ref, OrderScript())
        if script.action == "pace" and self._pacing_seen.get(ref, 0) < script.pace_times:
            self._pacing_seen[ref] = self._pacing_seen.get(ref, 0) + 1
            self._send(
                s,
                m.error(
                    s.version,
                    order_id,
                    100,
                    "Max rate of messages per second has been exceeded:max=50 rec=51",
                ),
            )
            return
        if script.action == "lose":  # the connection dies before the order reaches IB
            s.writer.close()
            return
        o = self._new_order(s, f)
        if script.action == "drop":  # the order reached IB; the acknowledgement never does
            o.status = "Submitted"
            s.writer.close()
            return
        if script.delay:
            asyncio.get_running_loop().call_later(script.delay, self._accept, o, script)
        else:
            self._accept(o, script)

    def _new_order(self, s: _Session, f: list[str]) -> m.StubOrder:
        con_id = int(f[2] or 0)
        contract = self.master.contracts.get(con_id) or _first(
            self.master.match(_contract_from(f, 2))
        )
        self._next_perm += 1
        o = m.StubOrder(
            order_id=int(f[1]),
            perm_id=self._next_perm,
            client_id=s.client_id,
            contract=contract,
            action=f[16],
            quantity=float(f[17]),
            order_type=f[18],
            limit=float(f[19]) if f[19] else None,
            tif=f[21],
            account=f[23],
            order_ref=f[26],
        )
        self.orders[o.order_id] = o
        self._next_order_id = max(self._next_order_id, o.order_id + 1)
        return o

    def _accept(self, o: m.StubOrder, script: OrderScript) -> None:
        if script.action == "reject":
            o.status = "Inactive"
            o.completed_time = self._stamp()
            self._to_owner(o, m.error(self._version_of(o), o.order_id, 201, script.reason))
            self._to_owner(o, m.order_status(o))
            return
        o.status = "Submitted"
        self._to_owner(o, m.open_order(self._version_of(o), o))
        self._to_owner(o, m.order_status(o))
        if script.action in ("fill", "pace"):
            price = script.price if script.price is not None else (o.limit or 1.0)
            for qty in script.fills or (o.quantity,):
                self._execute(o, qty, price)

    def _modify(self, s: _Session, o: m.StubOrder, f: list[str]) -> None:
        o.quantity = float(f[17])
        o.limit = float(f[19]) if f[19] else None
        self._send(s, m.open_order(s.version, o))
        self._send(s, m.order_status(o))

    def _cancel_order(self, s: _Session, f: list[str]) -> None:
        o = self.orders.get(int(f[2]))
        if o is None or o.status not in ("PreSubmitted", "Submitted"):
            self._send(
                s,
                m.error(
                    s.version,
                    int(f[2]),
                    161,
                    "Cancel attempted when order is not in a cancellable state",
                ),
            )
            return
        o.status = "Cancelled"
        o.completed_time = self._stamp()
        self._send(s, m.error(s.version, o.order_id, 202, "Order Canceled - reason:"))
        self._send(s, m.order_status(o))

    def _execute(self, o: m.StubOrder, qty: float, price: float) -> None:
        exec_id = f"0000e{self._next_exec:04d}.01.01"
        self._next_exec += 1
        o.avg_price = (o.avg_price * o.filled + price * qty) / (o.filled + qty)
        o.filled += qty
        o.last_fill_price = price
        o.executions.append((exec_id, qty, price))
        if o.remaining <= 0:
            o.status = "Filled"
            o.completed_time = self._stamp()
        self._book(o, qty, price)
        v = self._version_of(o)
        self._to_owner(o, m.execution(v, -1, o, exec_id, self._stamp(), qty, price))
        self._to_owner(o, m.order_status(o))
        self._to_owner(o, m.commission_report(exec_id, self.commission * qty))

    def _book(self, o: m.StubOrder, qty: float, price: float) -> None:
        key = (o.account, o.contract.con_id)
        held, cost = self.positions.get(key, [0.0, 0.0])
        signed = qty if o.action == "BUY" else -qty
        mult = float(o.contract.multiplier or 1)
        new = held + signed
        if new == 0:
            self.positions.pop(key, None)
            return
        same_way = held == 0 or (held > 0) == (signed > 0)
        avg = (cost * abs(held) + price * mult * qty) / abs(new) if same_way else cost
        self.positions[key] = [new, avg]

    def _version_of(self, o: m.StubOrder) -> int:
        return next(
            (s.version for s in self._sessions if s.client_id == o.client_id), SERVER_VERSION
        )

    def _stamp(self) -> str:
        return f"{self.today:%Y%m%d} 15:00:00 UTC"


def _contract_from(f: list[str], at: int) -> m.StubContract:
    """The 12 contract fields a client sends: conId .. tradingClass (with primaryExchange)."""
    con_id, symbol, sec_type, expiry, strike, right, mult, exch, _prim, ccy, _local, tclass = f[
        at : at + 12
    ]
    return m.StubContract(
        int(con_id or 0),
        symbol,
        sec_type,
        expiry,
        float(strike or 0),
        right,
        mult,
        exch,
        ccy,
        tclass,
    )


def _first(items: list):
    return items[0] if items else None


_UNIT_DAYS = {"D": 1, "W": 7, "M": 30, "Y": 365}


def _window(end_text: str, duration: str, today: date) -> tuple[date, date]:
    """The days a request covers: ``duration`` ("365 D") back from ``end_text``'s date (the
    first 8 characters, YYYYMMDD; empty means the stub's today)."""
    end = datetime.strptime(end_text[:8], "%Y%m%d").date() if end_text else today
    count, unit = duration.split()
    return end - timedelta(days=int(count) * _UNIT_DAYS[unit] - 1), end
