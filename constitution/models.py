"""The constitution as frozen, typed pydantic models.

Every field has a description: they become the JSON Schema (``constitution/schema.json``, for
editor completion) and the reference ``docs/constitution.md``. Unknown keys are errors.
Cross-field checks name the dotted path of the value at fault.
"""

from __future__ import annotations

import datetime as dt
from datetime import time
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SUPPORTED_SCHEMA_VERSIONS = (1,)
MARKET_OPEN = time(9, 30)
MARKET_CLOSE = time(16, 0)

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri"]
Ticker = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")]


def _d(text: str) -> Any:  # pydantic.Field is typed Any, so a default of any field type
    return Field(description=text)


def _doc(text: str, reason: str) -> Any:  # pydantic.Field is typed Any, as in _d
    """A key that documents and decides nothing: ``doc_only`` says why, in the schema and in
    docs/constitution.md (tests/constitution/test_key_coverage.py holds every other key to a
    probe that shows the behaviour it changes)."""
    return Field(description=text, json_schema_extra={"doc_only": reason})


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, populate_by_name=True
    )


class _Bounds(_Model):
    """A closed interval [min, max]; subclasses set the type of the bounds."""

    if TYPE_CHECKING:  # declared by each subclass with its own type
        min: float
        max: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Range(_Bounds):
    """A closed interval [min, max]."""

    min: float = _d("Lower bound (inclusive).")
    max: float = _d("Upper bound (inclusive).")


class DeltaBand(Range):
    """Absolute option delta band, strictly inside (0, 1)."""

    @model_validator(mode="after")
    def _inside(self) -> Self:
        if not (0 < self.min and self.max < 1):
            raise ValueError(f"delta band [{self.min}, {self.max}] must lie strictly inside (0, 1)")
        return self


class FractionRange(Range):
    min: Fraction = _d("Lower bound, a fraction (0.10 = 10 %).")
    max: Fraction = _d("Upper bound, a fraction.")


class DeploymentBand(FractionRange):
    min: Fraction = _doc(
        "Lower bound, a fraction (0.95).",
        "the floor of §0's band: entries are sized at deployment.max and nothing tops a"
        " sleeve up to the floor (D162)",
    )


class DaysRange(_Bounds):
    min: Annotated[int, Field(ge=0, le=3650)] = _d("Fewest days.")
    max: Annotated[int, Field(ge=0, le=3650)] = _d("Most days.")


class MonthsRange(_Bounds):
    min: Annotated[int, Field(ge=1, le=60)] = _d("Fewest months to expiry.")
    max: Annotated[int, Field(ge=1, le=60)] = _d("Most months to expiry.")


class Window(_Model):
    """A weekly window in New York time, inside regular market hours."""

    day: Weekday = _d("Day of the week.")
    start: time = _d("Opening time, HH:MM New York.")
    end: time = _d("Closing time, HH:MM New York.")

    @model_validator(mode="after")
    def _inside_market_hours(self) -> Self:
        if self.start >= self.end:
            raise ValueError(
                f"window starts at {self.start:%H:%M}, not before its end {self.end:%H:%M}"
            )
        if self.start < MARKET_OPEN or self.end > MARKET_CLOSE:
            raise ValueError(
                f"window {self.start:%H:%M}-{self.end:%H:%M} is outside market hours 09:30-16:00"
            )
        return self


class ChangelogEntry(_Model):
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = _d("Semantic version.")
    date: dt.date = _doc("Date of the change.", "history for readers; the version decides")
    summary: str = _doc("What changed and why.", "history for readers; the version decides")


class Meta(_Model):
    name: str = _doc("Name of the constitution.", "a title shown with the version in reports")
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = _d(
        "Semantic version. A released version is immutable (constitution/versions.lock)."
    )
    effective: dt.date = _doc(
        "Date from which this version governs trading.",
        "shown with the version; which version governs is the one adopted (alluse constitution"
        " adopt), from the moment it is adopted",
    )
    authority: str = _doc(
        "Where the text of this version comes from.", "provenance for readers, shown in reports"
    )
    changelog: tuple[ChangelogEntry, ...] = _d("Changes, newest last.")

    @model_validator(mode="after")
    def _changelog_names_this_version(self) -> Self:
        if not any(e.version == self.version for e in self.changelog):
            raise ValueError(f"changelog has no entry for version {self.version}")
        return self


class Split(_Model):
    gen: Fraction = _d("Share of capital in the Generator sleeve.")
    rev: Fraction = _d("Share of capital in the Revenue sleeve.")
    com: Fraction = _d("Share of capital in the Compounding sleeve.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.gen + self.rev + self.com
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"gen + rev + com must be 100 % (is {total * 100:g} %)")
        return self


class DrawdownPivot(_Model):
    drawdown: Fraction = _d("Sleeve drawdown from its high that triggers the pivot (0.15).")
    vix_below: Positive = _d(
        "§0: the pivot of Rev, Com and Mini triggers only while VIX is below this (30); §2's"
        " Gen-Acc pivot names no VIX condition (D7)."
    )
    recovery_within: Fraction = Field(
        default=0.05,
        json_schema_extra={"since": "1.3.1"},
        description=(
            "'CC-only until recovery': a pivot holds (a ledger latch) until the sleeve's equity"
            " is within this of its high, the pre-drawdown level (§2: within 5 %) (D7)."
        ),
    )


class Capital(_Model):
    """§0 Capital allocation and limits."""

    split: Split = _d("Base split Gen/Rev/Com (§0: 40/30/30).")
    deployment: DeploymentBand = _d("Fraction of a sleeve deployed (§0: 95-100 %).")
    per_symbol_max: Fraction = _d("Most of a sleeve's notional in one symbol (§0: 25 %).")
    margin_max: Fraction = _d("Highest margin utilisation (§0: 60 %).")
    max_subaccounts: Annotated[int, Field(ge=1, le=50)] = _d(
        "Most sub-accounts (forks) per user (8)."
    )
    drawdown_pivot: DrawdownPivot = _d(
        "Suspend CSPs (covered calls only) on this sleeve drawdown while VIX is low (§0)."
    )


class AfterAssignment(_Model):
    delta: DeltaBand = _d("Covered-call delta band on assigned shares (§7: 20-25Δ).")
    dte: Annotated[int, Field(ge=0, le=60)] = _d(
        "Covered-call days to expiry on assigned shares (5)."
    )
    recovery_within: Fraction = _d(
        "CC-only until equity is within this of its pre-drawdown high (0.05)."
    )


class ForkTerms(_Model):
    every: Positive = _d("Fork each time equity exceeds the base by this many dollars.")
    creates: Literal["mini", "full"] = _d(
        "mini: a Mini ALL-USE (50 % Gen-style / 50 % Com-style); full: a new 40/30/30 ALL-USE."
    )


class Sleeve(_Model):
    """One sleeve (§1-§4)."""

    instrument: Literal["csp", "covered_call"] = _d("What the sleeve sells.")
    delta: DeltaBand = _d("Absolute delta band of new short options.")
    dte: DaysRange = _d("Days to expiry of new short options.")
    stress_dte: DaysRange | None = _d("Days to expiry in stress-test mode only (Gen: 1-3).")
    entry: Window = _d("Weekly entry day and window (09:45-11:00 ET).")
    tickers: tuple[Ticker, ...] = _d("Underlyings the sleeve trades.")
    roll_trigger_atr: Positive | None = _d(
        "Breach, in ATR(5) multiples, at which a roll is prepared."
    )
    profit_take: Fraction | None = _d(
        "Close a short option once this much premium has decayed (Com: 0.65)."
    )
    earnings_cc_coverage_max: Fraction | None = _d(
        "Most of the shares covered by calls in an earnings week (Com: 0.50)."
    )
    after_assignment: AfterAssignment | None = _d("Covered calls on assigned shares (§7).")
    reinvest: Literal["none", "quarterly"] = _d(
        "Gen never reinvests; Rev and Com reinvest quarterly (§10)."
    )
    fork: ForkTerms | None = _d("Fork threshold (§2, §3). Com never forks.")

    @field_validator("tickers")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({t for t in v if v.count(t) > 1})
        if dup:
            raise ValueError(f"ticker(s) listed twice: {', '.join(dup)}")
        if not v:
            raise ValueError("a sleeve needs at least one ticker")
        return v


class MergeTerms(_Model):
    after_years: Positive = _d("Merge a Mini into Com-Acc after this many years (3).")
    multiple: Positive = _d("... or once it reaches this multiple of its starting capital (3x).")


class MiniSleeve(_Model):
    """§2 Mini ALL-USE: a fork of Gen-Acc, run half Gen-style and half Com-style."""

    gen_style: Fraction = _d("Share run Gen-style (CSPs).")
    com_style: Fraction = _d("Share run Com-style (covered calls).")
    merge: MergeTerms = _d("When the Mini merges into Com-Acc.")
    reinvest: Literal["none"] = _d("A Mini does not reinvest.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        if abs(self.gen_style + self.com_style - 1.0) > 1e-9:
            raise ValueError("gen_style + com_style must be 100 %")
        return self


# What each sleeve is (§2-§4), as the rules and the planner implement it: a sleeve's
# instrument, and the terms it does not have. A value here that the code would not act on is
# refused rather than silently ignored (D160).
SLEEVE_INSTRUMENT = {"gen": "csp", "rev": "csp", "com": "covered_call"}
SLEEVE_HAS_NO = {
    "gen": ("profit_take", "earnings_cc_coverage_max"),
    "rev": ("stress_dte", "profit_take", "earnings_cc_coverage_max"),
    "com": ("stress_dte", "roll_trigger_atr", "after_assignment", "fork"),
}


class Sleeves(_Model):
    gen: Sleeve = _d("§2 Gen-Acc, the Generator.")
    rev: Sleeve = _d("§3 Rev-Acc, the Revenue engine.")
    com: Sleeve = _d("§4 Com-Acc, the Compounder.")
    mini: MiniSleeve = _d("§2 Mini ALL-USE accounts forked from Gen-Acc.")

    @model_validator(mode="after")
    def _as_the_rules_implement(self) -> Self:
        for name, instrument in SLEEVE_INSTRUMENT.items():
            sleeve = getattr(self, name)
            if sleeve.instrument != instrument:
                raise ValueError(
                    f"{name}.instrument must be {instrument}: the rules sell {instrument} in {name}"
                )
            for term in SLEEVE_HAS_NO[name]:
                if getattr(sleeve, term) is not None:
                    raise ValueError(
                        f"{name}.{term} must be null: no rule or order reads it for {name}"
                    )
        if self.rev.after_assignment != self.gen.after_assignment:
            raise ValueError(
                "rev.after_assignment must equal gen.after_assignment: §7 gives assigned shares"
                " one covered-call term, and the rules read Gen's"
            )
        return self


class Level(_Model):
    name: str = _doc("Name of the level.", "a label for reports; the rules name levels L0-L3")
    atr_multiple: Annotated[float, Field(ge=0, allow_inf_nan=False)] = _d(
        "Breach, in ATR(5) multiples, from which the level applies."
    )
    monitor_seconds: Annotated[int, Field(ge=0, le=3600)] = _d(
        "Monitoring interval; 0 means real time (as often as data arrives)."
    )
    does: str = _doc(
        "What the level does.", "prose; what a level does is the rules that read its atr_multiple"
    )


class Levels(_Model):
    L0: Level = _d("Normal: hold.")
    L1: Level = _d("Enhanced: pre-compute roll candidates, alert.")
    L2: Level = _d("Recovery: roll within the delta band, hedge, freeze entries.")
    L3: Level = _d("Preservation: stop-loss exit, SAFE mode.")

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        levels = [self.L0, self.L1, self.L2, self.L3]
        for low, high, name in zip(levels, levels[1:], ("L1", "L2", "L3"), strict=False):
            if high.atr_multiple <= low.atr_multiple:
                raise ValueError(
                    f"{name}.atr_multiple must be above the level below it ({high.atr_multiple} <= {low.atr_multiple})"
                )
        return self


class Roll(_Model):
    max_cost_of_credit: Fraction = _d(
        "A roll costing more than this share of the original credit becomes an L3 exit (0.50)."
    )
    dte_extension: DaysRange = _d("Days added by a roll (+3-4 DTE).")


class Atr(_Model):
    period: Annotated[int, Field(ge=1, le=50)] = _d("ATR period (5).")
    refresh: time = _d("Daily refresh time, New York (09:30).")
    stale_hours: Positive = _d(
        "Older than this, the last valid ATR is used with the multiplier below."
    )
    stale_multiplier: Annotated[float, Field(ge=1, allow_inf_nan=False)] = _d(
        "Buffer on a stale ATR (1.1)."
    )
    fallback_pct_of_price: Fraction = _d(
        "With no ATR at all, use this fraction of the price (0.02)."
    )


class CoveredCallProtocol(_Model):
    """§6 The covered-call protocol: its own steps, no stop-loss (being called away is the
    intended outcome; the shares are re-entered with puts next cycle)."""

    early_assignment_above: Fraction = _d(
        "Early-assignment risk (|delta| as the chance of finishing in the money) above which a"
        " covered call is closed once it has made close_at_profit (0.80)."
    )
    close_at_profit: Fraction = _d(
        "Premium decay (1 - mark / credit) at which a covered call at high early-assignment"
        " risk is closed (0.30)."
    )


class Protocol(_Model):
    """§6 ATR protocol levels."""

    levels: Levels = _d("L0-L3.")
    roll: Roll = _d("Roll economics.")
    atr: Atr = _d("ATR specification (§8).")
    l3_release: Literal["next_session", "operator"] = Field(
        default="next_session",
        json_schema_extra={"since": "1.3.1"},
        description=(
            "How an account's L3 'SAFE mode until reset' ends (D60): next_session - by itself on"
            " a later session once the stop-loss exit is done and no position is at L2 or above;"
            " operator - only by `alluse account resume`. Only the breached account is held."
        ),
    )
    covered_call: CoveredCallProtocol = Field(
        default=CoveredCallProtocol(early_assignment_above=0.80, close_at_profit=0.30),
        json_schema_extra={"since": "1.3.1"},
        description=(
            "§6 covered-call protocol (the ATR levels and their stop-loss are the put protocol):"
            " L0 hold to the profit take or expiry, L1 early-assignment risk above 80 % -> close"
            " at 30 % profit, called away -> puts next cycle (D130)."
        ),
    )


class Vix(_Model):
    """§6 VIX tiers. All thresholds are strict: 'VIX > 80'."""

    hedged_week: Positive = _d(
        "Above this: Hedged Week, deployment halved, only defensive rolls (50)."
    )
    safe: Positive = _d("Above this: SAFE mode, no new entries (65).")
    kill_switch: Positive = _d("Above this: kill switch, full halt (80).")
    hedged_week_deployment: Fraction = _d("Deployment factor in a Hedged Week (0.5).")

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        if not (self.hedged_week < self.safe < self.kill_switch):
            raise ValueError(
                f"tiers must increase: hedged_week {self.hedged_week} < safe {self.safe} < kill_switch {self.kill_switch}"
            )
        return self


class HedgeTriggers(_Model):
    vix_above: Positive = _d("VIX level ... (30)")
    vix_days: Annotated[int, Field(ge=1, le=60)] = _d(
        "... closed above for this many consecutive days (5)."
    )
    spx_drawdown: Fraction = _d("Or S&P 500 drawdown from its high at least this (0.20).")
    breadth_below: Fraction = _d(
        "Or fewer than this fraction of S&P 500 members above their 50-day MA (0.20)."
    )


class HedgeBudget(_Model):
    quarterly_gains_pct: FractionRange = _d("Budget as a share of quarterly net gains (5-10 %) ...")
    sleeve_equity_pct: Fraction = _d(
        "... or this share of sleeve equity, whichever is greater (1 %)."
    )


class TacticalHedge(_Model):
    spx_puts_pct: Fraction = _d("SPX puts, share of sleeve equity, on an L2 breach (1 %).")
    vix_calls_pct: Fraction = _d("VIX calls, share of sleeve equity (0.5 %).")
    cap_quarterly_gains_pct: Fraction = _d("Cap: share of quarterly gains (5 %).")
    floor_sleeve_pct: Fraction = _d("Floor: share of sleeve equity (1 %).")


class SpxPuts(_Model):
    months: MonthsRange = _d("Expiry, months (6-12).")
    otm: FractionRange = _d("Out of the money (10-20 %).")


class VixCalls(_Model):
    months: Annotated[int, Field(ge=1, le=24)] = _d("Expiry, months (6).")
    strike_over_vix: Positive = _d("Strike = VIX + this (5).")


class HedgeInstruments(_Model):
    spx_puts: SpxPuts = _d("SPX index puts.")
    vix_calls: VixCalls = _d("VIX calls.")


class HedgeRelease(_Model):
    profit_multiple: Positive = _d("Release a hedge at this profit (2.0 = +200 %) ...")
    vix_below: Positive = _d("... or close hedge puts early once VIX is below this (20).")
    reverted_closes: Annotated[int, Field(ge=1, le=20)] = Field(
        default=5,
        json_schema_extra={"since": "1.3.1"},
        description=(
            "... or once the triggers have reverted: no strategic trigger on for this many"
            " consecutive daily closes (D16; 5, as long as 'VIX > 30 for 5 days' takes to"
            " fire). At most 20, the depth of the facts' trigger history."
        ),
    )


class Hedging(_Model):
    """§5 Hedging."""

    triggers: HedgeTriggers = _d("Strategic triggers (any one).")
    budget: HedgeBudget = _d("Hedge budget.")
    tactical_l2: TacticalHedge = _d("Hedge added on an L2 breach (§6).")
    instruments: HedgeInstruments = _d("Instruments.")
    release: HedgeRelease = _d("When hedges are released.")


class GrowthCalls(_Model):
    delta: DeltaBand = _d("Growth LEAP calls delta (0.25-0.35).")
    months: MonthsRange = _d("Expiry, months (12-18).")


class HedgePuts(_Model):
    otm: FractionRange = _d("Hedge LEAP puts, out of the money (10-20 %).")
    months: MonthsRange = _d("Expiry, months (6-12).")


class LeapRoll(_Model):
    months_left: Annotated[int, Field(ge=0, le=24)] = _d(
        "Roll when this many months or fewer remain (3)."
    )
    delta: DeltaBand = _d("... or when delta leaves this band (0.2-0.5).")


class LeapSplit(_Model):
    hedge: Fraction = _d("Share of LEAP funds to hedge puts (25 %).")
    growth: Fraction = _d("Share to growth calls (75 %).")

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        if abs(self.hedge + self.growth - 1.0) > 1e-9:
            raise ValueError("hedge + growth must be 100 %")
        return self


class Llms(_Model):
    """§17 LEAP ladder (LLMS)."""

    funding_share: Fraction = _d(
        "Share of the Rev/Com quarterly reinvestment that funds LEAPs (25 %)."
    )
    growth_calls: GrowthCalls = _d("Growth LEAP calls.")
    hedge_puts: HedgePuts = _d("Hedge LEAP puts.")
    roll: LeapRoll = _d("When a rung is rolled.")
    split: LeapSplit = _d("Hedge/growth split of LEAP funds.")
    stagger: bool = _d("Stagger expiries to avoid concentration.")
    human_approval: bool = _d("AI suggestions on strikes and expiries need a human's approval.")


class Tax(_Model):
    """§10 The tax ledger's classification (seed 001 tax workstream: FIFO, short/long term,
    wash sales considered)."""

    long_term_after_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=365, description="A lot held longer than this many days is long term (365)."
    )
    wash_sale_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=30,
        description="A loss on shares with shares of the same symbol acquired this many days before or after is flagged as a wash sale (30).",
    )


class Reinvestment(_Model):
    """§10 Quarterly reinvestment (Rev and Com)."""

    cadence: Literal["quarterly"] = _d("When.")
    sleeves: tuple[Literal["rev", "com"], ...] = _d("Sleeves that reinvest.")
    tax_reserve: Fraction = _d("Share of gains to the tax reserve (30 %).")
    contracts: Fraction = _d("Of the rest: share to contracts (75 %).")
    leaps: Fraction = _d("Of the rest: share to LEAPs via LLMS (25 %).")

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        if abs(self.contracts + self.leaps - 1.0) > 1e-9:
            raise ValueError("contracts + leaps must be 100 %")
        return self


class Liquidity(_Model):
    """§8 Liquidity filters."""

    min_open_interest: Annotated[int, Field(ge=0)] = _d("Least open interest (500).")
    min_volume: Annotated[int, Field(ge=0)] = _d("Least daily volume (100).")
    max_spread_pct_of_mid: Fraction = _d("Widest bid-ask spread as a share of mid (5 %).")
    max_pct_of_adv: Fraction = _d(
        "Reject an order above this share of average daily volume (10 %)."
    )


class Orders(_Model):
    """§0 Order handling."""

    slice_above: Annotated[int, Field(ge=1)] = _d("Slice orders above this many contracts (50).")
    limit: Literal["mid"] = _d("Limit price reference.")
    max_worse_pct: Fraction = _d("Accept at most this much worse than mid (5 %).")
    cancel_replace_seconds: Positive = _d(
        "Cancel-replace an unfilled order after this many seconds (3)."
    )
    retry_smaller: bool = _d("After the worst acceptable price, cancel and retry smaller.")


class Report(_Model):
    day: Weekday = _d("Day of the weekly report.")
    at: time = _d("Time of the weekly report, New York (16:30).")


class Cadence(_Model):
    """§1 When things happen (America/New_York)."""

    timezone: Literal["America/New_York"] = _d("All times are New York time.")
    friday_management: Window = _d("Manage or close positions to avoid pin risk (14:30-15:45).")
    pin_risk_atr: Annotated[float, Field(ge=0, allow_inf_nan=False)] = _d(
        "In the Friday window, close short options expiring today that are within this many ATR(5) of the strike, either side (deeper in the money is §7's assignment, D13)."
    )
    assignment_check: Report = _d("When likely assignments are prepared (Friday 15:00).")
    weekly_report: Report = _d("Weekly report (Friday 16:30).")
    early_close_shift_minutes: Annotated[int, Field(ge=0, le=390)] = _d(
        "On early-close days, close-anchored events come this much earlier (120)."
    )

    @model_validator(mode="after")
    def _report_on_the_weeks_last_session(self) -> Self:
        if self.weekly_report.day != "fri":
            raise ValueError(
                "weekly_report.day must be fri: the report is cut on the week's last session,"
                " Friday or the Thursday before a Friday holiday (§1, §11)"
            )
        # the rules act on the session's role, not a weekday name (D151): another day here
        # would move the scheduler's jobs but not the rules
        for name in ("friday_management", "assignment_check"):
            if getattr(self, name).day != "fri":
                raise ValueError(
                    f"{name}.day must be fri: it runs on the week's last session (its expiry"
                    " session), Friday or the Thursday before a Friday holiday (§1, §7, D151)"
                )
        return self


class DataFailures(_Model):
    """§8 Data-failure handling."""

    quote_stale_seconds: Positive = _d("A quote older than this is stale (30 s).")
    on_stale: Literal["last_valid_plus_buffer"] = _d(
        "Stale data: use the last valid value plus a buffer; no new entries."
    )
    missing_chain: Literal["skip"] = _d("Missing option chain: skip that underlying.")
    broker_down: Literal["safe"] = _d("Broker API down: SAFE mode.")


class Assignment(_Model):
    """§7 Assignment."""

    itm_probability: Fraction = _d(
        "Prepare for assignment above this probability in the money (|delta| proxy, > 0.95, D12)."
    )


class WeekType(_Model):
    name: Literal[
        "Calm-Income", "Roll", "Assignment", "Preservation", "Hedged", "Earnings-Filter"
    ] = _d("Label.")
    trigger: str = _doc(
        "What makes a week this type.",
        "prose; the events that label a week are scheduler.weekly.EVENT_LABEL",
    )
    precedence: Annotated[int, Field(ge=1, le=6)] = _d(
        "When several apply, the lowest precedence number wins."
    )


# Action kinds that add risk or move capital: the only ones a person may be asked to approve.
# Risk-reducing actions (exits, rolls, hedges, releases, mode changes) never wait for anyone.
APPROVABLE_KINDS = (
    "fork_account",
    "merge_account",
    "open_short_put",
    "open_covered_call",
    "reinvest",
)


class Approvals(_Model):
    """§13-§15 (and §17): what the system does only after a person said yes (D110)."""

    actions: tuple[str, ...] = _d(
        "Action kinds carried out only after a person approves them (fork_account, "
        "merge_account: §2/§3 forks and merges move capital between accounts). LEAP purchases "
        "follow llms.human_approval (§17); risk-reducing actions never wait."
    )
    live_order_notional_above: Positive | None = _d(
        "A live order adding risk whose notional (strike or price x quantity x multiplier) is "
        "above this many dollars waits for a person; null: no such limit."
    )
    wait_minutes: Annotated[int, Field(ge=1, le=10080)] = _d(
        "How long a request may wait for an answer, in minutes."
    )
    on_expiry: Literal["decline", "approve"] = _d(
        "What a request nobody answered in time becomes (decline: it is not carried out)."
    )

    @field_validator("actions")
    @classmethod
    def _approvable(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "buy_leap" in v:
            raise ValueError("buy_leap follows llms.human_approval; do not list it here")
        wrong = [k for k in v if k not in APPROVABLE_KINDS]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} cannot wait for a person (approvable: {', '.join(APPROVABLE_KINDS)})"
            )
        if len(set(v)) != len(v):
            raise ValueError("an action kind is listed twice")
        return v


class ProposalGate(_Model):
    """§15: a change is backtested against the version in force before a person approves it.
    The thresholds of the version in force judge the proposal (D113)."""

    max_drawdown_worsening: Fraction = _d(
        "No account's max drawdown under the proposal may exceed its drawdown under the "
        "current version by more than this (0.02 = 2 percentage points)."
    )
    cagr_drop: Fraction = _d(
        "The proposal's CAGR may be at most this far below the current version's (0.02 = 2 points)."
    )
    kill_switch_days_added: Annotated[int, Field(ge=0, le=3650)] = _d(
        "The proposal may spend at most this many more days under the kill switch (0)."
    )


class Governance(_Model):
    """§13-§16 Governance."""

    immutable: bool = _doc(
        "A released version never changes; a change is a new version.",
        "constitution/versions.lock refuses a changed released version whatever this says",
    )
    change_process: tuple[str, ...] = _doc(
        "Steps a change goes through.",
        "prose; the steps are the alluse constitution propose/backtest/approve/adopt commands",
    )
    ai_may_trade: Literal[False] = _d(
        "AI explains, alerts and suggests; it never trades or overrides rules."
    )
    ai_role: tuple[Literal["explain", "alert", "suggest"], ...] = _doc(
        "What AI may do (§13-§14).",
        "no AI is part of the engine; explanations and alerts are the rules' own records",
    )
    acceptance: tuple[str, ...] = _doc(
        "Proof-of-concept acceptance criteria (§16).",
        "prose; each criterion is a scenario or test (docs/clauses.md)",
    )
    approvals: Approvals | None = Field(
        default=None,
        description="What waits for a person (§13-§15). Absent (versions before 1.3.1): "
        "nothing but LEAP purchases under llms.human_approval.",
        json_schema_extra={"since": "1.3.1"},
    )
    proposals: ProposalGate | None = Field(
        default=None,
        description="Thresholds a proposed new version must pass (§15). Absent: every "
        "proposal needs an override to be approved.",
        json_schema_extra={"since": "1.3.1"},
    )


class Operations(_Model):
    """§9 The operating state machine and the resume sequence."""

    cycle: tuple[str, ...] = _doc(
        "States of one trading cycle, in order (SAFE -> ... -> SAFE).",
        "prose; the state machine is engine/execution/states.py",
    )
    extra_states: tuple[str, ...] = _doc(
        "States outside the cycle (EMERGENCY, MAINTENANCE, AUDIT).",
        "prose; the state machine is engine/execution/states.py",
    )
    resume_sequence: tuple[str, ...] = _doc(
        "Steps from SAFE back to ACTIVE after a stop or crash.",
        "prose; the sequence is engine/execution/resume.py",
    )
    user_kill_switch: str = _doc(
        "What a user's per-account pause does (§0).",
        "prose; the pause is alluse account pause and the risk guard's PAUSE_HALTS",
    )


class Reporting(_Model):
    """§11 Reports and retention."""

    weekly: tuple[str, ...] = _doc(
        "Contents of the weekly report (Friday 16:30).",
        "prose; the report's contents are scheduler/weekly.py's",
    )
    monthly: tuple[str, ...] = _doc(
        "Contents of the monthly report.",
        "prose; the report's contents are scheduler/reports/periodic.py's",
    )
    quarterly: tuple[str, ...] = _doc(
        "Contents of the quarterly report.",
        "prose; the report's contents are scheduler/reports/periodic.py's",
    )
    retention_years: Annotated[int, Field(ge=1, le=100)] = _doc(
        "Years decision and ledger data are kept (7).",
        "the system deletes nothing; keeping the database and its backups this long is the"
        " operator's (docs/operations.md)",
    )


class PrecedenceClass(_Model):
    """One class of intents in the arbitration order: the rules whose actions belong to it."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = _d(
        "Name of the class (stop_loss, pin_risk, roll, ...), shown in the decision record."
    )
    clause: Annotated[str, Field(pattern=r"^§\d+")] = _doc(
        "The clause that gives this class its place, e.g. '§6'.",
        "for readers of the table; a decision records each action's own rule clause",
    )
    rules: tuple[RuleId, ...] = Field(
        min_length=1, description="Rule ids whose actions belong to this class."
    )


class Arbitration(_Model):
    """One intent per position per decision (docs/decisions.md D40)."""

    intents: tuple[Annotated[str, Field(pattern=r"^[a-z_]+$")], ...] = Field(
        min_length=1,
        description="Action kinds that act on a position (or, without one, on an account's "
        "symbol): of these, at most one survives per target in a decision; the others are "
        "kept in the record as superseded.",
    )
    precedence: tuple[PrecedenceClass, ...] = Field(
        min_length=1,
        description="Classes of rules, strongest first: the action of the first class listed "
        "wins. Within a class, and for rules no class lists (after every listed class), the "
        "lower salience wins, then the rule id.",
    )


class Effect(_Model):
    """One effect of a rule: derive a fact (``set``) or emit an action (``action``)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["set"]}, {"required": ["action"]}]}
    )

    set: dict[str, str | int | float | bool] | None = Field(
        default=None,
        description="Derived facts: {entity.field: expression}. Derived fields merge by maximum.",
    )
    action: str | None = Field(default=None, description="Action kind (docs/actions.md).")
    with_: dict[str, str | int | float | bool] | None = Field(
        default=None, alias="with", description="Action parameters: {name: expression}."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.set is None) == (self.action is None):
            raise ValueError("an effect is either 'set' or 'action'")
        if self.set is not None and self.with_ is not None:
            raise ValueError("'with' goes with 'action', not 'set'")
        return self


class Rule(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")] = _d(
        "Unique, dotted, lower case."
    )
    clause: Annotated[str, Field(pattern=r"^§\d+")] = _d(
        "The constitution clause it implements, e.g. '§6'."
    )
    salience: Annotated[int, Field(ge=0, le=1000)] = _d("Order of actions: lower first.")
    description: str = _doc(
        "What the rule does, in words.", "prose for readers; the rule is its when and then"
    )
    when: str = _d("Condition over facts and params (docs/rules.md).")
    then: tuple[Effect, ...] = Field(min_length=1, description="Effects when the condition holds.")


class Constitution(_Model):
    """ALL-USE Constitution."""

    schema_version: int = _d("Version of this file format (1).")
    meta: Meta = _d("Identity and history.")
    capital: Capital = _d("§0 Capital.")
    sleeves: Sleeves = _d("§1-§4 Sleeves.")
    protocol: Protocol = _d("§6 Protocol levels.")
    vix: Vix = _d("§6 VIX tiers.")
    hedging: Hedging = _d("§5 Hedging.")
    llms: Llms = _d("§17 LEAP ladder.")
    reinvestment: Reinvestment = _d("§10 Reinvestment.")
    tax: Tax = Field(
        default_factory=Tax,
        description="§10 Tax ledger: terms and wash sales.",
        json_schema_extra={"since": "1.3.1"},
    )
    liquidity: Liquidity = _d("§8 Liquidity.")
    orders: Orders = _d("§0 Orders.")
    cadence: Cadence = _d("§1 Cadence.")
    data_failures: DataFailures = _d("§8 Data failures.")
    assignment: Assignment = _d("§7 Assignment.")
    week_types: tuple[WeekType, ...] = _d("§12 The six week-type labels.")
    operations: Operations = _d("§9 Operations.")
    reporting: Reporting = _d("§11 Reporting.")
    governance: Governance = _d("§13-§16 Governance.")
    rules: tuple[Rule, ...] = _d("The decision rules.")
    arbitration: Arbitration | None = Field(
        default=None,
        description="§0/§1/§6 One intent per position per decision: which intents compete "
        "and which wins (D40). Absent (v1.3.0): the lower salience wins.",
        json_schema_extra={"since": "1.3.1"},
    )

    @model_validator(mode="after")
    def _one_value_in_two_places(self) -> Self:
        """Keys the text states twice must agree: the code reads one of each pair."""
        r = self.reinvestment
        if abs(self.llms.funding_share - r.leaps) > 1e-9:
            raise ValueError(
                f"llms.funding_share ({self.llms.funding_share:g}) must equal reinvestment.leaps"
                f" ({r.leaps:g}): both are the LEAP share of the reinvested gains (§10, §17)"
            )
        for name in ("gen", "rev", "com"):
            reinvests = getattr(self.sleeves, name).reinvest == "quarterly"
            if reinvests != (name in r.sleeves):
                raise ValueError(
                    f"sleeves.{name}.reinvest must be {'quarterly' if name in r.sleeves else 'none'}"
                    " as reinvestment.sleeves says (the rules read reinvestment.sleeves)"
                )
        return self

    @field_validator("week_types")
    @classmethod
    def _six_labels(cls, v: tuple[WeekType, ...]) -> tuple[WeekType, ...]:
        names = [w.name for w in v]
        if len(names) != 6 or len(set(names)) != 6:
            raise ValueError("week_types must list each of the six labels exactly once")
        ranks = [w.precedence for w in v]
        if len(set(ranks)) != len(ranks):
            raise ValueError("week_types precedences must be distinct")
        return v
