"""Outgoing TWS messages, field by field, for server versions 176..178.

Field orders follow the TWS API as decoded by ib_async 2.x / ib_insync 0.9.x (decoder.py):
version-gated fields are marked with the server version that introduced or removed them.
Empty strings stand for "unset", as TWS sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .wire import encode

# incoming (server -> client) message ids
TICK_PRICE, TICK_SIZE, ORDER_STATUS, ERR_MSG, OPEN_ORDER = 1, 2, 3, 4, 5
ACCT_VALUE, NEXT_VALID_ID, CONTRACT_DATA, EXECUTION_DATA = 6, 9, 10, 11
MANAGED_ACCTS, HISTORICAL_DATA, TICK_OPTION_COMPUTATION = 15, 17, 21
CURRENT_TIME, CONTRACT_DATA_END, OPEN_ORDER_END, ACCT_DOWNLOAD_END = 49, 52, 53, 54
EXECUTION_DATA_END, TICK_SNAPSHOT_END, MARKET_DATA_TYPE, COMMISSION_REPORT = 55, 57, 58, 59
POSITION_DATA, POSITION_END, ACCOUNT_UPDATE_MULTI, ACCOUNT_UPDATE_MULTI_END = 61, 62, 73, 74
SECDEF_OPT_PARAMS, SECDEF_OPT_PARAMS_END, COMPLETED_ORDER, COMPLETED_ORDERS_END = 75, 76, 101, 102


@dataclass
class StubContract:
    con_id: int
    symbol: str
    sec_type: str  # STK, IND, OPT
    expiry: str = ""  # YYYYMMDD
    strike: float = 0.0
    right: str = ""  # P, C
    multiplier: str = ""
    exchange: str = "SMART"
    currency: str = "USD"
    trading_class: str = ""
    primary_exchange: str = ""

    @property
    def local_symbol(self) -> str:
        if self.sec_type != "OPT":
            return self.symbol
        return f"{self.trading_class or self.symbol} {self.expiry[2:]}{self.right}{int(self.strike * 1000):08d}"

    def short_fields(self) -> list[object]:
        """conId..tradingClass as in openOrder / execDetails / position rows (no primaryExchange)."""
        strike = self.strike if self.sec_type == "OPT" else 0.0
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            strike,
            self.right,
            self.multiplier,
            self.exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]


@dataclass
class StubOrder:
    order_id: int
    perm_id: int
    client_id: int
    contract: StubContract
    action: str
    quantity: float
    order_type: str
    limit: float | None
    tif: str
    account: str
    order_ref: str
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    completed_time: str = ""
    executions: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled


def handshake(version: int, when: str) -> bytes:
    return encode(version, when)


def next_valid_id(order_id: int) -> bytes:
    return encode(NEXT_VALID_ID, 1, order_id)


def managed_accounts(accounts: list[str]) -> bytes:
    return encode(MANAGED_ACCTS, 1, ",".join(accounts))


def error(version: int, req_id: int, code: int, text: str) -> bytes:
    fields: list[object] = [ERR_MSG, 2, req_id, code, text]
    if version >= 166:
        fields.append("")  # advancedOrderRejectJson
    return encode(*fields)


def current_time(epoch: int) -> bytes:
    return encode(CURRENT_TIME, 1, epoch)


def position(account: str, c: StubContract, qty: float, avg_cost: float) -> bytes:
    return encode(POSITION_DATA, 3, account, *c.short_fields(), qty, avg_cost)


def position_end() -> bytes:
    return encode(POSITION_END, 1)


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return encode(ACCT_VALUE, 2, key, value, currency, account)


def account_download_end(account: str) -> bytes:
    return encode(ACCT_DOWNLOAD_END, 1, account)


def account_update_multi(req_id: int, account: str, key: str, value: str, ccy: str) -> bytes:
    return encode(ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", key, value, ccy)


def account_update_multi_end(req_id: int) -> bytes:
    return encode(ACCOUNT_UPDATE_MULTI_END, 1, req_id)


def open_order_end() -> bytes:
    return encode(OPEN_ORDER_END, 1)


def completed_orders_end() -> bytes:
    return encode(COMPLETED_ORDERS_END)


def execution_end(req_id: int) -> bytes:
    return encode(EXECUTION_DATA_END, 1, req_id)


def contract_details_end(req_id: int) -> bytes:
    return encode(CONTRACT_DATA_END, 1, req_id)


def contract_details(req_id: int, c: StubContract, under_con_id: int = 0) -> bytes:
    """Server version >= 164 layout: no message version, minSize/sizeIncrement at the end."""
    under_symbol = c.symbol if c.sec_type == "OPT" else ""
    under_type = ("IND" if c.symbol in ("SPX", "VIX") else "STK") if c.sec_type == "OPT" else ""
    strike = c.strike if c.sec_type == "OPT" else 0.0
    return encode(
        CONTRACT_DATA,
        req_id,
        c.symbol,
        c.sec_type,
        c.expiry,
        strike,
        c.right,
        c.exchange,
        c.currency,
        c.local_symbol,
        c.trading_class or c.symbol,
        c.trading_class or c.symbol,
        c.con_id,
        0.01,
        c.multiplier,
        "LMT,MKT",
        c.exchange,
        1,
        under_con_id,
        f"{c.symbol} stub",
        c.primary_exchange,
        c.expiry[:6],
        "",
        "",
        "",
        "US/Eastern",
        "",
        "",
        "",
        "",
        0,
        "",
        under_symbol,
        under_type,
        "26",
        c.expiry,
        "COMMON" if c.sec_type == "STK" else "",
        1,
        1,
        1,
    )


def secdef_opt_params(
    req_id: int,
    exchange: str,
    under_con_id: int,
    trading_class: str,
    multiplier: str,
    expiries: list[str],
    strikes: list[float],
) -> bytes:
    return encode(
        SECDEF_OPT_PARAMS,
        req_id,
        exchange,
        under_con_id,
        trading_class,
        multiplier,
        len(expiries),
        *expiries,
        len(strikes),
        *strikes,
    )


def secdef_opt_params_end(req_id: int) -> bytes:
    return encode(SECDEF_OPT_PARAMS_END, req_id)


def market_data_type(req_id: int, kind: int) -> bytes:
    return encode(MARKET_DATA_TYPE, 1, req_id, kind)


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> bytes:
    return encode(TICK_PRICE, 6, req_id, tick_type, price, size, 0)


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    return encode(TICK_SIZE, 6, req_id, tick_type, size)


def tick_option_computation(
    req_id: int,
    tick_type: int,
    iv: float,
    delta: float,
    price: float,
    gamma: float,
    vega: float,
    theta: float,
    und: float,
) -> bytes:
    """No message version since server 151; -1 / -2 are IB's "not computed" sentinels."""
    return encode(
        TICK_OPTION_COMPUTATION,
        req_id,
        tick_type,
        0,
        iv,
        delta,
        price,
        0.0,
        gamma,
        vega,
        theta,
        und,
    )


def tick_snapshot_end(req_id: int) -> bytes:
    return encode(TICK_SNAPSHOT_END, 1, req_id)


def historical_data(req_id: int, start: str, end: str, bars: list[tuple]) -> bytes:
    flat: list[object] = []
    for day, o, h, low, c, vol in bars:
        flat += [day, o, h, low, c, vol, (o + c) / 2, 100]
    return encode(HISTORICAL_DATA, req_id, start, end, len(bars), *flat)


def order_status(o: StubOrder) -> bytes:
    """No message version since server 131 (MARKET_CAP_PRICE)."""
    return encode(
        ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_price,
        o.perm_id,
        0,
        o.last_fill_price,
        o.client_id,
        o.why_held,
        0.0,
    )


def execution(
    version: int, req_id: int, o: StubOrder, exec_id: str, when: str, qty: float, price: float
) -> bytes:
    fields: list[object] = [
        EXECUTION_DATA,
        req_id,
        o.order_id,
        *o.contract.short_fields(),
        exec_id,
        when,
        o.account,
        "CBOE" if o.contract.sec_type == "OPT" else "ISLAND",
        "BOT" if o.action == "BUY" else "SLD",
        qty,
        price,
        o.perm_id,
        o.client_id,
        0,
        o.filled,
        o.avg_price,
        o.order_ref,
        "",
        "",
        "",
        1,
    ]
    if version >= 178:
        fields.append(0)  # pendingPriceRevision
    return encode(*fields)


def commission_report(exec_id: str, commission: float) -> bytes:
    return encode(COMMISSION_REPORT, 1, exec_id, commission, "USD", "", "", "")


def _order_head(o: StubOrder) -> list[object]:
    return [
        o.action,
        o.quantity,
        o.order_type,
        _price(o.limit),
        "",
        o.tif,
        "",
        o.account,
        "O",
        0,
        o.order_ref,
    ]


def _price(value: float | None) -> object:
    return "" if value is None else value


def open_order(version: int, o: StubOrder) -> bytes:
    fields: list[object] = [
        OPEN_ORDER,
        o.order_id,
        *o.contract.short_fields(),
        *_order_head(o),
        o.client_id,
        o.perm_id,
        0,
        0,
        0,
        "",
        "",
        "",
        "",
        "",
    ]
    if version < 177:
        fields.append("")  # faProfile
    fields += [
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        -1,
        0,
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        0,
        "",
        0,
        0,
        0,
        "",
        0,
        0,
        "",
        "",
        "",
        "",  # ... triggerMethod, volatility, volatilityType, dnOrderType, dnAuxPrice
        0,
        "",
        "",
        "",
        "",
        "",
        "",  # continuousUpdate .. basisPointsType, comboLegsDescrip
        0,
        0,
        0,  # combo legs, order combo legs, smart combo routing params
        "",
        "",
        "",  # scale init/subs level size, scale price increment
        "",  # hedgeType
        0,
        "",
        "",
        0,
        0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc
        "",  # algoStrategy
        0,
        0,
        o.status,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,  # conditions
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        "",
        "",
        0,
        0,
        "",
        0,
    ]
    fields += ["", 0, 0]  # duration (159), postToAts (160), autoCancelParent (162)
    fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf (170)
    return encode(*fields)


def completed_order(version: int, o: StubOrder) -> bytes:
    fields: list[object] = [
        COMPLETED_ORDER,
        *o.contract.short_fields(),
        *_order_head(o),
        o.perm_id,
        0,
        0,
        0,
        "",
        "",
        "",
        "",
    ]
    if version < 177:
        fields.append("")  # faProfile
    fields += [
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        -1,
        "",
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        "",
        0,
        0,
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        "",
        "",  # continuousUpdate .. trailingPercent, comboLegsDescrip
        0,
        0,
        0,
        "",
        "",
        "",
        "",  # hedgeType
        "",
        "",
        0,
        0,  # clearingAccount, clearingIntent, notHeld, dnc
        "",  # algoStrategy
        0,
        o.status,
        0,
        0,
        0,  # conditions
        "",
        "",
        "",
        0,
        0,
        "",
        o.filled,
        0,
        0,
        "",
        0,
        0,
        0,
        o.completed_time,
        o.status,
    ]
    fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf (170)
    return encode(*fields)
