"""The market-data port and the values that cross it.

Every market-data adapter (files, synthetic, Interactive Brokers) answers the same two
questions: *what does the market look like at time t* (``snapshot``) and *what are the daily
bars of a symbol* (``history``). Only these frozen values cross the boundary.

The value types here deliberately do **not** validate prices: a quote of NaN or a bar with
high < low is a fact about the feed that must be *reported*, not an exception that stops the
run. Checks live in ``engine.market.indicators`` (bars) and ``engine.market.facts_builder`` (quotes, chains,
VIX), which turn bad values into ``DataQualityFinding`` records that reach the facts.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # params imports this module's Right
    from engine.market.params import MarketParams

Right = Literal["put", "call"]
AtrSource = Literal["wilder", "close_to_close", "stale_fallback", "price_fallback"]


class QualityCode(StrEnum):
    """Stable codes of data-quality findings (they appear in facts and decision records)."""

    NON_FINITE_PRICE = "non-finite-price"  # NaN or +/-inf
    NON_POSITIVE_PRICE = "non-positive-price"  # zero or negative
    HIGH_BELOW_LOW = "high-below-low"
    CLOSE_OUTSIDE_RANGE = "close-outside-range"  # close outside [low, high]: bar dropped
    OPEN_OUTSIDE_RANGE = "open-outside-range"  # open outside [low, high]: reported, bar kept
    CROSSED_QUOTE = "crossed-quote"  # bid > ask
    STALE_QUOTE = "stale-quote"  # quote older than the live limit (30 s)
    MISSING_QUOTE = "missing-quote"
    PRICE_FROM_LAST_CLOSE = "price-from-last-close"  # quote unusable; last valid close used
    MISSING_CHAIN = "missing-chain"
    BAD_CHAIN_ROWS = "bad-chain-rows"  # some contracts dropped (non-finite / negative)
    HISTORY_GAP = "history-gap"  # sessions missing between the first and last bar
    DUPLICATE_DATE = "duplicate-date"
    UNSORTED_DATES = "unsorted-dates"
    CLOSE_ONLY = "close-only"  # ATR from close-to-close ranges
    STALE_ATR = "stale-atr"  # last valid ATR x protocol.atr.stale_multiplier
    NO_ATR = "no-atr"  # 2 % of price
    MISSING_VIX = "missing-vix"
    VIX_FROM_LAST_CLOSE = "vix-from-last-close"
    NO_PRICE = "no-price"  # nothing usable at all: the underlying is left out of the facts
    INDICATOR_DEFAULTED = "indicator-defaulted"  # market indicator unknown; neutral default used
    BAD_DATE = "bad-date"  # a row whose date could not be read
    NOT_A_SESSION = "not-a-session"  # a bar dated on a day the NYSE was closed: left out
    INDEX_PROXY = "index-proxy"  # an index fact taken from an ETF proxy (SPY for the S&P 500)


@dataclass(frozen=True, slots=True)
class DataQualityFinding:
    code: QualityCode
    subject: str  # a symbol, "VIX", or "SYMBOL chain"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DailyBar:
    """One session's bar. ``open``/``high``/``low`` are None for close-only history."""

    day: date
    close: float
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None


def _readonly(a: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
    """``a`` as a read-only array of ``dtype``, a copy unless nothing can change it: a view
    of immutable bytes (a chain feed's message) is taken as it is (nine copies of ~1,000
    values for each of ~11,000 chains in the README's two years)."""
    if isinstance(a, np.ndarray) and isinstance(a.base, bytes) and a.dtype == np.dtype(dtype):
        return a  # np.frombuffer over bytes: read-only, and its buffer cannot be written
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class DailyHistory:
    """Daily bars of one symbol as read-only columns (fast for indicators over decades).

    ``high``/``low``/``open`` are all-NaN when ``close_only`` is true. Rows are sorted by date
    and unique; whatever the source held that was not is reported in ``findings``.
    """

    symbol: str
    days: np.ndarray  # datetime64[D]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    close_only: bool = False
    findings: tuple[DataQualityFinding, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.days)
        object.__setattr__(self, "days", _readonly(self.days, "datetime64[D]"))
        for name in ("open", "high", "low", "close", "volume"):
            col = _readonly(getattr(self, name), float)
            if col.shape != (n,):
                raise ValueError(f"{self.symbol}: column {name} has {col.shape}, expected ({n},)")
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return len(self.days)

    @property
    def last_day(self) -> date | None:
        return self.days[-1].astype(date) if len(self.days) else None

    def until(self, last: date) -> DailyHistory:
        """Bars dated on or before ``last`` (no look-ahead in replays)."""
        n = int(np.searchsorted(self.days, np.datetime64(last, "D"), side="right"))
        return self.slice(0, n)

    def between(self, first: date, last: date) -> DailyHistory:
        lo = int(np.searchsorted(self.days, np.datetime64(first, "D"), side="left"))
        hi = int(np.searchsorted(self.days, np.datetime64(last, "D"), side="right"))
        return self.slice(lo, hi)

    def slice(self, lo: int, hi: int) -> DailyHistory:
        """Rows ``lo:hi`` as views of these columns, not copies: they are read-only already (a
        view of a read-only array cannot be made writable), and a replay slices decades of
        bars several times a session (``until``), which copying made cost the whole prefix."""
        out = object.__new__(DailyHistory)
        for k in ("days", "open", "high", "low", "close", "volume"):
            object.__setattr__(out, k, getattr(self, k)[lo:hi])
        object.__setattr__(out, "symbol", self.symbol)
        object.__setattr__(out, "close_only", self.close_only)
        object.__setattr__(out, "findings", self.findings)
        return out

    def with_findings(self, findings: tuple[DataQualityFinding, ...]) -> DailyHistory:
        """These bars with ``findings`` instead (no copy, no second check of the columns)."""
        out = self.slice(0, len(self))
        object.__setattr__(out, "findings", findings)
        return out

    def bars(self) -> Iterator[DailyBar]:
        for i in range(len(self.days)):
            o, h, lo, v = self.open[i], self.high[i], self.low[i], self.volume[i]
            yield DailyBar(
                day=self.days[i].astype(date),
                close=float(self.close[i]),
                open=None if math.isnan(o) else float(o),
                high=None if math.isnan(h) else float(h),
                low=None if math.isnan(lo) else float(lo),
                volume=None if math.isnan(v) else float(v),
            )


@dataclass(frozen=True, slots=True)
class Quote:
    """A top-of-book quote. ``at`` is when the venue stamped it (aware)."""

    symbol: str
    last: float
    at: datetime
    bid: float | None = None
    ask: float | None = None

    @property
    def mid(self) -> float:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


class BidAsk:
    """Mid and relative spread for any frozen value with ``bid`` and ``ask``."""

    __slots__ = ()
    if TYPE_CHECKING:  # set by each subclass
        bid: float
        ask: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    @property
    def spread_pct(self) -> float:
        """Bid-ask spread as a fraction of mid (inf when mid is 0)."""
        mid = self.mid
        return (self.ask - self.bid) / mid if mid > 0 else math.inf


@dataclass(frozen=True, slots=True)
class OptionContract(BidAsk):
    underlying: str
    expiry: date
    strike: float
    right: Right
    bid: float
    ask: float
    delta: float  # signed, per share
    iv: float
    open_interest: int
    volume: int


@dataclass(frozen=True)
class OptionChain:
    """One underlying's chain as read-only columns; ``contract(i)`` gives row i as a value.

    Columnar because selection and pricing are vectorised; a 960-contract chain costs no
    Python objects until someone asks for a contract.
    """

    underlying: str
    as_of: datetime
    spot: float
    expiry: np.ndarray  # datetime64[D]
    strike: np.ndarray
    is_call: np.ndarray  # bool
    bid: np.ndarray
    ask: np.ndarray
    delta: np.ndarray
    iv: np.ndarray
    open_interest: np.ndarray  # int64
    volume: np.ndarray  # int64

    def __post_init__(self) -> None:
        n = len(self.strike)
        kinds: dict[str, npt.DTypeLike] = {
            "expiry": "datetime64[D]",
            "is_call": bool,
            "open_interest": np.int64,
            "volume": np.int64,
        }
        for name in (
            "expiry",
            "strike",
            "is_call",
            "bid",
            "ask",
            "delta",
            "iv",
            "open_interest",
            "volume",
        ):
            col = _readonly(getattr(self, name), kinds.get(name, float))
            if col.shape != (n,):
                raise ValueError(
                    f"{self.underlying} chain: column {name} has {col.shape}, expected ({n},)"
                )
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return len(self.strike)

    @cached_property
    def well_formed(self) -> np.ndarray:
        """Rows whose quote can be used: finite, a positive strike and ask, bid <= ask,
        |delta| <= 1, no negative interest or volume. Made once per chain: the columns are
        read-only, and a chain serves every tick of its session phase."""
        strike, bid, ask = self.strike, self.bid, self.ask
        # Every comparison with NaN is false, so the bounds say "finite" too: 0 < strike < inf,
        # 0 <= bid <= ask < inf, 0 < ask, |delta| <= 1 (half the time of isfinite on each).
        good = (strike > 0) & (strike < np.inf) & (bid >= 0) & (bid <= ask) & (ask < np.inf)
        good &= (ask > 0) & (np.abs(self.delta) <= 1)
        good &= (self.open_interest >= 0) & (self.volume >= 0)
        good.flags.writeable = False
        return good

    @cached_property
    def all_well_formed(self) -> bool:
        return bool(self.well_formed.all())

    @property
    def mid(self) -> np.ndarray:
        return (self.bid + self.ask) / 2

    @cached_property
    def expiries(self) -> tuple[date, ...]:
        """The listed expiries, in order; made once per chain (its columns are read-only)."""
        return tuple(d.astype(date) for d in np.unique(self.expiry))

    def contract(self, i: int) -> OptionContract:
        return OptionContract(
            underlying=self.underlying,
            expiry=self.expiry[i].astype(date),
            strike=float(self.strike[i]),
            right="call" if self.is_call[i] else "put",
            bid=float(self.bid[i]),
            ask=float(self.ask[i]),
            delta=float(self.delta[i]),
            iv=float(self.iv[i]),
            open_interest=int(self.open_interest[i]),
            volume=int(self.volume[i]),
        )

    def contracts(self) -> tuple[OptionContract, ...]:
        return tuple(self.contract(i) for i in range(len(self)))

    def select(self, mask: np.ndarray) -> OptionChain:
        cols = {k: getattr(self, k)[mask] for k in _CHAIN_COLUMNS}
        return OptionChain(self.underlying, self.as_of, self.spot, **cols)

    @classmethod
    def from_contracts(
        cls, underlying: str, as_of: datetime, spot: float, contracts: Sequence[OptionContract]
    ) -> OptionChain:
        """For adapters that receive contracts one by one (e.g. a broker's chain)."""
        return cls(
            underlying,
            as_of,
            spot,
            expiry=np.array([c.expiry for c in contracts], dtype="datetime64[D]"),
            strike=np.array([c.strike for c in contracts], dtype=float),
            is_call=np.array([c.right == "call" for c in contracts], dtype=bool),
            bid=np.array([c.bid for c in contracts], dtype=float),
            ask=np.array([c.ask for c in contracts], dtype=float),
            delta=np.array([c.delta for c in contracts], dtype=float),
            iv=np.array([c.iv for c in contracts], dtype=float),
            open_interest=np.array([c.open_interest for c in contracts], dtype=np.int64),
            volume=np.array([c.volume for c in contracts], dtype=np.int64),
        )


_CHAIN_COLUMNS = (
    "expiry",
    "strike",
    "is_call",
    "bid",
    "ask",
    "delta",
    "iv",
    "open_interest",
    "volume",
)


@dataclass(frozen=True, slots=True)
class AtrReading:
    """The ATR(5) a decision uses, with where it came from (never a bare number)."""

    value: float | None  # None only when there is neither an ATR nor a usable price
    source: AtrSource
    last_bar: date | None = None  # last bar the Wilder value was computed through
    findings: tuple[DataQualityFinding, ...] = ()


# How many completed closes of §5 trigger inputs an adapter hands over (``trigger_history``):
# the facts' ``hedge_trigger_off_closes`` counts within them, so it saturates here (D16).
TRIGGER_HISTORY_CLOSES = 20


@dataclass(frozen=True, slots=True)
class TriggerReading:
    """The §5 strategic-trigger inputs as they stood at one completed close."""

    day: date
    vix_closes_above_30: int
    spx_drawdown: float | None = None


def _frozen_map(m: Mapping | None) -> Mapping:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class MarketSnapshot:
    """What a market-data adapter knows at ``as_of``.

    Values are passed through as the feed gave them (bad ones included); the facts builder
    checks them. ``last_close`` is the last *valid* daily close per symbol, the fallback when a
    quote is unusable, as (session date, close); ``vix_last_close`` likewise for VIX.
    """

    as_of: datetime
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    vix: Quote | None = None
    atr5: Mapping[str, AtrReading] = field(default_factory=dict)
    chains: Mapping[str, OptionChain] = field(default_factory=dict)
    earnings_this_week: frozenset[str] = frozenset()
    last_close: Mapping[str, tuple[date, float]] = field(default_factory=dict)
    vix_last_close: tuple[date, float] | None = None
    vix_closes_above_30: int = 0
    spx_drawdown: float | None = None
    breadth_above_50dma: float | None = None
    # The trigger inputs at the last completed closes, oldest first (up to
    # TRIGGER_HISTORY_CLOSES; the last is the close the values above are of). An adapter that
    # knows the count of closes with no trigger on directly (a facts file) gives
    # ``hedge_trigger_off_closes`` instead.
    trigger_history: tuple[TriggerReading, ...] = ()
    hedge_trigger_off_closes: int | None = None
    findings: tuple[DataQualityFinding, ...] = ()
    # Per underlying, its implied vol over the index's (realised-vol ratio) where the adapter
    # measured one; modelled quotes use it so they agree with the chains (engine.market.quotes).
    vol_scales: Mapping[str, float] = field(default_factory=dict)
    # Set by an adapter that serves the same content at several instants (daily bars): two
    # snapshots with the same non-None key differ only in their time stamps (engine.cycle.quiet).
    content_key: Hashable | None = None
    # With a content key: the first instant the same bars may give other content (the open,
    # the ATR refresh, the close, midnight, an ATR going stale). Before it, every snapshot has
    # this content; an event-driven replay need not ask (scheduler.replay). None: unknown.
    content_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("MarketSnapshot.as_of must be timezone-aware")
        for name in ("quotes", "atr5", "chains", "last_close", "vol_scales"):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))
        object.__setattr__(self, "earnings_this_week", frozenset(self.earnings_this_week))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.quotes) | set(self.atr5) | set(self.last_close)))


class MarketDataPort(Protocol):
    """What the engine needs from any source of market data.

    Implementations never raise for bad *values* (they pass them on or report findings); they
    may raise ``constitution.errors.RetryError`` when the source itself is unreachable.
    """

    def snapshot(
        self, at: datetime, symbols: Sequence[str], params: MarketParams
    ) -> MarketSnapshot:
        """The market as known at ``at`` (aware), for the given underlyings plus VIX, under the
        constitution's ``params`` (ATR period, refresh and fallbacks, the VIX level whose
        consecutive closes are counted): one market serves every constitution in turn."""

    def history(self, symbol: str, first: date, last: date) -> DailyHistory:
        """Daily bars dated ``first``..``last`` inclusive (empty when none)."""
