"""What can be traded: security types and contract specifications, in the project's terms.

A broker adapter maps a ``ContractSpec`` to its venue's contract; market data values holdings by it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SecType(StrEnum):
    STOCK = "STK"
    OPTION = "OPT"  # equity option
    INDEX_OPTION = "IOPT"  # SPX (cash-settled index option)
    VIX_OPTION = "VOPT"


class ContractSpec(_Frozen):
    """What to trade, in the project's terms (the adapter maps it to the venue's contract)."""

    sec_type: SecType
    symbol: str
    expiry: date | None = None
    strike: float | None = None
    right: Literal["P", "C"] | None = None
    multiplier: int = 100
    currency: str = "USD"

    @property
    def key(self) -> str:
        if self.sec_type is SecType.STOCK:
            return f"{self.symbol}"
        return f"{self.symbol} {self.expiry} {self.strike:g}{self.right}"
