"""``alluse backtest`` prints honest labels and per-sleeve figures read from its database,
and ``--report`` writes the tearsheet beside the summary."""

from __future__ import annotations

import pytest

from adapters.storage.readers import ReadOnlyDatabase
from scheduler.cli import main
from scheduler.reports.figures import book_figures


def test_backtest_report_flag_writes_the_tearsheet_and_the_summary_has_the_book(tmp_path, capsys):
    db, html = tmp_path / "bt.db", tmp_path / "bt.html"
    argv = ["backtest", "--from", "2024-01-08", "--to", "2024-01-10", "--synthetic", "7"]
    assert main([*argv, "--db", str(db), "--no-progress", "--report", str(html)]) == 0
    out = capsys.readouterr().out
    for label in (
        "orders placed / filled",
        "fills by origin",
        "trades closed",
        "per sleeve",
        "premium collected",
    ):
        assert label in out, label
    assert "trades / fills" not in out  # the old, misleading label
    assert html.exists() and 'data-figure="pnl:total"' in html.read_text("utf-8")


def test_a_report_path_that_is_not_html_is_refused_before_the_run(tmp_path):
    db = tmp_path / "bt.db"
    argv = [
        "backtest",
        "--from",
        "2024-01-08",
        "--to",
        "2024-01-10",
        "--synthetic",
        "7",
        "--db",
        str(db),
    ]
    assert main([*argv, "--no-progress", "--report", str(tmp_path / "bt.pdf")]) == 2
    assert not db.exists()


def test_summary_book_figures_are_the_databases(backtest_db):
    from scheduler.backtest import BacktestSummary

    db = ReadOnlyDatabase.open(str(backtest_db))
    try:
        book = book_figures(db)
        orders = db.orders()
    finally:
        db.close()
    assert "book" in BacktestSummary.__dataclass_fields__
    assert book.orders_placed == len(orders) > 0
    assert book.orders_filled == sum(o.filled > 0 for o in orders)
    assert sum(book.fills_by_origin.values()) == len(book.fills)
    total = book.sleeves["total"]
    parts = [s for k, s in book.sleeves.items() if k != "total"]
    assert total.pnl == pytest.approx(sum(s.pnl for s in parts), abs=0.05)
    assert total.premium == pytest.approx(sum(s.premium for s in parts), abs=0.01)
    assert total.trades_closed == sum(s.trades_closed for s in parts) == book.trades_closed
