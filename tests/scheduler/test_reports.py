"""§11 reports: produced by the scheduler at their cuts (the week's, month's and quarter's last
session), stored as note links in the audit log, printed by `alluse report` (D63)."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from engine.execution.books import quarter_books
from engine.execution.ledger import LedgerState, quarter_of
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot
from scheduler.backtest import run_backtest
from scheduler.cadence import NEW_YORK
from scheduler.cli import main
from scheduler.reports.periodic import build_month_report
from tests.scheduler.fake_cycle import FakeCycle


class BooksCycle(FakeCycle):
    """A fake cycle with the quarter's books of an empty ledger."""

    def period_books(self, at: datetime) -> dict:
        view = MarketView(MarketSnapshot(as_of=at))
        books = quarter_books(
            self.constitution.model, LedgerState(), [], view, quarter_of(view.today)
        )
        return books.model_dump(mode="json")


def _factory(**kw):
    from adapters.storage.audit_store import open_decision_log

    def factory(ctx):
        log = open_decision_log(ctx.db_url, ctx.mode, ctx.clock)
        return lambda constitution: BooksCycle(constitution, log=log, **kw)

    return factory


def _equity(at: datetime) -> dict[str, float]:
    return {"GEN": 40_000.0 + 100.0 * at.day, "REV": 30_000.0, "COM": 30_000.0}


@pytest.fixture(scope="module")
def url(bundled, tmp_path_factory):
    """Two weeks over a quarter's end on a Tuesday (2026-03-31)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'bt.db'}"
    run_backtest(bundled, date(2026, 3, 23), date(2026, 4, 3), url, _factory(equity=_equity))
    return url


def _report(capsys, url: str, *args: str) -> tuple[int, str]:
    code = main(["report", *args, "--db", url])
    return code, capsys.readouterr().out


def test_the_quarter_and_month_reports_are_made_at_the_quarters_last_session(url, capsys):
    code, out = _report(capsys, url, "quarterly", "--json")
    [body] = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and body["quarter"] == "2026Q1"
    assert body["cut_at"] == "2026-03-31T16:30:00-04:00"  # Tuesday, not the week's Friday
    code, out = _report(capsys, url, "monthly", "--json")
    [march] = [json.loads(line) for line in out.splitlines()]
    assert march["month"] == "2026-03" and march["cut_at"] == "2026-03-31T16:30:00-04:00"


def test_weekly_reports_are_cut_on_the_weeks_last_session_only(url, capsys):
    code, out = _report(capsys, url, "weekly", "--json")
    weeks = [json.loads(line) for line in out.splitlines()]
    assert [w["week_start"] for w in weeks] == ["2026-03-23", "2026-03-30"]
    assert weeks[1]["cut_at"] == "2026-04-02T16:30:00-04:00"  # Good Friday 2026-04-03


def test_report_last_keeps_only_the_most_recent(url, capsys):
    code, out = _report(capsys, url, "weekly", "--json", "--last", "1")
    assert code == 0
    assert [json.loads(line)["week_start"] for line in out.splitlines()] == ["2026-03-30"]
    _, out = _report(capsys, url, "weekly", "--json", "--last", "5")  # more than there are
    assert len(out.splitlines()) == 2


def test_reports_print_as_text(url, capsys):
    _, out = _report(capsys, url, "quarterly")
    assert out.startswith("quarter 2026Q1") and "tax ledger: 0 line(s)" in out
    _, out = _report(capsys, url, "monthly", "--period", "2026-03")
    assert out.startswith("month 2026-03") and "CAGR YTD" in out and "Sharpe" in out
    _, out = _report(capsys, url, "monthly", "--period", "2026-02")
    assert out.strip() == "no monthly report stored for 2026-02"


def test_a_missing_database_is_an_error_not_an_empty_report(tmp_path, capsys):
    code = main(["report", "weekly", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert code == 3 and "Traceback" not in capsys.readouterr().err


def _cycle(at: datetime, total: float):
    from engine.cycle.report import CycleReport

    return CycleReport(
        at=at,
        decision_id="d",
        constitution_version="1.3.1",
        constitution_digest="x",
        market_mode="active",
        equity={"GEN": total},
    )


def test_monthly_metrics_are_plain_arithmetic_on_daily_closes():
    days = [datetime(2026, 1, d, 16, tzinfo=NEW_YORK) for d in (2, 5, 6, 7)]
    reports = [_cycle(at, x) for at, x in zip(days, (100.0, 110.0, 99.0, 121.0), strict=True)]
    opening = _cycle(datetime(2025, 12, 31, 16, tzinfo=NEW_YORK), 100.0)
    m = build_month_report(reports, opening, days[-1])
    assert m.start_equity == 100.0 and m.end_equity == 121.0
    assert m.drawdown_ytd == pytest.approx(0.1)  # 110 -> 99
    assert m.drawdown_by_account == {"GEN": pytest.approx(0.1)}
    returns = [0.0, 0.1, 99 / 110 - 1, 121 / 99 - 1]
    mean = sum(returns) / 4
    sd = (sum((r - mean) ** 2 for r in returns) / 3) ** 0.5
    assert m.sharpe_ytd == pytest.approx(round(mean / sd * 252**0.5, 4))
    assert m.sortino_ytd is not None and m.sortino_ytd > m.sharpe_ytd
