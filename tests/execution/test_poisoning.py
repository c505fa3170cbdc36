"""Inputs that could poison the ledger are refused with a located error and nothing written
(issue 13): prices under the tick or over the sanity bound, booleans where numbers go, money
past what cents hold, bad capital, oversized files, bad seeds and dates, steps outside a
session, an unsupported database URL, and a market source switched under a paper ledger."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from constitution.errors import FactsInvalid, InvalidInput
from constitution.yamlsafe import MAX_BYTES
from engine.facts.load import load_facts_text
from engine.facts.model import MAX_CAPITAL, MAX_MONEY, MAX_PRICE, PRICE_TICK
from scheduler.cli import main, paper_cmds
from tests.execution.helpers import EXAMPLE_FACTS, facts_file

MINIMAL = """
as_of: {as_of}
market:
  vix: 18.4
  underlyings:
    AAPL: {{price: {price}, atr5: 3.1}}
accounts:
  - {{id: GEN, kind: gen, equity: 1000, base_equity: 1000, high_water_mark: 1000, cash: {cash},
      opened: 2026-01-02}}
"""


def _facts(price="228.5", cash="1000", as_of="2026-11-19T10:15:00-05:00"):
    return load_facts_text(MINIMAL.format(price=price, cash=cash, as_of=as_of), "f.yaml")


def _problem(fn) -> tuple[str, str, str]:
    with pytest.raises(InvalidInput) as exc:
        fn()
    [p] = exc.value.problems
    return p.code, p.path, p.message


@pytest.mark.parametrize(
    "price, ok",
    [
        (PRICE_TICK, True),  # a cent: the tick
        (0.004, False),  # below it: the 10.7 M shares at $0.00 of issue 13
        (MAX_PRICE, True),
        (MAX_PRICE * 1.001, False),
    ],
)
def test_an_underlying_price_is_between_the_tick_and_the_sanity_bound(price, ok):
    if ok:
        assert _facts(price=repr(price)).market.underlyings["AAPL"].price == price
        return
    code, path, _ = _problem(lambda: _facts(price=repr(price)))
    assert (code, path) == ("range", "market.underlyings.AAPL.price")


@pytest.mark.parametrize("value", ["true", "false", '"228.5"'])
def test_a_boolean_or_a_string_where_a_number_goes_is_refused_not_read_as_a_number(value):
    code, path, message = _problem(lambda: _facts(price=value))
    assert path == "market.underlyings.AAPL.price" and code == "type"
    assert "valid number" in message


@pytest.mark.parametrize("cash, ok", [(MAX_MONEY, True), (MAX_MONEY * 10, False)])
def test_money_is_bounded_where_cents_stay_exact(cash, ok):
    if ok:
        assert _facts(cash=repr(cash)).accounts[0].cash == cash
    else:
        assert _problem(lambda: _facts(cash=repr(cash)))[:2] == ("range", "accounts[0].cash")


@pytest.mark.parametrize("capital", [-1_000_000.0, 0.0, float("nan"), float("inf"), 1e300])
def test_bad_capital_is_refused_before_the_database_is_touched(tmp_path, capsys, capital):
    db = tmp_path / "never.db"
    code = main(
        [
            "paper",
            "step",
            "--synthetic",
            "1",
            "--date",
            "2024-01-11",
            "--capital",
            repr(capital),
            "--db",
            f"sqlite:///{db}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "<args>:1:1: range: --capital: capital is a positive amount" in err
    assert "Traceback" not in err and not db.exists()


def test_capital_up_to_the_bound_is_accepted_and_past_it_refused():
    assert paper_cmds._capital(argparse.Namespace(capital=MAX_CAPITAL)) == MAX_CAPITAL
    with pytest.raises(InvalidInput):
        paper_cmds._capital(argparse.Namespace(capital=MAX_CAPITAL + 1))


def test_an_oversized_facts_file_is_refused_without_reading_it_whole(tmp_path, capsys):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(8 * 1024**3)  # a sparse 8 GB file: read whole it would exhaust memory
    db = tmp_path / "never.db"
    code = main(["paper", "step", "--facts", str(huge), "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2 and f"{huge}:1:1: too-large: file is over {MAX_BYTES} bytes" in err
    assert not db.exists()


def test_a_facts_file_at_the_size_limit_is_read(tmp_path):
    from constitution.yamlsafe import load_file

    text = EXAMPLE_FACTS.read_text()
    padded = tmp_path / "padded.yaml"
    padded.write_text(text + "#" * (MAX_BYTES - len(text.encode()) - 1) + "\n")
    assert padded.stat().st_size == MAX_BYTES
    assert load_file(padded).data["market"]["vix"] == 18.4


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--synthetic", "-5", "--date", "2024-01-11"], "range: --synthetic: a seed is 0 or more"),
        (
            ["--synthetic", "1", "--date", "1999-12-31"],
            "range: --date: the synthetic market starts",
        ),
        (["--synthetic", "1", "--date", "2036-01-02"], "range: --date: 2036-01-02 is outside"),
        (["--synthetic", "1", "--date", "2024-01-13"], "not-a-session: --date: 2024-01-13 is not"),
    ],
)
def test_bad_seeds_dates_and_days_without_a_session_are_exit_2_with_one_located_line(
    tmp_path, capsys, args, expected
):
    db = tmp_path / "never.db"
    code = main(["paper", "step", *args, "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2 and f"<args>:1:1: {expected}" in err
    assert "Traceback" not in err and not db.exists()


def test_a_facts_step_on_a_day_without_a_session_is_refused_located(tmp_path, capsys):
    saturday = tmp_path / "sat.yaml"
    saturday.write_text(
        MINIMAL.format(price="228.5", cash="1000", as_of="2026-11-21T10:15:00-05:00")
    )
    with pytest.raises(FactsInvalid):  # the same file is fine for `alluse evaluate`...
        from adapters.market_data.facts_market import FactsMarketData

        FactsMarketData.load(saturday).require_session()
    db = tmp_path / "never.db"
    code = main(["paper", "step", "--facts", str(saturday), "--db", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2 and f"{saturday}:2:1: not-a-session: as_of: 2026-11-21 is not" in err
    assert not db.exists()


@pytest.mark.parametrize("verb", [["paper", "step", "--facts", str(EXAMPLE_FACTS)], ["run"]])
def test_an_unsupported_database_url_is_one_line_and_exit_3(capsys, verb):
    code = main([*verb, "--db", "mysql://user@host/db"])
    err = capsys.readouterr().err
    assert code == 3 and err.strip().splitlines() == [
        "alluse: unsupported database URL mysql://user@host/db: use sqlite:///FILE or "
        "postgresql+psycopg://..."
    ]


# --------------------------------------------------------------------------- one market source


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_paper_ledger_refuses_another_market_source_unless_asked(tmp_path, capsys):
    db = tmp_path / "paper.db"
    url = f"sqlite:///{db}"
    tsla = "    TSLA: {price: 330.0, atr5: 14.0}\n"
    full = facts_file(  # prices every Mag-7 share the synthetic Com-Acc is seeded with
        tmp_path,
        "all.yaml",
        (
            tsla,
            tsla + "    GOOGL: {price: 176.0, atr5: 3.3}\n    META: {price: 560.0, atr5: 9.0}\n",
        ),
    )
    synthetic = ["paper", "step", "--synthetic", "7", "--date", "2026-11-19", "--db", url]
    assert main(synthetic) == 0
    before = _dump(db)
    capsys.readouterr()

    # a facts file after a synthetic run would reprice everything: refused, nothing written
    assert main(["paper", "step", "--facts", str(full), "--db", url]) == 2
    err = capsys.readouterr().err
    assert (
        "<args>:1:1: market-source: --facts: the paper ledger's market is synthetic seed 7, "
        "this step's is a facts file" in err
    )
    assert main([*synthetic[:3], "8", *synthetic[4:]]) == 2  # another seed is another market
    assert "this step's is synthetic seed 8" in capsys.readouterr().err
    assert _dump(db) == before

    # the same source goes on; a switch asked for explicitly is made and recorded
    assert main([*synthetic[:6], "--time", "10:30", *synthetic[6:]]) == 0
    assert main(["paper", "step", "--facts", str(full), "--new-market", "--db", url]) == 0
    from adapters.storage.ledger_store import SqlLedgerStore

    store = SqlLedgerStore.open(url)
    sources = [n["source"] for n in store.notes_of("market-source")]
    store.close()
    assert sources == ["synthetic seed 7", "a facts file"]
