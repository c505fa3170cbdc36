"""Pure translation between ALL-USE's broker types and the IB client library's.

No I/O and no clock here: every function takes values and returns values, so the venue rules
(contract routing, order fields, status semantics, error codes) are unit-tested on their own.
ib_async is the client library; ib_insync (its archived predecessor, same API) is accepted
when it is the one installed.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from constitution.errors import StopError
from engine.execution.broker import (
    BrokerPosition,
    Fill,
    FillOrigin,
    OrderRequest,
    OrderSide,
    OrderState,
    OrderStatus,
)
from engine.market.instruments import ContractSpec, SecType

try:  # the maintained continuation first
    import ib_async as iblib

    IB_LIBRARY = "ib_async"
except ImportError:  # pragma: no cover - exercised in the ib_insync scratch run
    import ib_insync as iblib  # type: ignore[no-redef]  # the same API under its old name

    IB_LIBRARY = "ib_insync"

Contract = iblib.Contract
Order = iblib.Order

# ----- sub-accounts -----

SUB_ACCOUNT = re.compile(r"^(GEN|REV|COM|MINI-[A-Z0-9]{1,8})$")


class UnknownSubAccount(StopError):
    """An order names an ALL-USE sub-account that has no IB account code configured."""


class AccountMap(BaseModel):
    """ALL-USE sub-account (GEN, REV, COM, MINI-*) -> IB account code (DU..., U...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    codes: dict[str, str]

    @field_validator("codes")
    @classmethod
    def _valid(cls, codes: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in codes if not SUB_ACCOUNT.match(k))
        if bad:
            raise ValueError(f"not ALL-USE sub-accounts (GEN, REV, COM, MINI-n): {', '.join(bad)}")
        if len(set(codes.values())) != len(codes):
            raise ValueError("two sub-accounts map to the same IB account code")
        return codes

    def to_ib(self, sub_account: str) -> str:
        try:
            return self.codes[sub_account]
        except KeyError:
            raise UnknownSubAccount(
                f"sub-account {sub_account!r} has no IB account code "
                f"(configured: {', '.join(sorted(self.codes)) or 'none'})"
            ) from None

    def from_ib(self, code: str) -> str:
        """The sub-account for an IB code; an unmapped code is returned as itself, so
        reconciliation still sees what sits in accounts ALL-USE does not manage."""
        return next((sub for sub, c in self.codes.items() if c == code), code)

    def unmapped(self, managed: list[str]) -> list[str]:
        return sorted(set(managed) - set(self.codes.values()))

    def missing(self, managed: list[str]) -> list[str]:
        return sorted(sub for sub, code in self.codes.items() if code not in managed)


def is_paper_account(code: str) -> bool:
    """IB paper accounts are DU... (individual) or DF... (advisor master)."""
    return code.startswith("D")


# ----- contracts -----

EXPIRY_FORMAT = "%Y%m%d"
INDEX_OPTION_EXCHANGE = "CBOE"


def third_friday(year: int, month: int) -> date:
    fridays = [
        d
        for d in calendar.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == 4
    ]
    return fridays[2]


def spx_trading_class(expiry: date) -> str:
    """SPX on the third Friday (AM-settled monthlies, the hedge's 6-12 month puts), SPXW
    (PM-settled weeklies) on every other expiry. Both are cash-settled European options."""
    return "SPX" if expiry == third_friday(expiry.year, expiry.month) else "SPXW"


def to_ib_contract(spec: ContractSpec) -> Contract:
    if spec.sec_type is SecType.STOCK:
        return Contract(secType="STK", symbol=spec.symbol, exchange="SMART", currency=spec.currency)
    assert spec.expiry is not None and spec.strike is not None and spec.right is not None
    c = Contract(
        secType="OPT",
        symbol=spec.symbol,
        currency=spec.currency,
        lastTradeDateOrContractMonth=spec.expiry.strftime(EXPIRY_FORMAT),
        strike=float(spec.strike),
        right=spec.right,
        multiplier=str(spec.multiplier),
        exchange="SMART",
    )
    if spec.sec_type is SecType.INDEX_OPTION:
        c.exchange = INDEX_OPTION_EXCHANGE
        c.tradingClass = spx_trading_class(spec.expiry) if spec.symbol == "SPX" else spec.symbol
    elif spec.sec_type is SecType.VIX_OPTION:
        c.exchange = INDEX_OPTION_EXCHANGE
        c.tradingClass = "VIX"
    return c


def from_ib_contract(c: Contract) -> ContractSpec | None:
    """None for instruments ALL-USE does not trade (futures, FX, bonds...)."""
    if c.secType == "STK":  # a share is one unit (the ledger values stock as price x shares)
        return ContractSpec(
            sec_type=SecType.STOCK, symbol=c.symbol, multiplier=1, currency=c.currency or "USD"
        )
    if c.secType != "OPT":
        return None
    if c.symbol in ("SPX", "SPXW", "NDX", "RUT", "XSP"):
        kind, symbol = SecType.INDEX_OPTION, "SPX" if c.symbol == "SPXW" else c.symbol
    elif c.symbol == "VIX":
        kind, symbol = SecType.VIX_OPTION, "VIX"
    else:
        kind, symbol = SecType.OPTION, c.symbol
    return ContractSpec(
        sec_type=kind,
        symbol=symbol,
        right=c.right or None,
        expiry=parse_expiry(c.lastTradeDateOrContractMonth),
        strike=float(c.strike),
        multiplier=int(float(c.multiplier or 100)),
        currency=c.currency or "USD",
    )


def parse_expiry(text: str) -> date:
    return datetime.strptime(text[:8], EXPIRY_FORMAT).date()


def contract_key(c: Contract) -> str:
    spec = from_ib_contract(c)
    return spec.key if spec is not None else f"{c.secType}:{c.conId}"


# ----- orders -----


def to_ib_order(req: OrderRequest, account_code: str) -> Order:
    """orderRef carries the client order id: it is how an order is found again after a
    restart or a reconnect, the idempotency key at the broker."""
    order = Order(
        action=req.side.value,
        totalQuantity=float(req.quantity),
        orderType=req.order_type,
        tif=req.time_in_force,
        account=account_code,
        orderRef=req.client_order_id,
        transmit=True,
    )
    if req.order_type == "LMT":
        order.lmtPrice = req.limit_price
    return order


# ----- status -----

# Errors about a cancel request: the order itself is unchanged (the client library still
# marks the trade cancelled locally, so these must not be read as a state).
CANCEL_REJECT_CODES = frozenset({161, 10147, 10148})
ORDER_CANCELLED_CODE = 202
PACING_CODES = frozenset({100, 420})
CONNECTIVITY_CODES = frozenset({502, 504, 1100, 1101, 1102, 2110})
NO_DATA_PERMISSION_CODES = frozenset({354, 10089, 10090, 10091, 10167, 10168, 10197})
# Informational: IB sends these as "errors" but nothing failed.
WARNING_CODES = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})

_WORKING = {"PreSubmitted", "Submitted", "PendingCancel", "ValidationError", "ApiUpdate"}
_PENDING = {"", "PendingSubmit", "ApiPending"}


def is_warning(code: int) -> bool:
    return code in WARNING_CODES or 2100 <= code < 2200


def is_pacing(code: int, text: str = "") -> bool:
    """Pacing: too many messages (100), real-time pacing (420), or the historical data
    farm's pacing violation (162 with that text)."""
    return code in PACING_CODES or (code == 162 and "pacing violation" in text.lower())


def is_rejection(code: int) -> bool:
    """An error that, on an order IB then reports dead, means IB refused it."""
    return not (
        is_warning(code)
        or is_pacing(code)
        or code in CANCEL_REJECT_CODES
        or code in CONNECTIVITY_CODES
        or code == ORDER_CANCELLED_CODE
    )


def order_state(ib_status: str, filled: float, error_code: int | None) -> OrderState | None:
    """IB's status string (plus the last order error) in ALL-USE's states.

    None means "this tells us nothing new": a failed cancel request or a pacing refusal,
    after which the client library marks the trade cancelled although IB did not.
    """
    if error_code is not None and (error_code in CANCEL_REJECT_CODES or is_pacing(error_code)):
        return None
    if ib_status == "Filled":
        return OrderState.FILLED
    rejected = error_code is not None and is_rejection(error_code) and filled == 0
    if ib_status in ("Cancelled", "ApiCancelled"):
        return OrderState.REJECTED if rejected else OrderState.CANCELLED
    if ib_status == "Inactive":
        return OrderState.REJECTED if rejected else OrderState.INACTIVE
    if filled > 0:
        return OrderState.PARTIALLY_FILLED
    if ib_status in _WORKING:
        return OrderState.SUBMITTED
    return OrderState.PENDING_SUBMIT


def to_order_status(
    client_order_id: str,
    perm_id: int,
    state: OrderState,
    filled: float,
    quantity: float,
    avg_price: float,
    reason: str,
    at: datetime,
) -> OrderStatus:
    avg = avg_price if filled > 0 and math.isfinite(avg_price) and avg_price > 0 else None
    return OrderStatus(
        client_order_id=client_order_id,
        broker_order_id=str(perm_id or ""),
        state=state,
        filled=int(filled),
        remaining=max(0, int(quantity - filled)),
        avg_fill_price=avg,
        reason=reason,
        at=at,
    )


# ----- fills and positions -----


def to_fill(
    client_order_id: str,
    sub_account: str,
    contract: ContractSpec,
    execution: iblib.Execution,
    commission: float,
    origin: FillOrigin = "order",
) -> Fill:
    side = OrderSide.BUY if execution.side in ("BOT", "BUY") else OrderSide.SELL
    return Fill(
        client_order_id=client_order_id,
        broker_order_id=str(execution.permId or ""),
        execution_id=execution.execId,
        account=sub_account,
        contract=contract,
        side=side,
        quantity=int(execution.shares),
        price=float(execution.price),
        commission=_finite(commission),
        at=execution.time,
        origin=origin,
    )


def is_settlement(execution: iblib.Execution, order_known: bool) -> bool:
    """IB books an option's assignment, exercise and expiry (and the shares an assignment or
    an exercise delivers) as executions that no order stands behind: no ``orderRef``, and a
    ``permId`` of 0 or of no order IB reports (open or completed). ``order_known`` says whether
    IB reports an order with the execution's permId. An execution of a hand-placed TWS order
    has a permId IB reports, so it stays an order's fill."""
    return not execution.orderRef and not (execution.permId and order_known)


def settlement_origins(rows: Sequence[tuple[str, ContractSpec, Any]]) -> list[FillOrigin]:
    """Origin of each settlement execution in ``rows`` (sub-account, contract, execution), one
    batch as IB reports it: shares delivered are an ``assignment``; an option closed is an
    ``assignment`` when shares of its underlying were delivered at its strike in the same
    account in the batch (IB books both legs at once), else an ``expiry`` (worthless, or an
    index option's cash settlement)."""
    delivered = {
        (sub, c.symbol, round(float(ex.price), 4))
        for sub, c, ex in rows
        if c.sec_type is SecType.STOCK
    }
    out: list[FillOrigin] = []
    for sub, c, _ex in rows:
        assigned = (
            c.sec_type is SecType.STOCK
            or (sub, c.symbol, round(float(c.strike or 0.0), 4)) in delivered
        )
        out.append("assignment" if assigned else "expiry")
    return out


def to_position(
    sub_account: str, contract: ContractSpec, quantity: float, avg_cost: float
) -> BrokerPosition:
    """IB's option avgCost includes the multiplier; ALL-USE keeps premium per share."""
    per_unit = (
        avg_cost / contract.multiplier if contract.sec_type is not SecType.STOCK else avg_cost
    )
    return BrokerPosition(
        account=sub_account, contract=contract, quantity=int(quantity), avg_cost=_finite(per_unit)
    )


def _finite(x: float) -> float:
    # IB's "unset" double is 1.79e308; NaN appears when a report has not arrived
    return float(x) if math.isfinite(x) and abs(x) < 1e300 else 0.0


# ----- account values -----

CASH_TAG = "TotalCashValue"


def cash_value(values: Sequence[iblib.AccountValue]) -> float | None:
    """IB's cash of one account from its account values (``AccountValue`` rows): the USD row,
    else the base-currency row; None when IB reported none or an unusable number."""
    rows = {
        v.currency: v.value for v in values if v.tag == CASH_TAG and not getattr(v, "modelCode", "")
    }
    for currency in ("USD", "BASE"):
        if currency in rows:
            try:
                x = float(rows[currency])
            except ValueError:
                return None
            return x if math.isfinite(x) and abs(x) < 1e300 else None
    return None
