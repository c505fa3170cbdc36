"""Facts -> flat fact records with computed fields, named as the rule vocabulary says.

Computed fields are documented in docs/facts.md. Ratios are rounded to 9 decimal places so
that a boundary the constitution states exactly (a breach of exactly 2.0 x ATR) is exact,
not 1.9999999999 because of binary floating point.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from constitution import vocabulary as V
from engine.facts.model import Account, Facts, Position, Underlying, position_key
from engine.market import calendar as nyse

PRECISION = 9
MONTH = 365.25 / 12  # days in an average month: "TTE <= 3M" is 91.3 days (§17, D65)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Prepared:
    """Fact records by alias: m (market and clock), a (accounts), u (underlyings), p (positions)."""

    market: dict
    accounts: tuple[dict, ...]
    underlyings: tuple[dict, ...]
    positions: tuple[dict, ...]


def _r(x: float) -> float:
    return round(x, PRECISION)


def prepare(facts: Facts, early_close_shift_minutes: int, cadence: nyse.Cadence) -> Prepared:
    """``cadence``: the constitution's timetable for the schedule clock (see ``clock_fields``)."""
    ny = facts.as_of_new_york
    today = ny.date()
    market = _market(facts, ny, early_close_shift_minutes, cadence)
    underlyings = tuple(_underlying(sym, u) for sym, u in sorted(facts.market.underlyings.items()))
    accounts, positions = [], []
    for a in facts.accounts:
        accounts.append(_account(a, today))
        for p in a.positions:
            positions.append(_position(a, p, facts.market.underlyings[p.symbol], today))
    return Prepared(market, tuple(accounts), underlyings, tuple(positions))


def clock_fields(ny: datetime, early_close: bool, shift: int, cadence: nyse.Cadence) -> dict:
    """The clock's facts at ``ny`` (a New York datetime); ``engine.cycle.quiet`` reads them too.

    ``clock_schedule_minutes`` is ``engine.market.calendar.schedule_minutes``: the real minutes, on an
    early close plus ``shift`` and never behind a close-anchored event the scheduler has already
    fired (D24: the 15:00 assignment check fires at 12:45 and the clock reads 15:00 from then).
    The close-anchored times come from ``cadence`` (the constitution's, ``calendar.cadence_of``);
    its own shift is replaced by ``shift``."""
    minutes = ny.hour * 60 + ny.minute
    last_day = calendar.monthrange(ny.year, ny.month)[1]
    session, week_last, expiry = _session_roles(ny.date())
    return {
        "clock_weekday": WEEKDAYS[ny.weekday()],
        "clock_session": session,
        "clock_last_session_of_week": week_last,
        "clock_expiry_session": expiry,
        "clock_minutes_et": minutes,
        "clock_schedule_minutes": nyse.schedule_minutes(
            ny, early_close, _with_shift(cadence, shift)
        )
        if early_close
        else minutes,
        "clock_quarter_end_week": ny.month in (3, 6, 9, 12) and ny.day > last_day - 7,
        "clock_quarter_last_session": _quarter_last_session(ny.date()),
    }


@lru_cache(maxsize=4096)  # every tick of a day asks about the same day
def _session_roles(day: date) -> tuple[bool, bool, bool]:
    return nyse.session_roles(day)


def _quarter_last_session(day: date) -> bool:
    try:
        return nyse.last_session_of_quarter(day) == day
    except nyse.CalendarRangeError:
        return False


def _with_shift(cadence: nyse.Cadence, shift: int) -> nyse.Cadence:
    delta = timedelta(minutes=shift)
    return (
        cadence if cadence.early_close_shift == delta else replace(cadence, early_close_shift=delta)
    )


def _market(facts: Facts, ny: datetime, shift: int, cadence: nyse.Cadence) -> dict:
    m = facts.market
    return {
        "t": "m",
        "id": "m",
        "vix": m.vix,
        "vix_closes_above_30": m.vix_closes_above_30,
        "spx_drawdown": m.spx_drawdown,
        "breadth_above_50dma": m.breadth_above_50dma,
        "early_close": m.early_close,
        "broker_connected": m.broker_connected,
        "data_age_seconds": m.data_age_seconds,
        **clock_fields(ny, m.early_close, shift, cadence),
        **_present(hedge_trigger_off_closes=m.hedge_trigger_off_closes),
    }


def _present(**values: Any) -> dict[str, Any]:
    """Optional facts: a missing value is absent, so a comparison with it is false (D8)."""
    return {k: v for k, v in values.items() if v is not None}


def _underlying(symbol: str, u: Underlying) -> dict:
    out = {
        "t": "u",
        "id": f"u:{symbol}",
        "sym": symbol,
        "price": u.price,
        "atr5": u.atr5,
        "earnings_this_week": u.earnings_this_week,
        "chain_available": u.chain_available,
        "quote_ok": u.quote_ok,
    }
    liquidity = {
        "option_open_interest": u.option_open_interest,
        "option_volume": u.option_volume,
        "option_spread_pct": u.option_spread_pct,
    }
    out.update({k: v for k, v in liquidity.items() if v is not None})
    out["liquidity_known"] = all(v is not None for v in liquidity.values())
    return out


def _account(a: Account, today: date) -> dict:
    hedged = holds_shares = False
    for p in a.positions:
        hedged = hedged or (p.purpose == "hedge" and p.side == "long")
        holds_shares = holds_shares or p.right == "stock"
    return {
        "t": "a",
        "id": f"a:{a.id}",
        "acct": a.id,
        "kind": a.kind,
        "equity": a.equity,
        "base_equity": a.base_equity,
        "high_water_mark": a.high_water_mark,
        "cash": a.cash,
        "forks": a.forks,
        "quarter_gains": a.quarter_gains,
        "fork_deferred": a.fork_deferred,
        "pivot_latched": a.pivot_latched,
        "drawdown": _r(1 - a.equity / a.high_water_mark),
        "gain_over_base": _r(a.equity - a.base_equity),
        "growth_multiple": _r(a.equity / a.base_equity),
        "age_years": _r((today - a.opened).days / 365.25),
        "hedged": hedged,
        "holds_shares": holds_shares,
    }


_POSITION_OPTIONAL = (
    "strike",
    "contracts",
    "shares",
    "entry_credit",
    "entry_debit",
    "mark",
    "delta",
    "cost_basis",
    "roll_debit",
)


def _position(a: Account, p: Position, u: Underlying, today: date) -> dict:
    key = position_key(a.id, p)
    right = p.right
    out = {
        "t": "p",
        "id": "p:" + key,
        "key": key,
        "acct": a.id,
        "sym": p.symbol,
        "right": right,
        "side": p.side,
        "purpose": p.purpose,
        "is_option": right != "stock",
    }
    given = p.__dict__  # the model's field values (one dict read each, not an attribute's)
    for name in _POSITION_OPTIONAL:
        value = given[name]
        if value is not None:
            out[name] = value
    if right != "stock":
        _option_metrics(out, p, u, today)
    else:
        covered = sum(
            q.contracts or 0
            for q in a.positions
            if q.symbol == p.symbol and q.right == "call" and q.side == "short"
        )
        out["uncovered_contracts"] = max(0, (p.shares or 0) // 100 - covered)
    out["roll_cost_known"] = "roll_cost_ratio" in out
    return out


def _option_metrics(out: dict, p: Position, u: Underlying, today: date) -> None:
    """An option's computed fields, into ``out``."""
    if p.expiry is None or p.strike is None:  # an option has both
        return
    days = (p.expiry - today).days
    out["dte"] = days
    out["months_left"] = round(days / MONTH, PRECISION)
    if p.side == "short":
        breach = (p.strike - u.price) if p.right == "put" else (u.price - p.strike)
        out["breach_atr"] = round(breach / u.atr5, PRECISION)
        out["otm_atr"] = round(-breach / u.atr5, PRECISION)
        if p.mark is not None and p.entry_credit:
            out["decay"] = round(1 - p.mark / p.entry_credit, PRECISION)
        if p.roll_debit is not None and p.entry_credit:
            out["roll_cost_ratio"] = round(p.roll_debit / p.entry_credit, PRECISION)
    elif p.mark is not None and p.entry_debit:
        out["profit_multiple"] = round(p.mark / p.entry_debit - 1, PRECISION)
    if p.delta is not None:
        out["abs_delta"] = abs(p.delta)


def derived_bottoms() -> dict[str, dict[str, object]]:
    """Bottom values of derived fields, by alias."""
    out: dict[str, dict[str, object]] = {"m": {}, "a": {}, "u": {}, "p": {}}
    alias = {"market": "m", "clock": "m", "account": "a", "underlying": "u", "position": "p"}
    for f in V.FIELDS:
        if f.origin is V.Origin.DERIVED:
            out[alias[f.entity]][V.physical(f)] = V.derived_bottom(f)
    return out
