"""``alluse paper status`` shows side, quantity, mark, market value and P&L per position and
equity per account, from a real paper ledger after two cycles."""

from __future__ import annotations

import sqlite3

import pytest

from scheduler.cli import main


@pytest.fixture(scope="module")
def paper_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("paper") / "paper.db"
    for day, at in (("2024-01-03", "09:45"), ("2024-01-04", "10:00")):
        assert (
            main(
                ["paper", "step", "--synthetic", "7", "--date", day, "--time", at, "--db", str(db)]
            )
            == 0
        )
    return db


def _status(db, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["paper", "status", "--db", str(db)]) == 0
    return capsys.readouterr().out.splitlines()


def test_every_position_shows_side_quantity_mark_value_and_pnl(paper_db, capsys):
    lines = _status(paper_db, capsys)
    conn = sqlite3.connect(paper_db)
    held = conn.execute(
        "SELECT account, contract_key, quantity, avg_price FROM ledger_position"
    ).fetchall()
    conn.close()
    assert any(q < 0 for _, _, q, _ in held)  # a short option among them
    for account, key, quantity, avg in held:
        (line,) = [ln for ln in lines if ln.split()[:1] == [account] and f" {key} " in ln]
        cells = line[line.index(key) + len(key) :].split()
        side, qty, shown_avg, mark, value, pnl = cells[:6]
        assert side == ("short" if quantity < 0 else "long") and int(qty) == abs(quantity)
        assert float(shown_avg) == pytest.approx(avg, abs=0.005)
        multiplier = 1 if " " not in key else 100
        mark = float(mark.replace(",", ""))
        shown = abs(quantity) * multiplier * 0.005 + 0.01  # the mark is shown to the cent
        assert float(value.replace(",", "")) == pytest.approx(
            quantity * multiplier * mark, abs=shown
        )
        assert float(pnl.replace(",", "")) == pytest.approx(
            quantity * multiplier * (mark - avg), abs=2 * shown
        )


def test_the_account_equity_is_cash_leap_fund_and_the_positions_shown(paper_db, capsys):
    """The account table agrees with the positions table below it (the same marks)."""
    lines = _status(paper_db, capsys)
    header = next(ln for ln in lines if ln.startswith("account"))
    assert header.split()[:3] == ["account", "kind", "equity"]
    conn = sqlite3.connect(paper_db)
    money = dict(
        conn.execute(
            "SELECT account, SUM(amount) FROM ledger_entry WHERE bucket IN ('cash', 'leap_fund')"
            " AND account IN (SELECT id FROM ledger_account) GROUP BY account"
        ).fetchall()
    )
    held: dict[str, float] = {}
    for account, key in conn.execute("SELECT account, contract_key FROM ledger_position"):
        (line,) = [ln for ln in lines if ln.split()[:1] == [account] and f" {key} " in ln]
        value = line[line.index(key) + len(key) :].split()[4]  # side qty avg mark VALUE
        held[account] = held.get(account, 0.0) + float(value.replace(",", ""))
    conn.close()
    assert held  # the two cycles left positions
    for account, cents in money.items():
        (row,) = [
            ln
            for ln in lines
            if ln.split()[:1] == [account] and ln.split()[1] in ("gen", "rev", "com", "mini")
        ]
        expected = cents / 100 + held.get(account, 0.0)
        assert float(row.split()[2].replace(",", "")) == pytest.approx(expected, abs=0.05)
