"""Hypothesis strategies: random valid facts overlays and random valid extra rules.

The facts overlays apply to ``tests/scenarios/base.yaml`` (``facts_with``). The rules are
drawn from the rule vocabulary itself (``constitution.vocabulary``): comparisons of every kind
of field with constants and with fields of more general entities, boolean flags, ``in``
lists, ``and``/``or``/``not``, ``set`` effects that feed later strata, actions that read
fields. They are appended to the bundled constitution's text; a combination the validator
refuses (a derivation cycle, an unbound target) is discarded by the caller.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from constitution import vocabulary as V

SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "SPY"]
TIMES = [
    "2026-11-16T10:00:00-05:00",  # Monday, Com's entry window
    "2026-11-18T10:00:00-05:00",  # Wednesday, Rev's
    "2026-11-19T09:50:00-05:00",  # Thursday, Gen's
    "2026-11-20T14:45:00-05:00",  # Friday management
    "2026-11-20T15:30:00-05:00",  # Friday after the assignment check
    "2026-09-25T16:30:00-04:00",  # quarter-end Friday, weekly report
    "2026-11-27T12:50:00-05:00",  # the day after Thanksgiving: an early close
    "2026-11-17T09:45:00-05:00",  # a Tuesday at a window's edge
]
ROUNDED = st.floats(0, 1).map(lambda x: round(x, 2))


EXPIRIES = ["2026-09-25", "2026-11-20", "2026-11-27", "2026-12-18", "2027-06-18"]


@st.composite
def positions(draw, today: str = "2026-09-25"):
    sym = draw(st.sampled_from(SYMBOLS))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return {
            "symbol": sym,
            "right": "stock",
            "side": "long",
            "shares": draw(st.integers(1, 2000)),
            "cost_basis": draw(st.sampled_from([50, 100, 400])),
        }
    right = draw(st.sampled_from(["put", "call"]))
    long = kind == 1 or kind == 2
    purpose = "hedge" if kind == 1 else ("leap" if kind == 2 else "income")
    p = {
        "symbol": sym,
        "right": right,
        "side": "long" if long else "short",
        "purpose": purpose,
        "strike": draw(st.floats(50, 700).map(lambda x: round(x, 1))),
        "expiry": draw(st.sampled_from([e for e in EXPIRIES if e >= today])),
        "contracts": draw(st.integers(1, 60)),
    }
    if draw(st.booleans()):
        p["mark"] = draw(st.floats(0, 30).map(lambda x: round(x, 2)))
    if draw(st.booleans()):
        p["delta"] = draw(st.floats(-1, 1).map(lambda x: round(x, 2)))
    p["entry_debit" if long else "entry_credit"] = draw(
        st.floats(0.1, 10).map(lambda x: round(x, 2))
    )
    if not long and draw(st.booleans()):
        p["roll_debit"] = draw(st.floats(-1, 5).map(lambda x: round(x, 2)))
    return p


def _identity(p: dict) -> tuple:
    return (p["symbol"], p["right"], p["side"], p.get("strike"), p.get("expiry"))


@st.composite
def accounts(draw, today: str = "2026-09-25"):
    out = []
    for acct, kind in (("GEN", "gen"), ("REV", "rev"), ("COM", "com"), ("MINI-1", "mini")):
        equity = draw(st.floats(50_000, 1_200_000).map(round))
        unique = {_identity(p): p for p in draw(st.lists(positions(today), max_size=5))}
        out.append(
            {
                "id": acct,
                "kind": kind,
                "equity": equity,
                "base_equity": draw(
                    st.sampled_from([equity, round(equity * 0.8), max(equity - 100_000, 1000)])
                ),
                "high_water_mark": equity * draw(st.sampled_from([1, 1.05, 1.2, 1.25])),
                "cash": draw(st.sampled_from([0, 20_000, equity])),
                "forks": draw(st.integers(0, 3)),
                "opened": draw(st.sampled_from(["2020-01-02", "2023-11-10", "2026-01-02"])),
                "quarter_gains": draw(st.sampled_from([0, 15000, -5000])),
                "positions": list(unique.values()),
            }
        )
    return out


@st.composite
def underlying(draw):
    u = {
        "price": draw(st.floats(50, 700).map(lambda x: round(x, 1))),
        "atr5": draw(st.floats(1, 20).map(lambda x: round(x, 1))),
        "earnings_this_week": draw(st.booleans()),
        "chain_available": draw(st.integers(0, 5)) > 0,
        "quote_ok": draw(st.integers(0, 5)) > 0,
    }
    if draw(st.booleans()):
        u["option_open_interest"] = draw(st.sampled_from([0, 499, 500, 5000]))
        u["option_volume"] = draw(st.sampled_from([99, 100, 1000]))
        u["option_spread_pct"] = draw(st.sampled_from([0.01, 0.05, 0.0501]))
    return u


@st.composite
def overlays(draw):
    as_of = draw(st.sampled_from(TIMES))
    return {
        "as_of": as_of,
        "market": {
            "vix": draw(st.sampled_from([15, 19.9, 20, 29, 30, 35, 50, 52, 65, 70, 80, 81])),
            "vix_closes_above_30": draw(st.integers(0, 7)),
            "spx_drawdown": draw(st.sampled_from([0.0, 0.1, 0.2, 0.35])),
            "breadth_above_50dma": draw(st.sampled_from([0.1, 0.2, 0.55])),
            "early_close": False,
            "broker_connected": draw(st.integers(0, 6)) > 0,
            "data_age_seconds": draw(st.sampled_from([1, 30, 31])),
            "underlyings": {s: draw(underlying()) for s in SYMBOLS},
        },
        "accounts": draw(accounts(as_of[:10])),
    }


# --- random rules ------------------------------------------------------------------------------

ORDER = ("market", "clock", "account", "underlying", "position")
RULE_ENTITIES = [
    ("market",),
    ("clock", "market"),
    ("account",),
    ("market", "account"),
    ("account", "underlying"),
    ("position",),
    ("account", "position"),
    ("underlying", "position"),
    ("market", "account", "underlying", "position"),
]
NUMBERS = st.sampled_from([-1, 0, 0.5, 1, 1.5, 2, 3, 20, 30, 50, 100, 500, 600, 900, 100_000])
CMP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _fields(entity: str) -> list[V.Field]:
    return [f for f in V.FIELDS if f.entity == entity]


def _earlier_numbers(entity: str) -> list[V.Field]:
    # the compiler joins a field with fields of more general entities (market/clock first)
    general = ORDER[: ORDER.index(entity)] if entity not in ("market", "clock") else ()
    return [f for e in general for f in _fields(e) if f.is_numeric]


@st.composite
def comparison(draw, entities: tuple[str, ...]) -> str:
    f = draw(st.sampled_from([f for e in entities for f in _fields(e)]))
    if f.kind is V.Kind.BOOLEAN:
        return f.dotted if draw(st.booleans()) else f"not {f.dotted}"
    if f.kind is V.Kind.ENUM:
        values = draw(st.lists(st.sampled_from(f.values), min_size=1, max_size=3, unique=True))
        if len(values) == 1:
            return f"{f.dotted} {draw(st.sampled_from(['==', '!=']))} '{values[0]}'"
        listed = ", ".join(f"'{v}'" for v in values)
        return f"{f.dotted} {draw(st.sampled_from(['in', 'not in']))} [{listed}]"
    if f.kind is V.Kind.STRING:
        names = (
            ["GEN", "REV", "MINI-1"] if f.entity == "account" or f.name == "account" else SYMBOLS
        )
        if f.name == "key":
            return f"{f.dotted} != 'none'"
        return f"{f.dotted} in ['{draw(st.sampled_from(names))}', '{draw(st.sampled_from(names))}']"
    others = [o for o in _earlier_numbers(f.entity) if o.entity in (*entities, "market", "clock")]
    right = str(draw(NUMBERS))
    if others and draw(st.booleans()):
        other = draw(st.sampled_from(others))
        right = draw(
            st.sampled_from([other.dotted, f"{other.dotted} * {right}", f"{other.dotted} + 1"])
        )
    return f"{f.dotted} {draw(CMP)} {right}"


@st.composite
def condition(draw, entities: tuple[str, ...]) -> str:
    parts = draw(st.lists(comparison(entities), min_size=1, max_size=3))
    text = parts[0]
    for part in parts[1:]:
        text = f"({text}) {draw(st.sampled_from(['and', 'or']))} {part}"
    return f"not ({text})" if draw(st.integers(0, 4)) == 0 else text


def _effects_for(entities: tuple[str, ...]) -> list[list[dict]]:
    always = [{"action": "alert", "with": {"severity": "'info'", "message": "'random'"}}]
    out = [always, [{"set": {"market.data_stale": True}}, *always]]
    if "account" in entities or "position" in entities:
        out += [
            [{"set": {"account.entries_frozen": True}}],
            [
                {"set": {"account.mode": "'hedged'"}},
                {"action": "suspend_csp", "with": {"why": "'r'"}},
            ],
            [{"action": "fork_account", "with": {"amount": "account.cash", "creates": "'mini'"}}],
        ]
    if "position" in entities:
        out += [
            [{"set": {"position.level": "position.contracts"}}],
            [
                {"set": {"position.exit": True}},
                {"action": "close_position", "with": {"why": "'r'"}},
            ],
            [{"action": "prepare_assignment", "with": {"probability": "position.delta"}}],
            [{"set": {"account.level": 2}}],
        ]
    return out


@st.composite
def extra_rules(draw, max_rules: int = 4) -> str:
    """YAML text of 1..max_rules rules, to append to the constitution's ``rules:`` list."""
    out = []
    for i in range(draw(st.integers(1, max_rules))):
        entities = draw(st.sampled_from(RULE_ENTITIES))
        rule = {
            "id": f"random.r{i}",
            "clause": "§0",
            "salience": draw(st.integers(0, 120)),
            "description": f"random rule {i}",
            "when": draw(condition(entities)),
            "then": draw(st.sampled_from(_effects_for(entities))),
        }
        out.append("  - " + json.dumps(rule))
    return "\n" + "\n".join(out) + "\n"


def with_rules(text: str, extra: str) -> str:
    """``text`` (a constitution) with ``extra`` (rule items, two-space indented) appended to
    its ``rules:`` list, wherever that list is in the file."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("rules:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1].isalpha()), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:end]) + extra.strip("\n") + "\n" + "".join(lines[end:])
