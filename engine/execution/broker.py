"""The broker port: what the engine needs from any broker (paper or Interactive Brokers).

Only concrete, frozen values cross this boundary. A broker adapter translates them to and from
its venue's types in pure mapping code. State comes from the broker's reports (status, fills,
open orders, positions), never from assumptions: a timeout is not a fill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.market.instruments import ContractSpec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderRequest(_Frozen):
    client_order_id: str  # derived from decision id + leg; the idempotency key (IB orderRef)
    decision_id: str
    account: str  # ALL-USE sub-account: GEN, REV, COM, MINI-1, ...
    contract: ContractSpec
    side: OrderSide
    quantity: int = Field(gt=0)
    order_type: Literal["LMT", "MKT"] = "LMT"
    limit_price: float | None = Field(default=None, gt=0)
    time_in_force: Literal["DAY", "GTC", "IOC"] = "DAY"


class OrderState(StrEnum):
    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    INACTIVE = "inactive"

    @property
    def is_final(self) -> bool:
        # by the member's text (a StrEnum's members hash and compare as their text): asked of
        # every order at every scan, where four class attributes and Enum comparisons cost
        # more than the rest of the scan
        return self._value_ in _FINAL_STATES


_FINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.INACTIVE}
)


class OrderStatus(_Frozen):
    client_order_id: str
    broker_order_id: str
    state: OrderState
    filled: int = 0
    remaining: int = 0
    avg_fill_price: float | None = None
    reason: str = ""  # rejection or cancel reason, in the broker's words
    at: datetime


FillOrigin = Literal["order", "assignment", "expiry"]
BROKER_INITIATED: tuple[str, ...] = ("assignment", "expiry")


class Fill(_Frozen):
    """One execution. ``origin`` says who made it: ``order`` (an order of ours, or one placed
    by hand at the broker) or a settlement the broker booked on its own - ``assignment`` (an
    option assigned or exercised, both its legs: the option closed and the shares delivered)
    or ``expiry`` (an option expired, worthless or cash-settled)."""

    client_order_id: str
    broker_order_id: str
    execution_id: str  # unique per execution at the broker; the ledger's idempotency key
    account: str
    contract: ContractSpec
    side: OrderSide
    quantity: int = Field(gt=0)
    price: float
    commission: float = 0.0
    at: datetime
    origin: FillOrigin = "order"

    @model_validator(mode="before")
    @classmethod
    def _origin_of_old_records(cls, data: Any) -> Any:
        """Fills stored before ``origin`` existed marked a settlement by its client order id
        (the paper venue's ``assignment`` / ``expiry``)."""
        if (
            isinstance(data, dict)
            and "origin" not in data
            and data.get("client_order_id") in BROKER_INITIATED
        ):
            data = {**data, "origin": data["client_order_id"]}
        return data

    @property
    def broker_initiated(self) -> bool:
        return self.origin != "order"


class BrokerPosition(_Frozen):
    account: str
    contract: ContractSpec
    quantity: int  # signed: negative is short
    avg_cost: float


class BrokerEvent(_Frozen):
    kind: Literal["status", "fill", "error", "disconnected", "reconnected"]
    status: OrderStatus | None = None
    fill: Fill | None = None
    message: str = ""


class BrokerPort(Protocol):
    """Implemented by ``adapters.brokers.paper.PaperBroker`` and ``adapters.ib.broker.IBBroker``."""

    name: str
    is_live: bool  # True only for a real-money connection

    def connect(self) -> None: ...

    def routes(self, account: str) -> bool:
        """Can an order for ALL-USE sub-account ``account`` be routed to a real account at this
        broker? Asked before an order is written (an order that cannot be routed is refused,
        not sent); the paper venue routes every account."""

    def disconnect(self) -> None: ...

    def is_connected(self) -> bool: ...

    def submit(self, order: OrderRequest) -> OrderStatus:
        """Place ``order``. Submitting the same client_order_id again returns the existing
        order's status and never places a second order."""

    def cancel(self, client_order_id: str) -> OrderStatus: ...

    def replace(self, client_order_id: str, limit_price: float) -> OrderStatus:
        """Cancel-replace: move the limit of a working order."""

    def open_orders(self) -> Sequence[OrderStatus]: ...

    def positions(self) -> Sequence[BrokerPosition]: ...

    def fills(self, since: datetime | None = None) -> Sequence[Fill]: ...

    def subscribe(self, callback: Callable[[BrokerEvent], None]) -> None:
        """Status, fill and connection events are delivered to ``callback``."""
