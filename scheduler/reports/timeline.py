"""What the decisions say over time: market mode over VIX, the S&P 500 for the benchmark,
protocol-level episodes, capital deployed, fork and merge proposals.

One pass over the audit log's decision records (oldest first). A day's value is that of its
last decision (its worst market mode for the mode timeline). The benchmark is the S&P 500 as
the decisions saw it: ``SPX`` when the facts carry the index, else ``SPY`` (the index fund,
labelled as such); where neither is in the facts there is no benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from adapters.storage.readers import DecisionBody
from engine.market import calendar

MODE_SEVERITY = {"active": 0, "hedged": 1, "safe": 2, "kill": 3}
BENCHMARK_SYMBOLS = ("SPX", "SPY")


@dataclass(frozen=True)
class Episode:
    """Consecutive decisions in which one position stood at protocol level 1 or higher."""

    position: str
    account: str
    level: int  # the highest level reached
    start: datetime
    end: datetime | None  # the first decision back at level 0 (or without the position)
    decisions: int


@dataclass(frozen=True)
class ModeDay:
    day: date
    mode: str  # the day's most severe market mode
    vix: float | None


@dataclass
class Timeline:
    first: datetime | None = None
    last: datetime | None = None
    decisions: int = 0
    constitutions: dict[str, str] = field(default_factory=dict)  # digest -> version
    modes: list[ModeDay] = field(default_factory=list)
    benchmark_symbol: str | None = None
    benchmark: dict[date, float] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    deployed: dict[date, dict[str, tuple[float, float]]] = field(default_factory=dict)
    proposals: Counter[str] = field(default_factory=Counter)  # "fork_account approved" -> n


class _Builder:
    def __init__(self) -> None:
        self.t = Timeline()
        self.days: dict[date, ModeDay] = {}
        self.prices: dict[str, dict[date, float]] = {s: {} for s in BENCHMARK_SYMBOLS}
        self.open: dict[str, dict[str, Any]] = {}

    def add(self, d: DecisionBody) -> None:
        dec = d.decision
        at = datetime.fromisoformat(dec["as_of"])
        day = calendar.new_york_date(at)
        t = self.t
        t.first = at if t.first is None else min(t.first, at)
        t.last = at if t.last is None else max(t.last, at)
        t.decisions += 1
        t.constitutions[dec["constitution"]["digest"]] = dec["constitution"]["version"]
        market = dec.get("facts", {}).get("market", {})
        self._mode(day, dec.get("derived", {}).get("market", {}).get("mode", "active"), market)
        for symbol in BENCHMARK_SYMBOLS:
            price = market.get("underlyings", {}).get(symbol, {}).get("price")
            if price:
                self.prices[symbol][day] = float(price)
        self._episodes(at, dec.get("derived", {}).get("positions", {}))
        t.deployed[day] = _deployment(dec.get("facts", {}), market)
        self._proposals(dec)

    def _mode(self, day: date, mode: str, market: dict[str, Any]) -> None:
        vix = market.get("vix")
        seen = self.days.get(day)
        worst = mode
        if seen is not None and MODE_SEVERITY.get(seen.mode, 0) > MODE_SEVERITY.get(mode, 0):
            worst = seen.mode
        self.days[day] = ModeDay(day, worst, float(vix) if vix is not None else None)

    def _episodes(self, at: datetime, positions: dict[str, Any]) -> None:
        levels = {k: int(v.get("level", 0)) for k, v in positions.items()}
        for key in list(self.open):
            if levels.get(key, 0) < 1:
                self._close(key, at)
        for key, level in levels.items():
            if level < 1:
                continue
            ep = self.open.setdefault(key, {"start": at, "level": level, "decisions": 0})
            ep["level"] = max(ep["level"], level)
            ep["decisions"] += 1

    def _close(self, key: str, at: datetime | None) -> None:
        ep = self.open.pop(key)
        self.t.episodes.append(
            Episode(key, key.split("/")[0], ep["level"], ep["start"], at, ep["decisions"])
        )

    def _proposals(self, dec: dict[str, Any]) -> None:
        verdicts = {v["action"]: v["approved"] for v in dec.get("verdicts", ())}
        for i, a in enumerate(dec.get("actions", ())):
            if a["kind"] in ("fork_account", "merge_account"):
                verdict = verdicts.get(i)
                status = "no verdict" if verdict is None else "approved" if verdict else "denied"
                self.t.proposals[f"{a['kind']} {status}"] += 1

    def done(self) -> Timeline:
        for key in list(self.open):
            self._close(key, None)
        t = self.t
        t.episodes.sort(key=lambda e: (e.start, e.position))
        t.modes = [self.days[d] for d in sorted(self.days)]
        for symbol in BENCHMARK_SYMBOLS:
            if self.prices[symbol]:
                t.benchmark_symbol, t.benchmark = symbol, dict(sorted(self.prices[symbol].items()))
                break
        return t


def _deployment(facts: dict[str, Any], market: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """account -> (capital deployed, equity) in dollars. Deployed: cash securing short puts
    (strike x 100 x contracts), shares at the underlying's price, long options at their mark.
    Short calls are covered by the shares and add nothing. docs/decisions.md D100."""
    prices = {s: u.get("price") for s, u in market.get("underlyings", {}).items()}
    out = {}
    for a in facts.get("accounts", ()):
        deployed = sum(_deployed(p, prices) for p in a.get("positions", ()))
        out[a["id"]] = (deployed, float(a.get("equity", 0.0)))
    return out


def _deployed(p: dict[str, Any], prices: dict[str, Any]) -> float:
    if p["right"] == "stock":
        return float(p.get("shares") or 0) * float(
            prices.get(p["symbol"]) or p.get("cost_basis") or 0
        )
    contracts = float(p.get("contracts") or 0)
    if p["side"] == "short":
        return contracts * 100 * float(p.get("strike") or 0) if p["right"] == "put" else 0.0
    return contracts * 100 * float(p.get("mark") or p.get("entry_debit") or 0)


def timeline(decisions: Iterable[DecisionBody]) -> Timeline:
    builder = _Builder()
    for d in decisions:
        builder.add(d)
    return builder.done()
