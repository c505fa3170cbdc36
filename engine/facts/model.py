"""The facts document: what the engine evaluates. Frozen, typed, strictly validated.

Schema published as ``docs/facts.schema.json``; fields documented in ``docs/facts.md``.
Bad facts never reach the rules: NaN/inf, negative prices, unknown kinds, expired positions,
naive datetimes and dangling references are all rejected here with their path.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

NEW_YORK = ZoneInfo("America/New_York")

# Input bounds (issue 13): a value past them could only poison the ledger. A price is at least
# the tick of what ALL-USE trades (a cent) and at most a sanity bound; money stays where a
# float still holds it to the cent (100 x 1e12 < 2**53) and far inside a BIGINT of cents.
PRICE_TICK = 0.01
MAX_PRICE = 1_000_000.0
MAX_MONEY = 1e12
MAX_QUANTITY = 2**31 - 1  # contracts or shares: a 32-bit INTEGER column holds it
# A new paper portfolio's capital: far above the sleeves' capacity (Com $20-50M), and its Mag-7
# shares (30 % over seven tickers) stay far within MAX_QUANTITY even at a $1 share price.
MAX_CAPITAL = 1e9

# Numbers are numbers: ``price: true`` or ``price: "228"`` is refused, not read as 1.0 / 228.
Price = Annotated[float, Field(ge=PRICE_TICK, le=MAX_PRICE, allow_inf_nan=False, strict=True)]
Money = Annotated[float, Field(ge=-MAX_MONEY, le=MAX_MONEY, allow_inf_nan=False, strict=True)]
NonNegMoney = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False, strict=True)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)]
Premium = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)]
Count = Annotated[int, Field(ge=0, le=MAX_QUANTITY, strict=True)]
Lots = Annotated[int, Field(gt=0, le=MAX_QUANTITY, strict=True)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.\-]{0,9}$")]
AccountId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9\-]{0,19}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=False)


class Underlying(_Frozen):
    price: Price
    atr5: Annotated[float, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False, strict=True)]
    earnings_this_week: bool = False
    chain_available: bool = True
    quote_ok: bool = True
    option_open_interest: NonNegMoney | None = None
    option_volume: NonNegMoney | None = None
    option_spread_pct: NonNegMoney | None = None
    atr_source: Literal["wilder", "close_to_close", "stale_fallback", "price_fallback"] = "wilder"


class QualityFinding(_Frozen):
    """A data-quality finding from the market-data side, carried into the decision record."""

    code: str
    subject: str
    detail: str = ""


class Market(_Frozen):
    vix: Price
    vix_closes_above_30: Count = 0
    spx_drawdown: Fraction = 0.0
    breadth_above_50dma: Fraction = 0.5
    early_close: bool = False
    broker_connected: bool = True
    data_age_seconds: NonNegMoney = 0.0
    underlyings: dict[Symbol, Underlying] = Field(default_factory=dict)


class Position(_Frozen):
    symbol: Symbol
    right: Literal["put", "call", "stock"]
    side: Literal["short", "long"]
    purpose: Literal["income", "hedge", "leap"] = "income"
    strike: Price | None = None
    expiry: date | None = None
    contracts: Lots | None = None
    shares: Lots | None = None
    entry_credit: Premium | None = None
    entry_debit: Premium | None = None
    mark: Premium | None = None
    delta: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False, strict=True)] | None = None
    cost_basis: Price | None = None
    roll_debit: Money | None = None

    @model_validator(mode="after")
    def _shape(self) -> Position:
        if self.right == "stock":
            if self.shares is None:
                raise ValueError("a stock position needs 'shares'")
            if self.side != "long":
                raise ValueError("short stock is not part of ALL-USE")
            if any(v is not None for v in (self.strike, self.expiry, self.contracts)):
                raise ValueError("a stock position has no strike, expiry or contracts")
        else:
            missing = [n for n in ("strike", "expiry", "contracts") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"an option position needs {', '.join(missing)}")
            if self.side == "short" and self.entry_credit is None:
                raise ValueError("a short option needs 'entry_credit'")
        return self


class Account(_Frozen):
    id: AccountId
    kind: Literal["gen", "rev", "com", "mini"]
    equity: NonNegMoney
    base_equity: Annotated[float, Field(gt=0, le=MAX_MONEY, allow_inf_nan=False, strict=True)]
    high_water_mark: Annotated[float, Field(gt=0, le=MAX_MONEY, allow_inf_nan=False, strict=True)]
    cash: Money
    forks: Count = 0
    opened: date
    quarter_gains: Money = 0.0
    fork_deferred: bool = False
    pivot_latched: bool = False
    positions: tuple[Position, ...] = ()

    @field_validator("high_water_mark")
    @classmethod
    def _hwm(cls, v: float, info: ValidationInfo) -> float:
        equity = info.data.get("equity")
        if equity is not None and v < equity:
            raise ValueError(f"high_water_mark {v} is below equity {equity}")
        return v


class Facts(_Frozen):
    as_of: AwareDatetime
    market: Market
    accounts: tuple[Account, ...]
    quality: tuple[QualityFinding, ...] = ()

    @property
    def as_of_new_york(self) -> datetime:
        return self.as_of.astimezone(NEW_YORK)


def consistency_problems(facts: Facts):
    """Cross-record checks pydantic cannot locate well; yields (path, code, message)."""
    today = facts.as_of_new_york.date()
    seen: dict[str, int] = {}
    for ai, a in enumerate(facts.accounts):
        if a.id in seen:
            yield (
                ("accounts", ai, "id"),
                "duplicate",
                f"account id {a.id} is also accounts[{seen[a.id]}]",
            )
        seen.setdefault(a.id, ai)
        if a.opened > today:
            yield (
                ("accounts", ai, "opened"),
                "inconsistent",
                f"opened {a.opened}, after as_of ({today})",
            )
        keys: dict[tuple, int] = {}
        for pi, p in enumerate(a.positions):
            here = ("accounts", ai, "positions", pi)
            identity = (p.symbol, p.right, p.side, p.strike, p.expiry)
            if identity in keys:
                yield (
                    here,
                    "duplicate",
                    f"same position as positions[{keys[identity]}]; merge them into one line",
                )
            keys.setdefault(identity, pi)
            if p.symbol not in facts.market.underlyings:
                yield (
                    (*here, "symbol"),
                    "unknown-symbol",
                    f"no market.underlyings.{p.symbol} (its price and ATR are needed)",
                )
            if p.expiry is not None and p.expiry < today:
                yield (
                    (*here, "expiry"),
                    "expired",
                    f"expired on {p.expiry} (as_of is {today} New York)",
                )


def position_key(account: str, p: Position) -> str:
    if p.right == "stock":
        return f"{account}/{p.symbol}/stock"
    return f"{account}/{p.symbol}/{p.right}/{p.strike:g}/{p.expiry.isoformat()}/{p.side}"
