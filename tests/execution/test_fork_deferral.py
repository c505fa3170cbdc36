"""§2/§3 forks that wait for their cash (issue 15 item 5, docs/decisions.md D64): recorded ONCE
as deferred with the reason, the clip kept out of new put collateral, executed once free."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.execution import money
from engine.execution.ledger import (
    Deposit,
    ForkAccount,
    Holding,
    LedgerState,
    OpenAccount,
    apply_all,
)
from engine.execution.plan import Context, option
from engine.execution.risk import Limits
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot
from engine.records.decision import Action, ConstitutionRef, Decision

NY = ZoneInfo("America/New_York")
DAY = date(2025, 10, 21)
FORK = Action(
    kind="fork_account",
    account="GEN",
    rule="fork.gen",
    clause="§2",
    salience=90,
    params={"amount": 100000, "creates": "mini"},
    reason="t",
)


def _state(collateral_contracts: int) -> LedgerState:
    """GEN: $520K cash ($120K over its $400K base), ``collateral_contracts`` x $450 puts sold."""
    state, _ = apply_all(
        LedgerState(),
        [OpenAccount("o", "GEN", "gen", date(2025, 1, 2)), Deposit("d", "GEN", 400_000_00)],
    )
    state, _ = apply_all(state, [Deposit("gain", "GEN", 120_000_00, counts_as_base=False)])
    if collateral_contracts:
        put = option("SPY", date(2025, 10, 24), 450.0, "P")
        h = Holding("GEN", put, -collateral_contracts, 1.0, "income", DAY)
        state = replace(state, holdings={("GEN", put.key): h})
    return state


def _ctx(bundled, state: LedgerState, day: date = DAY, actions=(FORK,)) -> Context:
    at = datetime(day.year, day.month, day.day, 16, tzinfo=NY)
    decision = Decision(
        decision_id="d-1",
        as_of=at.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={"market": {"mode": "active"}},
        fired=(),
        actions=tuple(actions),
    )
    facts = {"GEN": {"equity": 520_000.0}}
    view = MarketView(MarketSnapshot(as_of=at))
    return Context(bundled.model, decision, state, view, Limits("active", 1.0), facts, {})


def test_a_fork_with_its_clip_free_executes_at_once(bundled):
    part = money.fork_account(_ctx(bundled, _state(0)), 0, FORK)
    assert [type(op) for op in part.ops] == [ForkAccount] and not part.rejections


def test_a_fork_without_free_cash_is_recorded_once_as_deferred_with_the_reason(bundled):
    state = _state(10)  # $450K collateral: $70K free
    part = money.fork_account(_ctx(bundled, state), 0, FORK)
    [flag] = part.ops
    assert flag.name == "fork_deferred:GEN" and flag.value == "100000:mini"
    assert "$70,000 free after put collateral" in flag.reason
    assert [r.reason for r in part.rejections] == ["fork-deferred"]
    deferred, _ = apply_all(state, part.ops)
    from engine.execution.ledger_view import ledger_facts

    [gen] = ledger_facts(deferred, _ctx(bundled, deferred).market).accounts
    assert gen.fork_deferred  # the rule's `not account.fork_deferred`: not asked again
    assert money.fork_hold_back(_ctx(bundled, deferred, actions=()), "GEN") == 100000


def test_a_deferred_fork_executes_once_the_expiry_frees_its_clip(bundled):
    state, _ = apply_all(_state(10), money.fork_account(_ctx(bundled, _state(10)), 0, FORK).ops)
    assert money.deferred_forks(_ctx(bundled, state, actions=())) == []  # still tied up
    freed = replace(state, holdings={})  # the puts expired
    ops = money.deferred_forks(_ctx(bundled, freed, date(2025, 10, 24), actions=()))
    assert [type(op).__name__ for op in ops] == ["ForkAccount", "SetFlag"]
    after, _ = apply_all(freed, ops)
    assert after.balance("MINI-1") == 100_000_00 and "fork_deferred:GEN" not in after.flags


def test_a_deferred_fork_waits_through_a_dip_below_the_clip_and_is_not_recorded_again(bundled):
    state, _ = apply_all(_state(10), money.fork_account(_ctx(bundled, _state(10)), 0, FORK).ops)
    freed = replace(state, holdings={})
    dipped = replace(
        _ctx(bundled, freed, actions=()), facts_accounts={"GEN": {"equity": 499_000.0}}
    )
    assert money.deferred_forks(dipped) == []  # $99K over base: it waits
    assert "fork_deferred:GEN" in freed.flags  # still the one deferral
