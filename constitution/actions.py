"""The catalogue of action kinds a rule may emit (documented in docs/actions.md).

Each kind names the entity it acts on (its *target*: the rule must bind one) and the ``with``
parameters it accepts. The validator refuses unknown kinds and unknown parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ActionKind:
    name: str
    target: str  # "market" (system-wide), "account", "underlying" (account x symbol), "position"
    description: str
    params: dict[str, str] = field(default_factory=dict)  # name -> description


def _k(name, target, description, **params) -> ActionKind:
    return ActionKind(name, target, description, params)


_KINDS = (
    _k(
        "open_short_put",
        "underlying",
        "Sell a cash-secured put on the symbol for the account.",
        delta="Absolute delta band {min, max}.",
        dte="Days to expiry {min, max}.",
        deployment="Fraction of the sleeve to deploy (after the per-symbol cap).",
        style="Sleeve style whose parameters apply (gen, rev, com).",
        share="Share of the account run in this style (Mini accounts: 0.5).",
    ),
    _k(
        "open_covered_call",
        "position",
        "Sell calls against whole 100-share lots of the stock position.",
        delta="Absolute delta band {min, max}.",
        dte="Days to expiry {min, max}.",
        coverage="Most of the shares to cover (earnings weeks: 0.5).",
        deployment="Deployment factor (Hedged Week: 0.5).",
    ),
    _k(
        "close_position",
        "position",
        "Close the position (buy back a short option, sell a long one).",
        urgency="'market' for a stop-loss exit, 'limit' otherwise.",
        why="Short reason code.",
    ),
    _k(
        "prepare_roll",
        "position",
        "Pre-compute roll candidates (L1).",
        delta="Target delta band.",
        dte_extension="Days added {min, max}.",
    ),
    _k(
        "roll_position",
        "position",
        "Roll: close and re-open within the delta band, further out (L2).",
        delta="Target delta band.",
        dte_extension="Days added {min, max}.",
        max_cost_of_credit="Refuse if the roll costs more than this share of the original credit.",
    ),
    _k(
        "set_protocol_level",
        "position",
        "Record the position's protocol level and monitoring interval.",
        level="0-3.",
        monitor_seconds="Monitoring interval.",
    ),
    _k(
        "deploy_hedge",
        "account",
        "Buy protection for the sleeve.",
        kind="'strategic' (§5) or 'tactical' (L2, §6).",
        spx_puts_pct="SPX puts, share of sleeve equity.",
        vix_calls_pct="VIX calls, share of sleeve equity.",
        budget="Budget parameters.",
        instruments="Instrument parameters.",
    ),
    _k(
        "release_hedge",
        "position",
        "Close a hedge position (profit target or triggers reverted).",
        why="Short reason code.",
    ),
    _k(
        "hedged_week",
        "market",
        "Declare a Hedged Week: deployment halved, only defensive rolls.",
        deployment="Deployment factor.",
    ),
    _k(
        "enter_safe_mode",
        "market",
        "SAFE mode: no new entries until reset.",
        why="Short reason code.",
    ),
    _k(
        "kill_switch",
        "market",
        "Full halt: cancel working orders, no new orders.",
        why="Short reason code.",
    ),
    _k(
        "suspend_csp",
        "account",
        "Suspend new cash-secured puts (covered calls only); a drawdown pivot is latched"
        " (recorded in the ledger) until recovery.",
        why="Short reason code.",
    ),
    _k(
        "resume_csp",
        "account",
        "Release a drawdown pivot's latch: the sleeve has recovered (recorded in the ledger).",
        why="Short reason code.",
    ),
    _k(
        "skip_entry",
        "market",
        "An entry that would have been made is skipped, with the reason.",
        why="Short reason code.",
    ),
    _k(
        "fork_account",
        "account",
        "Fork the sleeve's excess into a new account.",
        amount="Dollars moved to the new account.",
        creates="'mini' or 'full'.",
    ),
    _k(
        "merge_account",
        "account",
        "Merge a Mini ALL-USE account into Com-Acc.",
        into="Target sleeve kind.",
    ),
    _k(
        "reinvest",
        "account",
        "Quarterly reinvestment of gains after the tax reserve.",
        fraction="Share of quarter gains reinvested.",
        contracts="Share to contracts.",
        leaps="Share to LEAPs.",
    ),
    _k(
        "reserve_tax",
        "account",
        "Move a share of quarter gains to the tax reserve.",
        fraction="Share of gains.",
    ),
    _k(
        "buy_leap",
        "account",
        "Buy LEAPs for the LLMS ladder.",
        growth="Growth call parameters.",
        hedge="Hedge put parameters.",
        split="Hedge/growth split.",
    ),
    _k(
        "buy_shares",
        "account",
        "Buy whole 100-share lots of the sleeve's tickers to write covered calls on (§4: Com's"
        " reinvested 'contracts' share, D66), within the per-symbol cap.",
        fraction="Share of the quarter's realised gains to spend (Com's reinvestment).",
        share="Or: share of the account's equity to hold in shares (a Mini's Com-style half).",
    ),
    _k(
        "roll_leap",
        "position",
        "Roll a LEAP rung forward (§17): sell it and buy the next rung with the proceeds.",
        why="Short reason code: 'time' (3 months or less left) or 'delta' (out of the band).",
        growth="Growth call parameters (delta band, months).",
        hedge="Hedge put parameters (OTM band, months).",
    ),
    _k(
        "prepare_assignment",
        "position",
        "Log a likely assignment and prepare for it (§7): the option is held to expiry (D13).",
        probability="Probability in the money (|delta|).",
    ),
    _k(
        "alert",
        "market",
        "Tell a human.",
        message="Text.",
        severity="'info', 'warning' or 'critical'.",
    ),
)

KINDS: dict[str, ActionKind] = {k.name: k for k in _KINDS}
REQUIRED_KINDS = (
    "open_short_put",
    "open_covered_call",
    "close_position",
    "prepare_roll",
    "roll_position",
    "set_protocol_level",
    "deploy_hedge",
    "release_hedge",
    "hedged_week",
    "enter_safe_mode",
    "kill_switch",
    "suspend_csp",
    "skip_entry",
    "fork_account",
    "merge_account",
    "reinvest",
    "reserve_tax",
    "alert",
)
