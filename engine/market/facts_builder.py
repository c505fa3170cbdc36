"""Market snapshot + account state -> the facts document (``engine.facts.model.Facts``).

This is where data quality becomes facts. Whatever an adapter passes on, it is checked here:

* a quote that is NaN/inf, zero/negative, crossed or older than ``max_quote_age``
  (``data_failures.quote_stale_seconds``, v1.3 30 s)
  sets ``underlying.quote_ok = false``; the price used is then the last valid daily close and
  the finding says so (no silently wrong number, no exception);
* a missing or empty chain sets ``chain_available = false``; unusable chain rows are dropped;
* the ATR comes with its source (``wilder`` / ``close_to_close`` / ``stale_fallback`` /
  ``price_fallback``);
* ``market.data_age_seconds`` is the age of the oldest price the decision uses;
* every finding is listed in ``facts.quality``.

The only failures that raise are the ones no fact can describe honestly: no VIX at all, or a
held position whose underlying has no usable price anywhere (``MarketDataUnavailable``), and
account state that contradicts itself (``FactsInvalid``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np

from constitution.errors import FactsInvalid, OperationalError, Problem
from constitution.models import HedgeTriggers
from engine.facts.model import (
    Account,
    Facts,
    Market,
    QualityFinding,
    Underlying,
    consistency_problems,
)
from engine.market import calendar
from engine.market.options import select_strike
from engine.market.params import CandidateSpec, MarketParams
from engine.market.snapshot import (
    AtrReading,
    DataQualityFinding,
    MarketSnapshot,
    OptionChain,
    QualityCode,
    Quote,
)

Q = QualityCode
__all__ = ["CandidateSpec", "MarketDataUnavailable", "build_facts", "candidates_for_day"]


class MarketDataUnavailable(OperationalError):
    """Not enough market data to state the facts at all (exit 3: an operator must look)."""


def candidates_for_day(day: date, params: MarketParams) -> dict[str, CandidateSpec]:
    """Candidates of the sleeves whose entry window is on ``day`` (the facts carry one per
    underlying; on an entry day the entering sleeve's candidate is the one that matters)."""
    out: dict[str, CandidateSpec] = {}
    for sleeve in sorted(calendar.windows_for(day, params.cadence).entry):
        for symbol in params.sleeve_tickers.get(sleeve, ()):
            if sleeve in params.candidates:
                out.setdefault(symbol, params.candidates[sleeve])
    return out


@dataclass
class _Acc:
    """Mutable accumulator for one build (never escapes this module)."""

    as_of: datetime
    max_quote_age: timedelta
    findings: list[DataQualityFinding] = field(default_factory=list)
    oldest: float = 0.0

    def note(self, code: QualityCode, subject: str, detail: str = "") -> None:
        self.findings.append(DataQualityFinding(code, subject, detail))

    def age(self, seconds: float) -> None:
        self.oldest = max(self.oldest, seconds)


def _price_problem(value: float | None) -> tuple[QualityCode, str] | None:
    if value is None:
        return Q.MISSING_QUOTE, "no price"
    if not math.isfinite(value):
        return Q.NON_FINITE_PRICE, f"price {value}"
    if value <= 0:
        return Q.NON_POSITIVE_PRICE, f"price {value}"
    return None


def _quote_problems(q: Quote, acc: _Acc) -> list[tuple[QualityCode, str]]:
    out = [p for p in (_price_problem(q.last),) if p]
    for side, v in (("bid", q.bid), ("ask", q.ask)):
        if v is not None and (p := _price_problem(v)) and not (side == "bid" and v == 0):
            out.append((p[0], f"{side} {v}"))  # a zero bid is normal for far options, not stocks
    if q.bid is not None and q.ask is not None and q.bid > q.ask:
        out.append((Q.CROSSED_QUOTE, f"bid {q.bid} > ask {q.ask}"))
    age = (acc.as_of - q.at).total_seconds()
    if age > acc.max_quote_age.total_seconds():
        out.append(
            (Q.STALE_QUOTE, f"{age:.0f} s old (limit {acc.max_quote_age.total_seconds():.0f} s)")
        )
    return out


def _close_age(day: date | None, acc: _Acc) -> float:
    close = calendar.session_close(day) if day else None
    return max((acc.as_of - close).total_seconds(), 0.0) if close else 0.0


def _price(symbol: str, snap: MarketSnapshot, acc: _Acc) -> tuple[float | None, bool]:
    """(price, quote_ok). Falls back to the last valid close, flagged; None when nothing."""
    q = snap.quotes.get(symbol)
    problems = _quote_problems(q, acc) if q else [(Q.MISSING_QUOTE, "no quote")]
    for code, detail in problems:
        acc.note(code, symbol, detail)
    if q is not None and not problems:
        acc.age(max((acc.as_of - q.at).total_seconds(), 0.0))
        return q.last, True
    last = snap.last_close.get(symbol)
    if last is None or _price_problem(last[1]):
        return None, False
    acc.note(Q.PRICE_FROM_LAST_CLOSE, symbol, f"close of {last[0]}: {last[1]}")
    acc.age(_close_age(last[0], acc))
    return last[1], False


def _vix(snap: MarketSnapshot, acc: _Acc) -> float:
    q = snap.vix
    problems = _quote_problems(q, acc) if q else [(Q.MISSING_VIX, "no VIX quote")]
    for code, detail in problems:
        acc.note(code, "VIX", detail)
    if q is not None and not problems:
        acc.age(max((acc.as_of - q.at).total_seconds(), 0.0))
        return q.last
    last = snap.vix_last_close
    if last is None or _price_problem(last[1]):
        raise MarketDataUnavailable(
            f"no usable VIX at {acc.as_of.isoformat()} (no quote, no valid close)"
        )
    acc.note(Q.VIX_FROM_LAST_CLOSE, "VIX", f"close of {last[0]}: {last[1]}")
    acc.age(_close_age(last[0], acc))
    return last[1]


def _atr(
    symbol: str, reading: AtrReading | None, price: float, acc: _Acc, fraction: float
) -> tuple[float, str]:
    if reading is not None:
        acc.findings.extend(reading.findings)
    if (
        reading is not None
        and reading.value is not None
        and math.isfinite(reading.value)
        and reading.value > 0
    ):
        return reading.value, reading.source
    if reading is None or not any(f.code is Q.NO_ATR for f in reading.findings):
        acc.note(Q.NO_ATR, symbol, f"no ATR reading; {fraction:.0%} of price")
    return price * fraction, "price_fallback"


def _usable_chain(symbol: str, chain: OptionChain | None, acc: _Acc) -> OptionChain | None:
    if chain is None or len(chain) == 0:
        acc.note(
            Q.MISSING_CHAIN, symbol, "no option chain" if chain is None else "empty option chain"
        )
        return None
    if chain.all_well_formed:
        return chain
    good = chain.well_formed
    acc.note(
        Q.BAD_CHAIN_ROWS,
        symbol,
        f"{int((~good).sum())} of {len(chain)} contracts unusable, dropped",
    )
    if not good.any():
        acc.note(Q.MISSING_CHAIN, symbol, "no usable contract in the chain")
        return None
    return chain.select(good)


# A chain serves every tick of its session phase, and each decided tick asks for the same
# candidate (the same spec, the same day): made once per chain, spec and day. The chain is
# held with its answers, so its id is not reused meanwhile (a session has ~20 chains).
_CANDIDATES: dict[int, tuple[OptionChain, dict[tuple[CandidateSpec, date], dict]]] = {}


def _candidate(chain: OptionChain | None, spec: CandidateSpec | None, as_of: datetime) -> dict:
    if chain is None or spec is None:
        return {}
    key = (spec, calendar.new_york_date(as_of))
    known = _CANDIDATES.get(id(chain))
    if known is None or known[0] is not chain:
        if len(_CANDIDATES) >= 64:
            _CANDIDATES.clear()
        known = _CANDIDATES[id(chain)] = (chain, {})
    found = known[1].get(key)
    if found is None:
        found = known[1][key] = _made_candidate(chain, spec, key[1])
    return dict(found)  # the caller's own: the kept one is never handed out


def _made_candidate(chain: OptionChain, spec: CandidateSpec, day: date) -> dict:
    today = np.datetime64(day, "D")
    dte = (chain.expiry - today).astype(int)
    in_range = (dte >= spec.min_dte) & (dte <= spec.max_dte)
    if not in_range.any():
        return {}
    # No liquidity filter: the facts report the candidate's liquidity for the rules to judge.
    choice = select_strike(
        chain,
        spec.right,
        spec.delta_band,
        where=in_range,
        min_open_interest=0,
        min_volume=0,
        max_spread_pct=math.inf,
    )
    c = choice.contract
    if c is None:
        return {}
    spread = c.spread_pct
    return {
        "option_open_interest": float(c.open_interest),
        "option_volume": float(c.volume),
        "option_spread_pct": spread if math.isfinite(spread) else None,
    }


def _underlying(
    symbol: str, snap: MarketSnapshot, acc: _Acc, spec: CandidateSpec | None, price_fraction: float
) -> Underlying | None:
    price, quote_ok = _price(symbol, snap, acc)
    if price is None:
        acc.note(Q.NO_PRICE, symbol, "no usable quote or close: left out of the facts")
        return None
    atr, source = _atr(symbol, snap.atr5.get(symbol), price, acc, price_fraction)
    chain = _usable_chain(symbol, snap.chains.get(symbol), acc)
    return Underlying(
        price=price,
        atr5=atr,
        earnings_this_week=symbol in snap.earnings_this_week,
        chain_available=chain is not None,
        quote_ok=quote_ok,
        atr_source=source,
        **_candidate(chain, spec, snap.as_of),
    )


def _market_extras(snap: MarketSnapshot, acc: _Acc, triggers: HedgeTriggers | None) -> dict:
    out: dict = {
        "vix_closes_above_30": snap.vix_closes_above_30,
        "hedge_trigger_off_closes": _off_closes(snap, triggers),
    }
    for name in ("spx_drawdown", "breadth_above_50dma"):
        value = getattr(snap, name)
        if value is None or not math.isfinite(value) or not 0 <= value <= 1:
            default = Market.model_fields[name].default
            acc.note(
                Q.INDICATOR_DEFAULTED,
                name,
                f"unknown ({value}); the neutral default {default} is used",
            )
        else:
            out[name] = value
    return out


def _off_closes(snap: MarketSnapshot, triggers: HedgeTriggers | None) -> int | None:
    """Consecutive closes, the last included, at which no §5 strategic trigger held (D16).

    From the adapter's ``trigger_history`` (VIX closes above 30 and the S&P drawdown at each
    close) judged by the constitution's ``hedging.triggers``; breadth has no history and
    counts only as it stands now (below its floor: the trigger is on, 0). Saturates at the
    history's depth. None when there is no history to judge (a hedge is then kept)."""
    if snap.hedge_trigger_off_closes is not None:
        return snap.hedge_trigger_off_closes
    if triggers is None or not snap.trigger_history:
        return None
    breadth = snap.breadth_above_50dma
    if breadth is not None and math.isfinite(breadth) and breadth < triggers.breadth_below:
        return 0
    count = 0
    for r in reversed(snap.trigger_history):
        drawdown = r.spx_drawdown is not None and r.spx_drawdown >= triggers.spx_drawdown
        if r.vix_closes_above_30 >= triggers.vix_days or drawdown:
            break
        count += 1
    return count


def _consistency(facts: Facts) -> None:
    problems = [
        Problem("<facts>", 0, 0, code, ".".join(str(p) for p in path), message)
        for path, code, message in consistency_problems(facts)
    ]
    if problems:
        raise FactsInvalid(problems)


def build_facts(
    snapshot: MarketSnapshot,
    accounts: Sequence[Account],
    *,
    params: MarketParams,
    symbols: Sequence[str] = (),
    candidates: Mapping[str, CandidateSpec] | None = None,
    broker_connected: bool = True,
) -> Facts:
    """The facts document at ``snapshot.as_of``, under the constitution's ``params``.

    ``params.hedge_triggers`` (the constitution's ``hedging.triggers``) judge the snapshot's
    trigger history into ``market.hedge_trigger_off_closes``.

    Underlyings are those of the snapshot, of ``symbols`` and of every position held.
    ``candidates`` says, per symbol, which option's liquidity to report (see
    ``candidates_for_day``).
    """
    acc = _Acc(snapshot.as_of, params.max_quote_age, list(snapshot.findings))
    vix = _vix(snapshot, acc)
    held = {p.symbol for a in accounts for p in a.positions}
    underlyings: dict[str, Underlying] = {}
    for symbol in sorted(set(snapshot.symbols) | set(symbols) | held):
        u = _underlying(
            symbol, snapshot, acc, (candidates or {}).get(symbol), params.atr.price_fraction
        )
        if u is not None:
            underlyings[symbol] = u
        elif symbol in held:
            raise MarketDataUnavailable(
                f"no usable price for {symbol}, which is held; cannot state the facts"
            )
    market = Market(
        vix=vix,
        early_close=calendar.is_early_close(calendar.new_york_date(snapshot.as_of)),
        broker_connected=broker_connected,
        data_age_seconds=acc.oldest,
        underlyings=underlyings,
        **_market_extras(snapshot, acc, params.hedge_triggers),
    )
    facts = Facts(
        as_of=snapshot.as_of,
        market=market,
        accounts=tuple(accounts),
        quality=_quality(acc.findings),
    )
    _consistency(facts)
    return facts


def _quality(findings: list[DataQualityFinding]) -> tuple[QualityFinding, ...]:
    return _findings(
        tuple(sorted(dict.fromkeys((f.subject, str(f.code), f.detail) for f in findings)))
    )


@lru_cache(maxsize=1024)
def _findings(unique: tuple[tuple[str, str, str], ...]) -> tuple[QualityFinding, ...]:
    """The facts' findings, made once per distinct set: a history's ticks repeat the same few
    (a chain that cannot be priced, an index without options), and the models are frozen."""
    return tuple(QualityFinding(code=c, subject=s, detail=d) for s, c, d in unique)
