"""§6 L3 "SAFE mode until reset" holds the breached account only, and its reset (D60): on a
later session, once the stop-loss exit is done and no position is at L2 or above. The system
tiers release themselves when the market no longer says so."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.execution import money
from engine.execution.ledger import (
    AccountMode,
    LedgerState,
    OpenAccount,
    SetAccountMode,
    SetMode,
    apply_all,
)
from engine.execution.plan import Context
from engine.execution.risk import Limits
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot
from engine.records.decision import Action, ConstitutionRef, Decision

NY = ZoneInfo("America/New_York")
HELD_ON = date(2024, 3, 5)


def _state(**kw) -> LedgerState:
    state, _ = apply_all(
        LedgerState(),
        [
            OpenAccount(f"open:{a}", a, k, date(2024, 1, 2))
            for a, k in (("GEN", "gen"), ("REV", "rev"))
        ],
    )
    return replace(state, **kw) if kw else state


def _ctx(bundled, state, day: date, *, level: int = 0, mode: str = "active", actions=(), vix=18.0):
    decision = Decision(
        decision_id="d-9",
        as_of=datetime(day.year, day.month, day.day, 10, tzinfo=NY).isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={"market": {"vix": vix}},
        derived={"market": {"mode": mode}, "accounts": {"GEN": {"level": level}}},
        fired=(),
        actions=tuple(actions),
    )
    view = MarketView(MarketSnapshot(as_of=datetime(day.year, day.month, day.day, 10, tzinfo=NY)))
    return Context(bundled.model, decision, state, view, Limits(mode, 1.0), {}, {})


def _l3(account="GEN") -> Action:
    return Action(
        kind="enter_safe_mode",
        account=account,
        rule="protocol.l3",
        clause="§6",
        salience=10,
        params={"why": "l3_breach"},
        reason="t",
    )


def test_an_l3_breach_holds_only_its_account_and_leaves_the_system_active(bundled):
    part = money.enter_safe_mode(_ctx(bundled, _state(), HELD_ON, level=3), 0, _l3())
    assert part.ops == [
        SetAccountMode("hold:d-9:0", "GEN", "safe", "l3_breach", HELD_ON, "next_session")
    ]
    state, _ = apply_all(_state(), part.ops)
    assert state.mode == "active" and set(state.account_modes) == {"GEN"}


HELD = {"GEN": AccountMode("safe", "l3_breach", HELD_ON, "next_session")}


@pytest.mark.parametrize(
    ("day", "level", "released"),
    [
        (HELD_ON, 0, False),  # the same session: not yet
        (date(2024, 3, 6), 3, False),  # the exit has not happened: still at L3
        (date(2024, 3, 6), 2, False),  # at L2: not reset yet
        (date(2024, 3, 6), 1, True),  # a later session below L2: reset
    ],
)
def test_an_l3_hold_resets_on_a_later_session_once_no_position_is_at_l2_or_above(
    bundled, day, level, released
):
    ops = money.account_releases(_ctx(bundled, _state(account_modes=HELD), day, level=level))
    assert bool(ops) is released
    if released:
        state, _ = apply_all(_state(account_modes=HELD), ops)
        assert state.account_modes == {}


def test_an_operator_hold_never_ends_by_itself(bundled):
    paused = {"GEN": AccountMode("paused", "user: holiday", HELD_ON, "operator")}
    ctx = _ctx(bundled, _state(account_modes=paused), date(2024, 4, 1))
    assert money.account_releases(ctx) == []


@pytest.mark.parametrize(
    ("mode", "market", "target"),
    [
        ("kill", "safe", "safe"),
        ("kill", "active", "active"),
        ("safe", "hedged", "active"),
        ("kill", "kill", None),
        ("safe", "safe", None),
    ],
)
def test_a_tier_steps_down_to_what_the_market_says_now(bundled, mode, market, target):
    state, _ = apply_all(
        _state(), [SetMode("m", mode, "vix_kill" if mode == "kill" else "vix_safe")]
    )
    ops = money.system_release(_ctx(bundled, state, HELD_ON, mode=market))
    assert [op.mode for op in ops] == ([target] if target else [])


def test_a_latched_mode_waits_for_the_operator(bundled):
    state, _ = apply_all(_state(), [SetMode("m", "safe", "resume risk check failed", True)])
    assert money.system_release(_ctx(bundled, state, HELD_ON)) == []
