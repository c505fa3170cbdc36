"""`alluse data import|facts` through the real CLI entry point."""

from __future__ import annotations

import json
from datetime import date

import yaml

from engine.facts.model import Facts
from engine.market import calendar
from scheduler.cli import main


def test_data_facts_synthetic_prints_a_valid_yaml_facts_document(capsys):
    assert main(["data", "facts", "--date", "2026-11-19", "--synthetic", "7"]) == 0

    facts = Facts.model_validate(yaml.safe_load(capsys.readouterr().out))
    assert facts.as_of.isoformat() == "2026-11-19T10:00:00-05:00"
    assert {"AAPL", "NVDA", "SPY", "META"} <= set(facts.market.underlyings)
    assert [a.id for a in facts.accounts] == ["GEN", "REV", "COM"]


def test_data_facts_is_reproducible_from_the_seed(capsys):
    args = [
        "data",
        "facts",
        "--date",
        "2026-11-27",
        "--time",
        "12:45",
        "--synthetic",
        "3",
        "--format",
        "json",
    ]
    main(args)
    first = capsys.readouterr().out
    main(args)

    assert capsys.readouterr().out == first
    assert json.loads(first)["market"]["early_close"] is True


def test_data_facts_refuses_a_holiday_with_exit_2(capsys):
    assert main(["data", "facts", "--date", "2026-11-26", "--synthetic", "1"]) == 2

    err = capsys.readouterr().err
    assert "not-a-session" in err and "2026-11-25" in err and "Traceback" not in err


def test_data_facts_refuses_dates_outside_the_calendar(capsys):
    assert main(["data", "facts", "--date", "1970-01-02", "--synthetic", "1"]) == 2
    assert "out-of-range" in capsys.readouterr().err


def test_import_then_facts_from_the_store(tmp_path, capsys, vix_csv):
    store = tmp_path / "bars"
    aapl = tmp_path / "AAPL.csv"
    rows = ["date,open,high,low,close,volume"]
    for d in calendar.sessions_between(date(2026, 9, 1), date(2026, 11, 20)).astype(str):
        rows.append(f"{d},230,232,228,231,1000000")
    aapl.write_text("\n".join(rows) + "\n")

    assert main(["data", "import", str(aapl), "--into", str(store)]) == 0
    capsys.readouterr()
    assert main(["data", "import", str(vix_csv), "--into", str(store), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0]["symbol"] == "VIX" and report[0]["rows_stored"] > 9000  # named by its file

    code = main(
        [
            "data",
            "facts",
            "--date",
            "2026-07-16",
            "--store",
            str(store),
            "--symbols",
            "AAPL",
            "--format",
            "json",
        ]
    )
    facts = json.loads(capsys.readouterr().out)
    assert code == 0
    # AAPL bars start in September: no ATR, no price on 07-16 -> left out, with findings
    assert "AAPL" not in facts["market"]["underlyings"]
    assert {"missing-quote", "no-price"} <= {
        q["code"] for q in facts["quality"] if q["subject"] == "AAPL"
    }


def test_import_of_a_file_with_no_usable_row_exits_2(tmp_path, capsys):
    bad = tmp_path / "BAD.csv"
    bad.write_text("date,close\n2026-11-16,nan\n2026-11-17,-1\n")

    assert main(["data", "import", str(bad), "--store", str(tmp_path / "s")]) == 2
    assert "no-usable-rows" in capsys.readouterr().err


def test_import_into_a_store_that_cannot_be_written_is_a_located_exit_2(tmp_path, capsys):
    f = tmp_path / "ABC.csv"
    f.write_text("date,close\n2026-11-16,1\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")

    assert main(["data", "import", str(f), "--into", str(a_file / "store")]) == 2
    err = capsys.readouterr().err
    assert f"{a_file / 'store'}:1:1: store-unwritable: cannot write here: Not a directory" in err
    assert a_file.read_text() == "mine"


def test_import_needs_a_symbol_when_the_file_name_is_not_one(tmp_path, capsys):
    f = tmp_path / "my prices.csv"
    f.write_text("date,close\n2026-11-16,1\n")

    assert main(["data", "import", str(f), "--into", str(tmp_path / "s")]) == 2
    assert "bad-symbol" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()

    assert main(["data", "import", f"ABC={f}", "--into", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "ABC.csv").is_file()


def test_import_symbol_names_a_file_whose_name_does_not_say_it(tmp_path, capsys):
    bars = tmp_path / "downloaded.csv"  # no symbol in the name
    rows = ["date,open,high,low,close,volume"]
    for d in calendar.sessions_between(date(2026, 9, 1), date(2026, 9, 30)).astype(str):
        rows.append(f"{d},230,232,228,231,1000000")
    bars.write_text("\n".join(rows) + "\n")
    store = tmp_path / "bars"

    argv = ["data", "import", str(bars), "--into", str(store), "--json"]
    assert main([*argv, "--symbol", "msft"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["symbol"] == "MSFT" and report["rows_stored"] == len(rows) - 1
    two = ["data", "import", str(bars), str(bars), "--into", str(store), "--symbol", "MSFT"]
    assert main(two) == 2  # two files, one --symbol
    assert "--symbol names one file" in capsys.readouterr().err
