"""Capital flows: a fork is neither a loss for the parent nor a gain for the child; the
tax reserve leaves equity; a merged account is at zero from its merge on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from adapters.storage.readers import EquityMark, LedgerOpRow
from scheduler.reports import flows as F


def _at(day: int, hour: int = 15) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def test_fork_merge_deposit_and_tax_reserve_are_flows_and_a_leap_move_is_not():
    ops = [
        LedgerOpRow("d", "Deposit", _at(2), {"account": "GEN", "amount": 40_000_000}),
        LedgerOpRow(
            "f",
            "ForkAccount",
            _at(3),
            {"parent": "GEN", "children": [["MINI-1", "mini", 10_000_000]]},
        ),
        LedgerOpRow(
            "m",
            "MergeAccount",
            _at(4),
            {"source": "MINI-1", "target": "COM", "source_equity": 10_050_000},
        ),
        LedgerOpRow(
            "t",
            "Transfer",
            _at(5),
            {
                "src": "GEN",
                "dst": "GEN",
                "amount": 5_000,
                "src_bucket": "cash",
                "dst_bucket": "tax_reserve",
            },
        ),
        LedgerOpRow(
            "l",
            "Transfer",
            _at(5),
            {
                "src": "GEN",
                "dst": "GEN",
                "amount": 7_000,
                "src_bucket": "cash",
                "dst_bucket": "leap_fund",
            },
        ),
    ]
    got = [(f.account, f.amount, f.kind, f.owner) for f in F.flows(ops)]
    assert got == [
        ("GEN", 400_000.0, "Deposit", True),
        ("GEN", -100_000.0, "ForkAccount", False),
        ("MINI-1", 100_000.0, "ForkAccount", False),
        ("MINI-1", -100_500.0, "MergeAccount", False),
        ("COM", 100_500.0, "MergeAccount", False),
        ("GEN", -50.0, "TaxReserve", False),
    ]


def test_a_fork_day_is_a_zero_return_for_the_parent():
    values = {date(2024, 1, 2): 500_000.0, date(2024, 1, 3): 400_000.0}
    import pandas as pd

    series = pd.Series({pd.Timestamp(d): v for d, v in values.items()})
    r = F.returns(series, {date(2024, 1, 3): -100_000.0})
    assert list(r) == [pytest.approx(0.0)]


def test_daily_equity_carries_the_last_mark_over_quiet_sessions_and_zeroes_a_merged_account():
    marks = [
        EquityMark("GEN", _at(2, 15), 100.0, 100.0),
        EquityMark("GEN", _at(2, 20), 101.0, 101.0),  # the day's last mark wins
        EquityMark("MINI-1", _at(3), 50.0, 50.0),
        EquityMark("GEN", _at(5), 103.0, 103.0),
    ]
    frame = F.daily_equity(marks, {"MINI-1": date(2024, 1, 4)})
    assert [d.date() for d in frame.index] == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert list(frame["GEN"]) == [101.0, 101.0, 101.0, 103.0]
    assert frame["MINI-1"].isna().iloc[0] and list(frame["MINI-1"].iloc[1:]) == [50.0, 0.0, 0.0]
