"""The tearsheet of a real (short, synthetic) backtest: one self-contained HTML file whose
figures, parsed back out of the HTML, are those the database holds - each recomputed here with
plain SQL, independently of scheduler.reports."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from bs4 import BeautifulSoup

from scheduler.cli import main


@pytest.fixture(scope="module")
def sheet(backtest_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("tearsheet") / "report.html"
    assert main(["report", "backtest", "--db", str(backtest_db), "--html", str(out)]) == 0
    return BeautifulSoup(out.read_text("utf-8"), "html.parser")


@pytest.fixture(scope="module")
def sql(backtest_db):
    conn = sqlite3.connect(f"file:{backtest_db}?mode=ro", uri=True)
    yield conn
    conn.close()


def _figure(soup, name: str) -> str:
    cell = soup.find(attrs={"data-figure": name})
    assert cell is not None, f"no figure {name!r} in the tearsheet"
    return cell["data-value"]


def _number(soup, name: str) -> float:
    return float(_figure(soup, name))


def test_the_tearsheet_opens_offline(sheet):
    scripts = sheet.find_all("script")
    assert scripts and all(not s.get("src") for s in scripts)  # everything inline
    assert not sheet.find_all("link", href=True)
    assert "Plotly.newPlot" in str(sheet) and len(scripts[0].string or "") > 1_000_000
    for chart in ("chart-equity", "chart-drawdown", "chart-modes", "chart-premium-weekly"):
        assert sheet.find(id=chart) is not None, chart


def test_end_equity_and_pnl_per_sleeve_match_the_ledger(sheet, sql):
    last = dict(
        sql.execute(
            "SELECT account, equity FROM ledger_equity e WHERE at = (SELECT MAX(at) FROM ledger_equity WHERE account = e.account)"
        ).fetchall()
    )
    deposits = Counter()
    for kind, body in sql.execute(
        "SELECT kind, body FROM ledger_op WHERE kind IN ('Deposit', 'DepositShares')"
    ):
        b = json.loads(body)
        deposits[b["account"]] += (
            b["amount"] / 100 if kind == "Deposit" else b["shares"] * b["price"]
        )
    assert set(last) == {"GEN", "REV", "COM"}
    for account, cents in last.items():
        assert _number(sheet, f"end_equity:{account}") == pytest.approx(cents / 100, abs=0.005)
        assert _number(sheet, f"pnl:{account}") == pytest.approx(
            cents / 100 - deposits[account], abs=0.01
        )
    total = sum(last.values()) / 100
    assert _number(sheet, "pnl:total") == pytest.approx(total - sum(deposits.values()), abs=0.02)


def test_premium_orders_fills_and_rejections_match_the_log(sheet, sql):
    premium = Counter()
    for account, price, qty, body in sql.execute(
        "SELECT account, price, quantity, body FROM ledger_fill WHERE side = 'SELL'"
    ):
        b = json.loads(body)
        if b["contract"]["sec_type"] == "OPT" and b["origin"] == "order":
            premium[account] += price * qty * b["contract"]["multiplier"]
    assert sum(premium.values()) > 0  # the run sold options
    for account in ("GEN", "REV", "COM"):
        assert _number(sheet, f"premium:{account}") == pytest.approx(premium[account], abs=0.005)
    (placed,) = sql.execute("SELECT COUNT(*) FROM ledger_order").fetchone()
    (filled,) = sql.execute("SELECT COUNT(*) FROM ledger_order WHERE filled > 0").fetchone()
    assert (_number(sheet, "orders_placed"), _number(sheet, "orders_filled")) == (placed, filled)
    origins = Counter(
        json.loads(b)["origin"] for (b,) in sql.execute("SELECT body FROM ledger_fill")
    )
    for origin, n in origins.items():
        assert _number(sheet, f"fills_origin:{origin}") == n
    reasons, kinds = Counter(), Counter()
    for (body,) in sql.execute(
        "SELECT body FROM audit_record WHERE record_type = 'link' AND body LIKE '%\"rejection\"%'"
    ):
        rejection = json.loads(body)["link"]["data"]["rejection"]
        reasons[rejection["reason"]] += 1
        kinds[rejection["kind"]] += 1
    assert reasons
    for reason, n in reasons.items():
        assert _number(sheet, f"rejections:{reason}") == n
    for kind, n in kinds.items():
        assert _number(sheet, f"rejections_kind:{kind}") == n


def test_week_types_and_mode_days_match_the_weekly_reports_and_decisions(sheet, sql):
    weeks = Counter()
    for (body,) in sql.execute(
        "SELECT body FROM audit_record WHERE record_type = 'link' AND body LIKE '%weekly_report%'"
    ):
        data = json.loads(body)["link"]["data"]
        if data.get("event") == "weekly_report":
            weeks[data["week_type"]] += 1
    assert weeks
    for name, n in weeks.items():
        assert _number(sheet, f"week_type:{name}") == n
    days = {
        json.loads(b)["decision"]["as_of"][:10]
        for (b,) in sql.execute("SELECT body FROM audit_record WHERE record_type = 'decision'")
    }
    modes = sum(_number(sheet, f"mode_days:{m}") for m in ("active", "hedged", "safe", "kill"))
    assert modes == len(days)


def test_trades_table_lists_every_closed_trade_and_their_pnls_add_up(sheet):
    rows = sheet.find(id="trades-table").find("tbody").find_all("tr")
    assert len(rows) == _number(sheet, "trades_closed:total")
    pnls = [float(r.find(attrs={"data-value": True})["data-value"]) for r in rows]
    wins = sum(p > 0 for p in pnls)
    if pnls:
        assert _number(sheet, "win_rate:total") == pytest.approx(wins / len(pnls))


def test_metrics_are_present_for_every_sleeve_and_the_total(sheet):
    for name in ("GEN", "REV", "COM", "total"):
        for metric in ("cagr", "volatility", "max_drawdown", "drawdown_days"):
            assert _figure(sheet, f"{metric}:{name}") != "", (metric, name)
        assert 0.0 <= _number(sheet, f"max_drawdown:{name}") < 1.0
        flat = _number(sheet, f"volatility:{name}") == 0.0
        # a sleeve that never moved has no Sharpe ratio (0/0): shown as n/a, never NaN
        assert (_figure(sheet, f"sharpe:{name}") == "") == flat, name


def test_compare_of_a_run_with_itself_shows_no_difference(backtest_db, tmp_path):
    out = tmp_path / "compare.html"
    assert (
        main(
            [
                "report",
                "compare",
                str(backtest_db),
                str(backtest_db),
                "--html",
                str(out),
                "--labels",
                "old",
                "new",
            ]
        )
        == 0
    )
    soup = BeautifulSoup(out.read_text("utf-8"), "html.parser")
    assert _figure(soup, "pnl:a") == _figure(soup, "pnl:b") != ""
    assert float(_figure(soup, "pnl:delta")) == 0.0
    assert "old" in soup.find(id="runs").get_text()


def test_compare_report_is_a_function_returning_html(backtest_db):
    from scheduler.reports.compare import compare_report

    html = compare_report(str(backtest_db), str(backtest_db))
    assert html.startswith("<!doctype html>") and 'id="compare-metrics"' in html


def test_a_missing_database_or_a_wrong_extension_is_a_clear_error(tmp_path, capsys):
    assert (
        main(
            [
                "report",
                "backtest",
                "--db",
                str(tmp_path / "none.db"),
                "--html",
                str(tmp_path / "r.html"),
            ]
        )
        == 3
    )
    assert "no ALL-USE database" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                "backtest",
                "--db",
                str(tmp_path / "none.db"),
                "--html",
                str(tmp_path / "r.pdf"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "none.db").exists()
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                "backtest",
                "--db",
                str(tmp_path / "other.db"),
                "--html",
                str(tmp_path / "r.html"),
            ]
        )
        == 3
    )
    assert "not the database of an ALL-USE run" in capsys.readouterr().err


def test_protocol_level_episodes_are_listed(sheet, sql):
    breached = 0
    for (body,) in sql.execute("SELECT body FROM audit_record WHERE record_type = 'decision'"):
        levels = json.loads(body)["decision"]["derived"].get("positions", {})
        breached += any(v.get("level", 0) >= 1 for v in levels.values())
    assert breached  # the window has a breach
    rows = sheet.find(id="episodes-table").find("tbody").find_all("tr")
    assert rows and all(r.find_all("td")[1].get_text().startswith("L") for r in rows)
    assert sum(int(r.find_all("td")[4].get_text()) for r in rows) >= breached
