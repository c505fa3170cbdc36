"""§6 VIX tiers over real history (issue 14 item 4): the kill switch halts while VIX is above
80 and trading resumes once it is back under the tier - after 2008-12 and after 2020-04 - with
no human reset (docs/decisions.md D60).

The fixture turns ../shared/data into a bar store: VIX as is, the S&P 500 closes as SPX, and
every sleeve ticker as the S&P 500 scaled (the real tickers' history is not in shared/data;
what is tested is when the system trades, which the VIX path decides). Spans are a few weeks
around each spike, not 33 years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from adapters.market_data.files import import_bars
from adapters.storage.audit_store import AuditStore
from adapters.storage.ledger_store import SqlLedgerStore
from engine.clock import FixedClock
from scheduler import compose
from scheduler.backtest import run_backtest
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow

TICKERS = ("SPY", "AAPL", "MSFT", "AMZN", "GOOG", "GOOGL", "QQQ", "IWM", "NVDA", "TSLA", "META")
ENTRIES = {"open_short_put", "open_covered_call"}


@pytest.fixture(scope="module")
def real_bars(tmp_path_factory) -> Path:
    if not (SHARED_DATA / "vix-daily.csv").exists():
        pytest.skip(f"real history not present in {SHARED_DATA}")
    root = tmp_path_factory.mktemp("real")
    store = root / "bars"
    import_bars(SHARED_DATA / "vix-daily.csv", "VIX", store)
    import_bars(SHARED_DATA / "spx-daily-close.csv", "SPX", store)
    spx = pd.read_csv(SHARED_DATA / "spx-daily-close.csv")
    for n, symbol in enumerate(TICKERS):
        scaled = spx.assign(CLOSE=spx["CLOSE"] / (10 if symbol == "SPY" else 5 + n))
        path = root / f"{symbol}.csv"
        scaled.to_csv(path, index=False)
        import_bars(path, symbol, store)
    return store


def _entry_days(url: str) -> list[date]:
    """New York dates of the entry orders the run placed."""
    log = AuditStore.open(url, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    as_of = {}
    for seq in range(1, log.count() + 1):
        r = log.get(seq)
        if r is not None and r.decision is not None:
            as_of[r.decision.decision_id] = r.decision.as_of
    log.close()
    ledger = SqlLedgerStore.open(url)
    days = sorted(
        date.fromisoformat(str(as_of[o.request.decision_id])[:10])
        for o in ledger.state.orders.values()
        if o.action_kind in ENTRIES
    )
    ledger.close()
    return days


SPANS = {
    "2008": (date(2008, 11, 17), date(2009, 1, 9), date(2008, 11, 20), date(2008, 12, 1)),
    "2020": (date(2020, 3, 9), date(2020, 4, 24), date(2020, 3, 16), date(2020, 4, 1)),
}


@pytest.fixture(scope="module", params=sorted(SPANS))
def span(request, bundled, real_bars, tmp_path_factory):
    """One backtest per spike, shared by the tests below."""
    first, last, kill_day, resumes_after = SPANS[request.param]
    url = f"sqlite:///{tmp_path_factory.mktemp(request.param) / 'bt.db'}"
    summary = run_backtest(
        bundled, first, last, url, compose.paper_cycle_factory, data_dir=str(real_bars)
    )
    return url, summary, kill_day, resumes_after


def test_trading_resumes_after_the_kill_switch_once_vix_is_back_under_the_tier(span):
    url, summary, kill_day, resumes_after = span
    assert kill_day in summary.mode_days["kill"]
    assert max(summary.mode_days["kill"]) < resumes_after  # the halt ended with the spike
    after = [d for d in _entry_days(url) if d >= resumes_after]
    assert after, "no entry order after the spike"
    state = SqlLedgerStore.open(url).state
    assert (state.mode, state.latched) == ("active", False)


def test_a_week_in_safe_or_under_the_kill_switch_is_labelled_hedged_not_calm_income(span):
    """§12 by the text (D67): VIX > 65 and VIX > 80 are also VIX > 50, a Hedged Week."""
    from scheduler.cli.report_cmds import stored_reports

    url, _, kill_day, _ = span
    weeks = stored_reports(url, "weekly")
    halted = [w for w in weeks if {"safe", "kill"} & set(w["market_modes"])]
    assert halted and all(w["week_type"] != "Calm-Income" for w in halted)
    monday = (kill_day - timedelta(days=kill_day.weekday())).isoformat()
    [kill_week] = [w for w in weeks if w["week_start"] == monday]
    assert kill_week["week_type"] == "Hedged"
