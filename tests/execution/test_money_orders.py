"""What the planner's money side moves (engine/execution/money.py): forks (§2, §3), merges
(§2), the tax reserve and reinvestment (§10), share buys for covered calls (§4, D66) and the
§6 mode changes - the amounts, the accounts, and what is refused (halts, caps, cash)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from engine.execution import money
from engine.execution.broker import OrderSide
from engine.execution.ledger import (
    CASH,
    LEAP,
    TAX,
    Deposit,
    ForkAccount,
    Holding,
    MarkReinvested,
    MergeAccount,
    OpenAccount,
    SetFlag,
    SetMode,
    Transfer,
    apply_all,
    stock,
)
from engine.execution.plan import option
from engine.execution.risk import GuardState
from tests.execution.plan_world import (
    DAY,
    action,
    context,
    cycle_plan,
    family,
    ledger,
    view,
    working,
    worst_cost,
)

# --------------------------------------------------------------------------- forks


def test_a_full_fork_splits_the_clip_40_30_30_into_a_new_family(bundled):
    """§3 "each $500K Rev-Acc earns over its base forks into a new full 40/30/30 ALL-USE"."""
    state = family({"GEN": 400_000, "REV": 800_000, "COM": 300_000})
    fork = action("fork_account", "REV", amount=500_000, creates="full")
    [op] = money.fork_account(context(bundled, state, fork), 0, fork).ops
    assert isinstance(op, ForkAccount)
    assert (op.op_id, op.parent, op.family, op.opened) == ("fork:REV:1", "REV", "F2", DAY)
    assert op.children == (
        ("GEN-2", "gen", 200_000_00),
        ("REV-2", "rev", 150_000_00),
        ("COM-2", "com", 150_000_00),
    )
    after, _ = apply_all(state, [op])
    assert after.balance("REV") == 300_000_00  # the clip left the parent ...
    assert [after.balance(a) for a in ("GEN-2", "REV-2", "COM-2")] == [
        200_000_00,
        150_000_00,
        150_000_00,
    ]  # ... into the new family's three sleeves
    assert {after.accounts[a].family for a in ("GEN-2", "REV-2", "COM-2")} == {"F2"}


def test_a_full_forks_children_add_up_to_the_clip_to_the_cent(bundled):
    state = family({"REV": 800_000})
    fork = action("fork_account", "REV", amount=333_333.33, creates="full")
    [op] = money.fork_account(context(bundled, state, fork), 0, fork).ops
    assert sum(cents for _, _, cents in op.children) == 333_333_33


def test_a_mini_fork_stays_in_its_parents_family_and_numbers_the_minis(bundled):
    """§2 "each $100K Gen-Acc earns over its base forks into a Mini ALL-USE"."""
    state = family({"GEN": 300_000})
    fork = action("fork_account", "GEN", amount=100_000, creates="mini")
    [first] = money.fork_account(context(bundled, state, fork), 0, fork).ops
    assert first.children == (("MINI-1", "mini", 100_000_00),) and first.family == "F1"
    after, _ = apply_all(state, [first])
    [second] = money.fork_account(context(bundled, after, fork), 0, fork).ops
    assert (second.op_id, second.children) == ("fork:GEN:2", (("MINI-2", "mini", 100_000_00),))


@pytest.mark.parametrize(
    ("strike", "forks"),
    [(450.0, True), (450.01, False)],  # free cash exactly the clip / a cent short of it
)
def test_a_fork_needs_the_clip_free_after_put_collateral(bundled, strike, forks):
    """D64: cash securing short puts is not free; at exactly the clip the fork goes ahead."""
    put = option("SPY", date(2024, 6, 28), strike, "P")
    held = Holding("GEN", put, -1, 1.0, "income", DAY)
    state = replace(family({"GEN": 145_000}), holdings={("GEN", put.key): held})
    fork = action("fork_account", "GEN", amount=100_000, creates="mini")
    part = money.fork_account(context(bundled, state, fork), 0, fork)
    assert [type(op) for op in part.ops] == [ForkAccount if forks else SetFlag]
    assert [r.reason for r in part.rejections] == ([] if forks else ["fork-deferred"])


@pytest.mark.parametrize(("accounts", "allowed"), [(5, True), (6, False)])
def test_a_full_fork_is_refused_past_the_subaccount_cap(bundled, accounts, allowed):
    """§0 max_subaccounts 8: 5 accounts + 3 is at the cap, 6 + 3 past it."""
    state = family({"REV": 800_000})
    fork = action("fork_account", "REV", amount=500_000, creates="full")
    reviewed, p = cycle_plan(bundled, state, fork, guard=GuardState(accounts=accounts))
    assert reviewed.verdicts[0].approved is allowed
    assert [type(op) for op in p.ops] == ([ForkAccount] if allowed else [])


def test_the_kill_switch_refuses_forks_and_merges_and_safe_mode_does_not(bundled):
    """§6 kill switch: a full halt, no forks or merges (D61); SAFE holds back new risk only."""
    state = _with_mini()  # GEN, COM and MINI-1 of family F1
    fork = action("fork_account", "GEN", amount=100_000, creates="mini")
    merge = action("merge_account", "MINI-1", into="com")
    accounts = {"MINI-1": {"equity": 310_000.0}}
    killed, halted = cycle_plan(bundled, state, fork, merge, mode="kill", accounts=accounts)
    assert [v.approved for v in killed.verdicts] == [False, False]
    assert all(v.reasons[0].startswith("kill_switch") for v in killed.verdicts)
    assert halted.ops == () and halted.orders == ()
    safe, p = cycle_plan(bundled, state, fork, merge, mode="safe", accounts=accounts)
    assert [v.approved for v in safe.verdicts] == [True, True]
    assert [type(op) for op in p.ops] == [ForkAccount, MergeAccount]


def test_a_deferred_fork_waits_out_the_kill_switch(bundled):
    """D61: the deferred fork's clip is free, but a fork waits while the kill switch holds."""
    state = ledger(
        Deposit("gain", "GEN", 100_000_00, counts_as_base=False),  # $100K over its base
        SetFlag("f", money.deferred_flag("GEN"), "100000:mini", "deferred", DAY),
        base=family({"GEN": 400_000}),
    )
    accounts = {"GEN": {"equity": 500_000.0}}
    assert money.deferred_forks(context(bundled, state, accounts=accounts, mode="kill")) == []
    [fork, cleared] = money.deferred_forks(context(bundled, state, accounts=accounts))
    assert isinstance(fork, ForkAccount) and fork.children == (("MINI-1", "mini", 100_000_00),)
    assert isinstance(cleared, SetFlag) and cleared.value == ""


# --------------------------------------------------------------------------- merges


def _with_mini(mini_family: str = "F1"):
    return ledger(
        OpenAccount("om", "MINI-1", "mini", date(2021, 6, 1), parent="GEN", family=mini_family),
        base=family({"GEN": 300_000, "COM": 300_000}),
    )


def test_a_mini_merges_into_its_familys_com_at_its_equity(bundled):
    """§2 "a Mini merges into Com-Acc after 3 years or once it has grown 3x"."""
    merge = action("merge_account", "MINI-1", into="com")
    ctx = context(bundled, _with_mini(), merge, accounts={"MINI-1": {"equity": 312_345.67}})
    [op] = money.merge_account(ctx, 0, merge).ops
    assert op == MergeAccount("merge:MINI-1", "MINI-1", "COM", 312_345_67)


def test_a_merge_with_no_com_in_the_minis_family_is_refused(bundled):
    merge = action("merge_account", "MINI-1", into="com")
    part = money.merge_account(context(bundled, _with_mini("F2"), merge), 0, merge)
    assert part.ops == [] and [r.reason for r in part.rejections] == ["no-target"]


def test_a_merge_waits_for_the_minis_working_orders(bundled):
    state = working(_with_mini(), "MINI-1", stock("AAPL"), OrderSide.BUY)
    merge = action("merge_account", "MINI-1", into="com")
    part = money.merge_account(context(bundled, state, merge), 0, merge)
    assert part.ops == [] and [r.reason for r in part.rejections] == ["orders-working"]


# --------------------------------------------------------------------------- §10 the quarter


def _quarter_actions(account: str) -> tuple:
    """The §10 rule's actions with v1.3's values (30 % reserve; 75 % contracts, 25 % LEAPs)."""
    return (
        action("reserve_tax", account, fraction=0.30),
        action("reinvest", account, fraction=0.70, contracts=0.75, leaps=0.25),
    )


def test_the_tax_reserve_moves_30_percent_of_the_quarters_gains_to_the_tax_bucket(bundled):
    tax, _ = _quarter_actions("REV")
    ctx = context(
        bundled, family({"REV": 300_000}), tax, accounts={"REV": {"quarter_gains": 100_000.0}}
    )
    [op] = money.reserve_tax(ctx, 0, tax).ops
    assert op == Transfer(
        "tax:REV:2024Q2", "REV", "REV", 30_000_00, CASH, TAX, memo="tax reserve 2024Q2"
    )


@pytest.mark.parametrize("gains", [0.0, -5_000.0])
def test_no_tax_reserve_without_gains(bundled, gains):
    tax, _ = _quarter_actions("REV")
    ctx = context(
        bundled, family({"REV": 300_000}), tax, accounts={"REV": {"quarter_gains": gains}}
    )
    assert money.reserve_tax(ctx, 0, tax).ops == []


def test_reinvestment_moves_the_leap_share_to_the_leap_fund_and_keeps_the_contracts_share(bundled):
    """§10: of the 70 % reinvested, 25 % to the LEAP fund, 75 % stays in cash for contracts."""
    _, reinvest = _quarter_actions("COM")
    ctx = context(
        bundled, family({"COM": 300_000}), reinvest, accounts={"COM": {"quarter_gains": 100_000.0}}
    )
    part = money.reinvest(ctx, 0, reinvest)
    assert part.ops == [
        Transfer("reinvest:COM:2024Q2", "COM", "COM", 17_500_00, CASH, LEAP, "LEAP share 2024Q2"),
        MarkReinvested("reinvested:COM:2024Q2", "COM", "2024Q2"),
    ]
    assert part.notes == [
        {"action": 0, "note": "reinvest", "contracts": 52_500.0, "leaps": 17_500.0}
    ]
    assert ctx.leap_added == {"COM": 17_500.0}  # the same plan's LEAP purchase may spend it


def test_the_quarters_money_is_booked_under_the_kill_switch(bundled):
    """D61: the tax reserve and the reinvestment's split move money inside an account only,
    so no halt refuses them; the LEAP purchase waits for ACTIVE."""
    tax, reinvest = _quarter_actions("COM")
    buy = action("buy_leap", "COM")
    accounts = {"COM": {"quarter_gains": 100_000.0, "equity": 300_000.0}}
    reviewed, p = cycle_plan(
        bundled, family({"COM": 300_000}), tax, reinvest, buy, mode="kill", accounts=accounts
    )
    assert [v.approved for v in reviewed.verdicts] == [True, True, False]
    assert [type(op).__name__ for op in p.ops] == ["Transfer", "Transfer", "MarkReinvested"]
    assert p.orders == ()


def test_the_leap_purchase_spends_the_leap_share_reinvested_in_the_same_decision(bundled):
    """The money side is planned first: a buy_leap listed before the reinvestment still sees
    the quarter's LEAP share (the fund was empty before it)."""
    _, reinvest = _quarter_actions("COM")
    buy = action("buy_leap", "COM")
    accounts = {"COM": {"quarter_gains": 100_000.0, "equity": 300_000.0}}
    _, p = cycle_plan(bundled, family({"COM": 300_000}), buy, reinvest, accounts=accounts)
    assert p.orders and all(o.funding == LEAP and o.request.account == "COM" for o in p.orders)
    assert sum(worst_cost(o) for o in p.orders) <= 17_500.0


# --------------------------------------------------------------------------- share buys (D66)


@pytest.mark.parametrize(
    ("nvda", "nvda_shares"),
    [(125.0, 200), (125.01, 100)],  # a second NVDA lot at exactly the 25 % cap / a cent past it
)
def test_a_minis_share_half_buys_whole_lots_to_the_least_held_within_the_cap(
    bundled, nvda, nvda_shares
):
    """§2 a Mini's Com-style half (50 % of $100K) in whole 100-share lots; §0 per symbol at
    most 25 % of the sleeve ($25,000): MSFT ($45,000 a lot) is never bought."""
    state = family({"MINI-1": 100_000})
    buy = action("buy_shares", "MINI-1", share=0.5)
    market = view({"AAPL": 210.0, "MSFT": 450.0, "NVDA": nvda})
    ctx = context(bundled, state, buy, accounts={"MINI-1": {"equity": 100_000.0}}, market=market)
    part = money.buy_shares(ctx, 0, buy)
    bought = {o.request.contract.symbol: o.request.quantity for o in part.orders}
    assert bought == {"AAPL": 100, "NVDA": nvda_shares}
    assert {(o.request.account, o.request.side, o.purpose) for o in part.orders} == {
        ("MINI-1", OrderSide.BUY, "stock")
    }


def test_share_buys_never_spend_more_than_the_accounts_cash(bundled):
    state = family({"MINI-1": 30_000})
    buy = action("buy_shares", "MINI-1", share=0.5)
    ctx = context(bundled, state, buy, accounts={"MINI-1": {"equity": 100_000.0}})
    part = money.buy_shares(ctx, 0, buy)
    assert {o.request.contract.symbol: o.request.quantity for o in part.orders} == {"AAPL": 100}


def test_too_little_for_one_lot_is_refused_with_the_reason(bundled):
    state = family({"MINI-1": 10_000})
    buy = action("buy_shares", "MINI-1", share=0.5)
    ctx = context(bundled, state, buy, accounts={"MINI-1": {"equity": 100_000.0}})
    part = money.buy_shares(ctx, 0, buy)
    assert part.orders == [] and [r.reason for r in part.rejections] == ["below-one-lot"]


def test_safe_mode_refuses_share_buys(bundled):
    buy = action("buy_shares", "MINI-1", share=0.5)
    accounts = {"MINI-1": {"equity": 100_000.0}}
    reviewed, p = cycle_plan(
        bundled, family({"MINI-1": 100_000}), buy, mode="safe", accounts=accounts
    )
    assert not reviewed.verdicts[0].approved and p.orders == ()


# --------------------------------------------------------------------------- §6 mode changes


def test_the_kill_switch_is_recorded_once(bundled):
    kill = action("kill_switch", None, why="vix_above_80")
    state = family({"GEN": 100_000})
    [op] = money.kill_switch(context(bundled, state, kill), 0, kill).ops
    assert op == SetMode("mode:d-9:0", "kill", "vix_above_80", False)
    killed = ledger(op, base=state)
    assert money.kill_switch(context(bundled, killed, kill), 0, kill).ops == []


def test_safe_mode_never_steps_the_kill_switch_down(bundled):
    safe = action("enter_safe_mode", None, why="vix_above_65")
    state = family({"GEN": 100_000})
    [op] = money.enter_safe_mode(context(bundled, state, safe), 0, safe).ops
    assert (op.mode, op.reason) == ("safe", "vix_above_65")
    killed = ledger(SetMode("k", "kill", "vix_above_80"), base=state)
    assert money.enter_safe_mode(context(bundled, killed, safe), 0, safe).ops == []


def test_shares_already_held_count_toward_the_per_symbol_cap(bundled):
    """200 NVDA held at $125 are the $25,000 cap already: the lots go elsewhere."""
    nvda = stock("NVDA")
    held = Holding("MINI-1", nvda, 200, 125.0, "stock", DAY)
    state = replace(family({"MINI-1": 100_000}), holdings={("MINI-1", nvda.key): held})
    buy = action("buy_shares", "MINI-1", share=0.5)
    ctx = context(bundled, state, buy, accounts={"MINI-1": {"equity": 100_000.0}})
    bought = {o.request.contract.symbol for o in money.buy_shares(ctx, 0, buy).orders}
    assert bought and "NVDA" not in bought
