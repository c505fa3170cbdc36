"""The vocabulary of the rules language: every fact field a rule may read or derive.

This table is the contract between the constitution's ``rules:`` and the engine. The validator
checks rules against it (unknown field, wrong type); the engine's facts models are checked
against it by a test; ``docs/facts.md`` is generated from it.

Three origins of a field:

* ``input``    - given by the facts document (``alluse evaluate --facts``).
* ``computed`` - calculated by the engine from input fields before rules run (documented
  formula), so rules stay simple comparisons.
* ``derived``  - set by rules (``then: - set: {position.level: 2}``). Every derived field has a
  bottom value and merges by maximum over its ordered values, so the result does not depend on
  the order rules fire in (a monotone fixpoint; see docs/rules.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"


class Origin(StrEnum):
    INPUT = "input"
    COMPUTED = "computed"
    DERIVED = "derived"


@dataclass(frozen=True)
class Field:
    entity: str
    name: str
    kind: Kind
    origin: Origin
    description: str
    values: tuple[str, ...] = ()  # ENUM: allowed values, in increasing order for derived merges
    optional: bool = False  # may be absent; a comparison on a missing value is false

    @property
    def dotted(self) -> str:
        return f"{self.entity}.{self.name}"

    @property
    def is_numeric(self) -> bool:
        return self.kind in (Kind.NUMBER, Kind.INTEGER)


# Entities, from the most general to the most specific. A rule's scope is the most specific
# entity it mentions; joins between entities follow the keys below (implicit, never written).
ENTITIES: tuple[str, ...] = ("market", "clock", "account", "underlying", "position")

# How a more specific entity is joined to a more general one: (entity, other) -> key relation.
JOIN_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("position", "account"): ("account", "account"),
    ("position", "underlying"): ("symbol", "symbol"),
}

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACCOUNT_KINDS = ("gen", "rev", "com", "mini")
MODES = ("active", "hedged", "safe", "kill")  # ordered by severity: a derived mode merges by max
RIGHTS = ("put", "call", "stock")
SIDES = ("short", "long")
PURPOSES = ("income", "hedge", "leap")

N, INT, B, S, E = Kind.NUMBER, Kind.INTEGER, Kind.BOOLEAN, Kind.STRING, Kind.ENUM
IN, CO, DE = Origin.INPUT, Origin.COMPUTED, Origin.DERIVED


def _f(
    entity: str,
    name: str,
    kind: Kind,
    origin: Origin,
    description: str,
    values: tuple[str, ...] = (),
    optional: bool = False,
) -> Field:
    return Field(entity, name, kind, origin, description, tuple(values), optional)


FIELDS: tuple[Field, ...] = (
    # market -----------------------------------------------------------------------------
    _f("market", "vix", N, IN, "Cboe VIX index level."),
    _f(
        "market",
        "vix_closes_above_30",
        INT,
        IN,
        "Consecutive daily VIX closes above hedging.triggers.vix_above (30 in v1.3, whence the"
        " name); the market adapters count them at that level (D161).",
    ),
    _f(
        "market",
        "hedge_trigger_off_closes",
        INT,
        IN,
        "Consecutive daily closes, the last included, with no §5 strategic trigger on (D16).",
        optional=True,
    ),
    _f("market", "spx_drawdown", N, IN, "S&P 500 fraction below its 52-week high (0.2 = 20 %)."),
    _f(
        "market", "breadth_above_50dma", N, IN, "Fraction of S&P 500 members above their 50-day MA."
    ),
    _f("market", "early_close", B, IN, "Today is an NYSE early-close session."),
    _f("market", "broker_connected", B, IN, "The broker API answers."),
    _f("market", "data_age_seconds", N, IN, "Age of the oldest quote the decision uses, seconds."),
    _f("market", "mode", E, DE, "System mode from VIX tiers and data failures.", MODES),
    _f("market", "data_stale", B, DE, "Market data is too old to open new risk."),
    _f("market", "hedge_trigger", B, DE, "A strategic hedge trigger is on (§5)."),
    # clock (computed from as_of in America/New_York) ------------------------------------
    _f("clock", "weekday", E, CO, "Day of week of as_of in New York.", WEEKDAYS),
    _f(
        "clock",
        "session",
        B,
        CO,
        "as_of's New York date is an NYSE session (not a weekend or holiday).",
    ),
    _f(
        "clock",
        "last_session_of_week",
        B,
        CO,
        "as_of is the week's last session: Friday, or Thursday when Friday is a holiday (§1).",
    ),
    _f(
        "clock",
        "expiry_session",
        B,
        CO,
        "The week's Friday options expire today: Friday, or the session before a Friday holiday (§7).",
    ),
    _f("clock", "minutes_et", INT, CO, "Minutes since midnight, New York time (09:45 = 585)."),
    _f(
        "clock",
        "schedule_minutes",
        INT,
        CO,
        "minutes_et shifted onto the normal-day timetable: on early-close days the "
        "close-anchored events (Friday management, assignment check, weekly report) come "
        "cadence.early_close_shift_minutes earlier, so this adds that shift, and it never "
        "reads less than the regular time of a close-anchored event already fired that day "
        "(D24: the 15:00 check, shifted onto the 13:00 close, fires at 12:45 and from then "
        "this reads 900). A normal day: minutes_et.",
    ),
    _f("clock", "quarter_end_week", B, CO, "as_of falls in the last 7 days of Mar/Jun/Sep/Dec."),
    _f(
        "clock",
        "quarter_last_session",
        B,
        CO,
        "as_of is the NYSE calendar's last session of its quarter (a Thursday when Good Friday"
        " ends the quarter, Dec 31 when Christmas falls on its Friday).",
    ),
    # account ----------------------------------------------------------------------------
    _f("account", "id", S, IN, "Account (sleeve) identifier, e.g. GEN, REV, COM, MINI-1."),
    _f("account", "kind", E, IN, "Sleeve kind.", ACCOUNT_KINDS),
    _f("account", "equity", N, IN, "Net liquidation value of the sleeve."),
    _f("account", "base_equity", N, IN, "Capital at start or after the last fork."),
    _f("account", "high_water_mark", N, IN, "Highest equity reached."),
    _f("account", "cash", N, IN, "Cash balance."),
    _f("account", "forks", INT, IN, "Forks made so far from this sleeve."),
    _f(
        "account",
        "quarter_gains",
        N,
        IN,
        "Realised P&L this quarter (closed lots, expired and assigned premium; marks are"
        " unrealised and not in it), 0 once the quarter's reinvestment is done.",
    ),
    _f(
        "account",
        "fork_deferred",
        B,
        IN,
        "A fork of this account is recorded as deferred until its clip is free (D64).",
    ),
    _f(
        "account",
        "pivot_latched",
        B,
        IN,
        "A drawdown pivot of this account is recorded and holds until recovery (§0/§2, D7).",
    ),
    _f("account", "drawdown", N, CO, "1 - equity / high_water_mark (0 at the high)."),
    _f("account", "gain_over_base", N, CO, "equity - base_equity."),
    _f("account", "growth_multiple", N, CO, "equity / base_equity."),
    _f("account", "age_years", N, CO, "Years since the account opened (365.25-day years)."),
    _f("account", "hedged", B, CO, "The account holds at least one hedge position."),
    _f("account", "holds_shares", B, CO, "The account holds stock (e.g. after an assignment)."),
    _f("account", "level", INT, DE, "Protocol level of the account: highest of its positions."),
    _f("account", "mode", E, DE, "Mode of the account (market mode, or SAFE after an L3).", MODES),
    _f("account", "csp_suspended", B, DE, "New cash-secured puts are suspended (CC-only)."),
    _f("account", "entries_frozen", B, DE, "No new entries (a position at L2 or above)."),
    _f("account", "csp_window", B, DE, "Now is the account's window for new cash-secured puts."),
    _f("account", "cc_window", B, DE, "Now is the account's window for new covered calls."),
    # underlying -------------------------------------------------------------------------
    _f("underlying", "symbol", S, IN, "Ticker."),
    _f("underlying", "price", N, IN, "Last price."),
    _f("underlying", "atr5", N, IN, "ATR(5), Wilder, refreshed 09:30 ET."),
    _f("underlying", "earnings_this_week", B, IN, "The company reports earnings this week."),
    _f("underlying", "chain_available", B, IN, "An option chain could be read."),
    _f("underlying", "quote_ok", B, IN, "The quote passed data-quality checks."),
    _f(
        "underlying",
        "option_open_interest",
        N,
        IN,
        "Open interest of the candidate contract.",
        optional=True,
    ),
    _f(
        "underlying",
        "option_volume",
        N,
        IN,
        "Daily volume of the candidate contract.",
        optional=True,
    ),
    _f(
        "underlying",
        "option_spread_pct",
        N,
        IN,
        "Bid-ask spread / mid of the candidate contract.",
        optional=True,
    ),
    _f("underlying", "liquidity_known", B, CO, "All three option_* liquidity fields are present."),
    # position ---------------------------------------------------------------------------
    _f("position", "key", S, CO, "Stable key: ACCOUNT/SYMBOL/RIGHT/STRIKE/EXPIRY."),
    _f("position", "account", S, IN, "Owning account id."),
    _f("position", "symbol", S, IN, "Underlying ticker."),
    _f("position", "right", E, IN, "put, call or stock.", RIGHTS),
    _f("position", "side", E, IN, "short or long.", SIDES),
    _f("position", "purpose", E, IN, "income (the wheel), hedge, or leap (LLMS ladder).", PURPOSES),
    _f("position", "strike", N, IN, "Option strike (0 for stock).", optional=True),
    _f("position", "contracts", INT, IN, "Option contracts (0 for stock).", optional=True),
    _f("position", "shares", INT, IN, "Shares held (stock only).", optional=True),
    _f(
        "position",
        "entry_credit",
        N,
        IN,
        "Premium received per share at entry (short options).",
        optional=True,
    ),
    _f(
        "position",
        "entry_debit",
        N,
        IN,
        "Premium paid per share at entry (long options).",
        optional=True,
    ),
    _f("position", "mark", N, IN, "Current option mark per share.", optional=True),
    _f("position", "delta", N, IN, "Option delta (signed, per share).", optional=True),
    _f("position", "cost_basis", N, IN, "Stock cost per share.", optional=True),
    _f(
        "position",
        "roll_debit",
        N,
        IN,
        "Net debit per share of the best roll candidate.",
        optional=True,
    ),
    _f("position", "is_option", B, CO, "right is put or call."),
    _f(
        "position",
        "dte",
        INT,
        CO,
        "Calendar days from as_of (New York date) to expiry.",
        optional=True,
    ),
    _f(
        "position",
        "months_left",
        N,
        CO,
        "Months to expiry: dte / 30.4375 (an average month; §17 'TTE <= 3M', D65).",
        optional=True,
    ),
    _f(
        "position",
        "breach_atr",
        N,
        CO,
        "Breach in ATR(5) multiples; short put: (strike - price) / atr5, short call: "
        "(price - strike) / atr5. Negative while out of the money.",
        optional=True,
    ),
    _f(
        "position",
        "otm_atr",
        N,
        CO,
        "Distance out of the money in ATR(5) (= -breach_atr).",
        optional=True,
    ),
    _f("position", "decay", N, CO, "Premium captured: 1 - mark / entry_credit.", optional=True),
    _f("position", "abs_delta", N, CO, "Absolute delta.", optional=True),
    _f("position", "roll_cost_ratio", N, CO, "roll_debit / entry_credit.", optional=True),
    _f("position", "roll_cost_known", B, CO, "roll_debit and entry_credit are both present."),
    _f(
        "position", "profit_multiple", N, CO, "Long options: mark / entry_debit - 1.", optional=True
    ),
    _f(
        "position",
        "uncovered_contracts",
        INT,
        CO,
        "Stock: whole 100-share lots not yet covered by short calls.",
        optional=True,
    ),
    _f("position", "level", INT, DE, "Protocol level L0-L3 of the position."),
    _f("position", "exit", B, DE, "The position must be closed (L3 or an uneconomic roll)."),
)

BY_NAME: dict[str, Field] = {f.dotted: f for f in FIELDS}


def lookup(dotted: str) -> Field | None:
    return BY_NAME.get(dotted)


def derived_bottom(field: Field) -> object:
    """The value a derived field has when no rule sets it."""
    if field.kind is Kind.BOOLEAN:
        return False
    if field.kind is Kind.ENUM:
        return field.values[0]
    return 0


def derived_rank(field: Field, value: object) -> float:
    """Order used to merge derived values (the maximum wins)."""
    if field.kind is Kind.ENUM:
        return float(field.values.index(value))
    if field.kind is Kind.BOOLEAN:
        return 1.0 if value else 0.0
    if not isinstance(value, int | float):
        raise TypeError(f"{field.dotted} is a number, not {value!r}")
    return float(value)


# Physical field names in the facts sent to durable-rules. durable uses ``id`` as a fact's
# identity and never matches a join on it (engines.md P10), so ids travel as ``acct``/``sym``.
_PHYSICAL = {
    ("account", "id"): "acct",
    ("position", "account"): "acct",
    ("underlying", "symbol"): "sym",
    ("position", "symbol"): "sym",
}


def physical(f: Field) -> str:
    if (f.entity, f.name) in _PHYSICAL:
        return _PHYSICAL[(f.entity, f.name)]
    if f.entity == "clock":
        return f"clock_{f.name}"
    return f.name
