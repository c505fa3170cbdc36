"""Quiet ticks (engine.cycle.quiet): skipping an unchanged tick changes nothing a full run would do.

The proof is by comparison: the same synthetic replay run twice through the real paper
pipeline, once deciding every tick and once with quiet ticks, must give the same orders, the
same fills, the same ledger and, tick by tick, the same levels, modes, actions and equity.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from constitution.load import load_constitution_text
from engine.cycle.quiet import QuietTicks, clock_cuts, clock_signature
from scheduler import compose
from scheduler.backtest import run_backtest
from scheduler.cadence import NEW_YORK
from tests.bundled_params import CADENCE, PARAMS

FIRST, LAST = (
    date(2024, 1, 2),
    date(2024, 1, 12),
)  # a Com Monday is a holiday; Rev Wed, Gen Thu, two Fridays


def test_the_v13_clock_cuts_are_its_windows_on_their_weekdays(bundled):
    """Entry windows on their weekdays (open on a session; skipped, market closed, on a
    holiday: D150); Friday management and the assignment check on the week's last and expiry
    sessions (Thursday in a Good Friday week, D20)."""
    cuts = {(c.day, c.minutes) for c in clock_cuts(bundled.rules)}
    entry = (("clock_minutes_et", "<", 660), ("clock_minutes_et", ">=", 585))
    windows = {
        ((("clock_session", "==", session), ("clock_weekday", "==", day)), entry)
        for day in ("mon", "wed", "thu")
        for session in (True, False)
    }
    assert cuts == windows | {
        (
            (("clock_last_session_of_week", "==", True),),
            (("clock_schedule_minutes", "<", 945), ("clock_schedule_minutes", ">=", 870)),
        ),
        ((("clock_expiry_session", "==", True),), (("clock_schedule_minutes", ">=", 900),)),
        ((("clock_quarter_last_session", "==", True),), (("clock_schedule_minutes", ">=", 990),)),
    }


def test_ticks_inside_one_window_share_a_signature_and_a_boundary_splits_them(bundled):
    cuts = clock_cuts(bundled.rules)

    def sig(hh, mm, day=date(2024, 1, 4)):  # a Thursday: Gen's entry day
        return clock_signature(
            cuts, datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK), 120, CADENCE
        )

    assert sig(9, 50) == sig(10, 55)  # both inside the 09:45-11:00 entry window
    assert sig(10, 55) != sig(11, 0)  # the window's end is a cut
    assert sig(9, 40) != sig(9, 45)
    assert sig(10, 0) != sig(10, 0, day=date(2024, 1, 11))  # another day is never the same tick
    tuesday = date(2024, 1, 9)  # no rule compares the clock on a Tuesday
    assert sig(9, 35, tuesday) == sig(10, 0, tuesday) == sig(15, 55, tuesday)
    friday = date(2024, 1, 5)
    assert sig(14, 25, friday) != sig(14, 30, friday) != sig(15, 0, friday) != sig(15, 45, friday)
    # On an early-close Friday the schedule minutes move by two hours: 12:30 is "14:30" there.
    black_friday = date(2024, 11, 29)
    assert sig(12, 25, black_friday) != sig(12, 30, black_friday)
    # In a Good Friday week the Thursday is the week's last session: its 14:30 is a cut, an
    # ordinary Thursday's is not.
    assert sig(14, 25, date(2024, 3, 28)) != sig(14, 30, date(2024, 3, 28))
    assert sig(14, 25, date(2024, 3, 21)) == sig(14, 30, date(2024, 3, 21))


def test_a_rule_that_uses_the_clock_minutes_as_a_value_disables_quiet_ticks(bundled):
    text = bundled.text.replace(
        "clock.minutes_et >= params.sleeves.gen.entry.start",
        "account.equity >= clock.minutes_et",
        1,
    )
    assert text != bundled.text
    changed = load_constitution_text(text, "<edited>")
    assert clock_cuts(changed.rules) is None
    assert not QuietTicks(None, 120).is_quiet(None, None)


def _replay(bundled, path, quiet: bool):
    reports = []

    def factory(ctx):
        build = compose.paper_cycle_factory(ctx)

        def make(constitution):
            opening = build(constitution)
            if not quiet:
                opening.cycle.quiet = QuietTicks(None, 0)  # decide every tick
            cycles.append(opening.cycle)
            return _Recording(opening, reports)

        return make

    cycles = []
    summary = run_backtest(bundled, FIRST, LAST, f"sqlite:///{path}", factory, synthetic_seed=7)
    return summary, reports, cycles[-1]


class _Recording:
    def __init__(self, inner, reports):
        self.inner, self.reports = inner, reports

    def run(self, at):
        report = self.inner.run(at)
        self.reports.append(report)
        return report


@pytest.mark.slow
def test_a_replay_with_quiet_ticks_does_exactly_what_deciding_every_tick_does(bundled, tmp_path):
    full, full_reports, full_cycle = _replay(bundled, tmp_path / "full.db", quiet=False)
    fast, fast_reports, fast_cycle = _replay(bundled, tmp_path / "quiet.db", quiet=True)

    assert [r.at for r in fast_reports] == [r.at for r in full_reports]
    assert not any(r.quiet for r in full_reports)
    quiet = [r for r in fast_reports if r.quiet]
    assert len(quiet) > len(fast_reports) // 2  # over daily bars most ticks are unchanged

    def visible(r):
        return (r.market_mode, r.account_levels, r.account_modes, r.action_counts, r.equity)

    assert [visible(r) for r in fast_reports] == [visible(r) for r in full_reports]
    decided = {r.decision_id for r in fast_reports if not r.quiet}
    assert decided <= {r.decision_id for r in full_reports}  # the same facts, the same decision ids

    def orders(cycle):
        return sorted(
            (o.request.client_order_id, o.state, o.filled, o.avg_fill_price)
            for o in cycle.store.state.orders.values()
        )

    assert orders(fast_cycle) == orders(full_cycle) and orders(full_cycle)
    assert fast_cycle.store.state.balances == full_cycle.store.state.balances
    assert fast_cycle.store.state.holdings == full_cycle.store.state.holdings
    assert (fast.trades, fast.fills, fast.end_equity, fast.week_types) == (
        full.trades,
        full.fills,
        full.end_equity,
        full.week_types,
    )


@pytest.mark.parametrize("check", ["15:00", "14:50"])
def test_the_engine_reads_the_timetable_the_scheduler_fires(bundled, check):
    """The rules' clock, the quiet-tick check and the scheduler take their close-anchored times
    from the same constitution: a moved assignment check moves all three."""
    from engine.market.calendar import cadence_of
    from scheduler.cadence import spec_from

    text = bundled.text.replace(
        'assignment_check: {day: fri, at: "15:00"}',
        f'assignment_check: {{day: fri, at: "{check}"}}',
    )
    edited = load_constitution_text(text, "<edited>")
    assert cadence_of(edited.model) == spec_from(edited.model).calendar_cadence()
    hh, mm = map(int, check.split(":"))
    assert cadence_of(edited.model).assignment_check == time(hh, mm)
    # On an early-close Friday the shifted check is clipped to 12:45 for both timetables, and
    # the quiet-tick signature changes exactly there.
    cuts = clock_cuts(edited.rules)
    cadence = cadence_of(edited.model)
    day = date(2024, 11, 29)

    def sig(h, m):
        return clock_signature(
            cuts, datetime.combine(day, time(h, m), tzinfo=NEW_YORK), 120, cadence
        )

    # 15:00 - 2 h lands on the 13:00 close: clipped to 12:45. 14:50 - 2 h = 12:50: not clipped.
    before, at = ((12, 40), (12, 45)) if check == "15:00" else ((12, 45), (12, 50))
    assert sig(*before) != sig(*at)
    assert sig(*at) == sig(12, 55)


def test_bar_snapshots_share_a_content_key_within_a_session_phase_only():
    from adapters.market_data.synthetic import synthetic_market
    from engine.cycle.quiet import market_key

    market = synthetic_market(7, date(2024, 1, 31))
    day = date(2024, 1, 4)

    def snap(h, m):
        return market.snapshot(
            datetime.combine(day, time(h, m), tzinfo=NEW_YORK), ["SPY", "AAPL"], PARAMS
        )

    a, b, close = snap(10, 0), snap(10, 5), snap(16, 0)
    assert a.content_key is not None and a.content_key == b.content_key
    assert (
        market_key(a) == market_key(b) and b.quotes["SPY"].at == b.as_of
    )  # restamped, same content
    assert close.content_key != a.content_key and close.quotes["SPY"].last != a.quotes["SPY"].last
    assert market_key(close) != market_key(a)


def test_a_snapshot_with_a_stale_atr_claims_no_shared_content():
    from adapters.market_data.files import BarMarketData
    from adapters.market_data.synthetic import generate

    hist = generate(7, date(2024, 1, 31), ("SPY",))
    # SPY's bars stop on 2024-01-10: by 2024-01-16 its ATR is stale, and the staleness note
    # names an age that grows with every tick, so no two ticks may be called the same.
    bars = {"SPY": hist.bars["SPY"].until(date(2024, 1, 10)), "VIX": hist.bars["VIX"]}
    market = BarMarketData(bars)
    at = datetime.combine(date(2024, 1, 16), time(10, 0), tzinfo=NEW_YORK)
    snap = market.snapshot(at, ["SPY"], PARAMS)
    assert snap.atr5["SPY"].source == "stale_fallback"
    assert snap.content_key is None
