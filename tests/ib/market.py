"""The stub gateway's security master and its option model (Black-Scholes, r = 0).

Options are created on demand when a request names an expiry and strike the chain lists, so a
test never has to enumerate contracts up front. Con ids are stable within one stub.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from .messages import StubContract

INDEX_SYMBOLS = {"SPX": "CBOE", "VIX": "CBOE"}


@dataclass
class Underlying:
    symbol: str
    price: float
    iv: float = 0.30
    expiries: tuple[str, ...] = ()
    strikes: tuple[float, ...] = ()
    bars: tuple[tuple, ...] = ()  # (YYYYMMDD, open, high, low, close, volume)


@dataclass
class SecurityMaster:
    underlyings: dict[str, Underlying] = field(default_factory=dict)
    contracts: dict[int, StubContract] = field(default_factory=dict)
    _next_con_id: int = 1000

    def add(self, u: Underlying) -> StubContract:
        self.underlyings[u.symbol] = u
        kind = "IND" if u.symbol in INDEX_SYMBOLS else "STK"
        exchange = INDEX_SYMBOLS.get(u.symbol, "SMART")
        return self._register(
            StubContract(
                0,
                u.symbol,
                kind,
                exchange=exchange,
                primary_exchange="NASDAQ" if kind == "STK" else "",
            )
        )

    def underlying_contract(self, symbol: str) -> StubContract | None:
        return next(
            (
                c
                for c in self.contracts.values()
                if c.symbol == symbol and c.sec_type in ("STK", "IND")
            ),
            None,
        )

    def _register(self, c: StubContract) -> StubContract:
        self._next_con_id += 1
        c.con_id = self._next_con_id
        self.contracts[c.con_id] = c
        return c

    def match(self, want: StubContract) -> list[StubContract]:
        """Contracts matching the non-empty fields of a request (IB's contract-details search)."""
        if want.con_id:
            found = self.contracts.get(want.con_id)
            return [found] if found else []
        if want.sec_type == "OPT":
            return self._match_option(want)
        return [
            c
            for c in self.contracts.values()
            if c.symbol == want.symbol and c.sec_type == want.sec_type
        ]

    def _match_option(self, want: StubContract) -> list[StubContract]:
        u = self.underlyings.get(want.symbol)
        if u is None or want.expiry not in u.expiries:
            return []
        if want.strike and want.strike not in u.strikes:
            return []
        tclass = want.trading_class or self._default_class(u.symbol)
        strikes = [want.strike] if want.strike else list(u.strikes)  # 0: every strike
        rights = [want.right] if want.right else ["P", "C"]
        return [self._option(u.symbol, want.expiry, k, r, tclass) for k in strikes for r in rights]

    @staticmethod
    def _default_class(symbol: str) -> str:
        return symbol

    def _option(
        self, symbol: str, expiry: str, strike: float, right: str, tclass: str
    ) -> StubContract:
        for c in self.contracts.values():
            if (c.sec_type, c.symbol, c.expiry, c.strike, c.right, c.trading_class) == (
                "OPT",
                symbol,
                expiry,
                strike,
                right,
                tclass,
            ):
                return c
        exchange = INDEX_SYMBOLS.get(symbol, "SMART")
        return self._register(
            StubContract(
                0, symbol, "OPT", expiry, strike, right, "100", exchange, trading_class=tclass
            )
        )


@dataclass(frozen=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    vega: float
    theta: float


def black_scholes(spot: float, strike: float, years: float, iv: float, right: str) -> Greeks:
    years = max(years, 1 / 365)
    sd = iv * math.sqrt(years)
    d1 = (math.log(spot / strike) + 0.5 * iv * iv * years) / sd
    d2 = d1 - sd
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    gamma = pdf / (spot * sd)
    vega = spot * pdf * math.sqrt(years) / 100
    theta = -spot * pdf * iv / (2 * math.sqrt(years)) / 365
    if right == "C":
        return Greeks(spot * _cdf(d1) - strike * _cdf(d2), _cdf(d1), gamma, vega, theta)
    return Greeks(strike * _cdf(-d2) - spot * _cdf(-d1), _cdf(d1) - 1, gamma, vega, theta)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def years_between(today: date, expiry: str) -> float:
    exp = datetime.strptime(expiry, "%Y%m%d").date()
    return (exp - today).days / 365
