"""Market data from a facts document: the file ``alluse evaluate --facts`` reads, served as a
``MarketDataPort`` so one paper cycle can run against a market state written by hand
(``alluse paper step --facts FILE``).

What the file gives and what the snapshot serves:

* ``market.underlyings.S.price`` -> a quote of S stamped ``as_of - market.data_age_seconds``
  (so the facts builder derives the same data age); with ``quote_ok: false`` no quote but a
  last close (the previous session's), which the facts builder uses and flags;
* ``atr5`` / ``atr_source`` -> the ATR reading; ``earnings_this_week`` -> the earnings set;
* ``market.vix`` -> the VIX quote; ``vix_closes_above_30``, ``spx_drawdown``,
  ``breadth_above_50dma`` as they are;
* option chains are *modelled* (``engine.market.options.synthetic_chain``) from the price and VIX,
  as ``BarMarketData`` does; ``chain_available: false`` serves none. The file's
  ``option_*`` liquidity fields describe a candidate contract and are not used (the modelled
  chain has its own);
* ``history`` is one close-only bar per underlying (and VIX) on the file's New York date, at
  its price: what the paper venue settles expiries of that day on.

The file's ``accounts`` are read and validated but not served: a market-data port has no
accounts (in a paper cycle the ledger is the portfolio). ``as_of`` may be left out when the
caller supplies the time. A symbol the file does not list gets no quote (a ``missing-quote``
finding), exactly like a symbol missing from a bar store. Serving the snapshot at a later
time than ``as_of`` keeps the quotes' stamps, so the facts builder sees them age.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from constitution.errors import FactsInvalid, Problem
from constitution.yamlsafe import Loaded, load_file
from engine.facts.load import validate_loaded
from engine.facts.model import Facts
from engine.market import calendar
from engine.market.options import DEFAULT_CHAIN_MODEL, ChainModel, synthetic_chain
from engine.market.params import MarketParams
from engine.market.snapshot import (
    AtrReading,
    DailyHistory,
    DataQualityFinding,
    MarketSnapshot,
    QualityCode,
    Quote,
)

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_TIME = time(10, 0)


def load_market_facts(
    path: str | Path, *, day: date | None = None, at_time: time | None = None
) -> tuple[Facts, Loaded, bool]:
    """Read and validate a facts file; returns (facts, the parsed file with its marks,
    whether ``as_of`` was in the file).

    Without ``as_of`` the cycle time is ``day`` at ``at_time`` (default 10:00) New York time,
    and ``day`` is required. With ``as_of``, a ``day``/``at_time`` given must agree with it.
    Every problem is a located ``FactsInvalid`` (``file:line:col: code: path: message``)."""
    loaded = load_file(path)
    if not isinstance(loaded.data, dict):
        raise FactsInvalid(
            [loaded.problem((), "type", "a facts document is a mapping (as_of, market, accounts)")]
        )
    data = dict(loaded.data)
    in_file = "as_of" in data
    if not in_file:
        if day is None:
            raise FactsInvalid(
                [
                    loaded.problem(
                        (),
                        "missing",
                        "no as_of in the file: give the cycle time with --date (and --time)",
                    )
                ]
            )
        data["as_of"] = datetime.combine(day, at_time or DEFAULT_TIME, tzinfo=NEW_YORK).isoformat()
    data.setdefault("accounts", [])
    loaded = replace(loaded, data=data)
    facts = validate_loaded(loaded)
    problems = _time_problems(loaded, facts, day, at_time) if in_file else []
    problems += _calendar_problems(loaded, facts)
    if problems:
        raise FactsInvalid(problems)
    return facts, loaded, in_file


def _time_problems(loaded: Loaded, facts: Facts, day: date | None, at_time: time | None) -> list:
    ny = facts.as_of_new_york
    out = []
    if day is not None and day != ny.date():
        out.append(
            loaded.problem(
                ("as_of",),
                "conflict",
                f"as_of is on {ny.date()} (New York), --date says {day}; give one",
            )
        )
    if at_time is not None and at_time != ny.time().replace(tzinfo=None):
        out.append(
            loaded.problem(
                ("as_of",),
                "conflict",
                f"as_of is at {ny.time():%H:%M:%S} (New York), --time says {at_time:%H:%M:%S}; give one",
            )
        )
    return out


def _calendar_problems(loaded: Loaded, facts: Facts) -> list:
    day = facts.as_of_new_york.date()
    if calendar.CALENDAR_FIRST <= day <= calendar.CALENDAR_LAST:
        return []
    return [
        loaded.problem(
            ("as_of",),
            "range",
            f"{day} is outside the NYSE calendar ({calendar.CALENDAR_FIRST}..{calendar.CALENDAR_LAST})",
        )
    ]


class FactsMarketData:
    """A ``MarketDataPort`` serving the market state of one facts document (module docstring)."""

    def __init__(
        self,
        facts: Facts,
        *,
        as_of_from_file: bool = True,
        chain_model: ChainModel = DEFAULT_CHAIN_MODEL,
        source: Loaded | None = None,
    ):
        self.facts = facts
        self.as_of_from_file = as_of_from_file
        self._model = chain_model
        self._source = source
        self._day = facts.as_of_new_york.date()

    @classmethod
    def load(
        cls, path: str | Path, *, day: date | None = None, at_time: time | None = None
    ) -> FactsMarketData:
        facts, loaded, in_file = load_market_facts(path, day=day, at_time=at_time)
        return cls(facts, as_of_from_file=in_file, source=loaded)

    def require(self, symbols: Iterable[str], why: str) -> None:
        """Refuse (a located ``FactsInvalid``) when the file does not price all of ``symbols``."""
        missing = sorted(set(symbols) - set(self.facts.market.underlyings))
        if not missing:
            return
        message = f"no {', '.join(missing)}: {why}"
        if self._source is None:
            raise FactsInvalid(
                [Problem("<facts>", 1, 1, "missing-underlying", "market.underlyings", message)]
            )
        raise FactsInvalid(
            [self._source.problem(("market", "underlyings"), "missing-underlying", message)]
        )

    def require_session(self) -> None:
        """Refuse (a located ``FactsInvalid``) a file whose ``as_of`` is not on an NYSE session:
        a paper step at a time no market trades (as ``alluse data facts`` refuses its date)."""
        if calendar.is_session(self._day):
            return
        before, after = calendar.previous_session(self._day), calendar.next_session(self._day)
        message = f"{self._day} is not an NYSE session (try {before} or {after})"
        if self._source is None:
            raise FactsInvalid([Problem("<facts>", 1, 1, "not-a-session", "as_of", message)])
        raise FactsInvalid([self._source.problem(("as_of",), "not-a-session", message)])

    @property
    def as_of(self) -> datetime:
        return self.facts.as_of

    def snapshot(
        self, at: datetime, symbols: Sequence[str], params: MarketParams | None = None
    ) -> MarketSnapshot:
        """The facts file's market; ``params`` is not read: the file already states the ATR and
        the VIX count the constitution's values would give."""
        m = self.facts.market
        stamp = min(at, self.as_of) - timedelta(seconds=m.data_age_seconds)
        vix = Quote("VIX", m.vix, stamp)
        quotes, atr, chains, last_close, findings = {}, {}, {}, {}, []
        for s in symbols:
            u = m.underlyings.get(s)
            if u is None:
                findings.append(
                    DataQualityFinding(QualityCode.MISSING_QUOTE, s, "symbol not in the facts file")
                )
                continue
            if u.quote_ok:
                quotes[s] = Quote(s, u.price, stamp)
            else:
                last_close[s] = (calendar.previous_session(self._day), u.price)
            atr[s] = AtrReading(u.atr5, u.atr_source)
            if u.chain_available:
                chains[s] = synthetic_chain(s, u.price, m.vix, at, self._model)
        return MarketSnapshot(
            as_of=at,
            quotes=quotes,
            vix=vix,
            atr5=atr,
            chains=chains,
            earnings_this_week=frozenset(
                s for s, u in m.underlyings.items() if u.earnings_this_week
            ),
            last_close=last_close,
            vix_closes_above_30=m.vix_closes_above_30,
            hedge_trigger_off_closes=m.hedge_trigger_off_closes,
            spx_drawdown=m.spx_drawdown,
            breadth_above_50dma=m.breadth_above_50dma,
            findings=tuple(findings) + _file_findings(self.facts),
        )

    def history(self, symbol: str, first: date, last: date) -> DailyHistory:
        m = self.facts.market
        price = (
            m.vix
            if symbol == "VIX"
            else (m.underlyings[symbol].price if symbol in m.underlyings else None)
        )
        days = [self._day] if price is not None and first <= self._day <= last else []
        close = np.array([price] * len(days), dtype=float)
        nan = np.full(len(days), math.nan)
        return DailyHistory(
            symbol,
            np.array(days, dtype="datetime64[D]"),
            nan,
            nan,
            nan,
            close,
            nan,
            close_only=True,
        )


def _file_findings(facts: Facts) -> tuple[DataQualityFinding, ...]:
    """The file's own ``quality`` list, where its codes are known ones."""
    known = {c.value for c in QualityCode}
    return tuple(
        DataQualityFinding(QualityCode(q.code), q.subject, q.detail)
        for q in facts.quality
        if q.code in known
    )
