"""Bad facts: exit 2, every problem named by its path, never a traceback, never a decision."""

from __future__ import annotations

import re

import pytest

from scheduler.cli import main

GOOD = """\
as_of: 2026-11-19T10:15:00-05:00
market:
  vix: 18.4
  underlyings:
    AAPL: {price: 228.5, atr5: 3.1}
accounts:
  - id: GEN
    kind: gen
    equity: 412000
    base_equity: 400000
    high_water_mark: 420000
    cash: 395000
    opened: 2026-01-02
    positions:
      - {symbol: AAPL, right: put, side: short, strike: 225, expiry: 2026-11-20, contracts: 10, entry_credit: 1.85, mark: 0.90, delta: -0.41}
"""


def _run(tmp_path, capsys, text):
    path = tmp_path / "facts.yaml"
    path.write_text(text)
    code = main(["evaluate", "--facts", str(path), "--json"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.err.splitlines(), out.out


def _paths(lines):
    return [m.group(1) for ln in lines if (m := re.match(r"^.+?:\d+:\d+: [a-z-]+: (\S+?):", ln))]


def test_good_facts_evaluate(tmp_path, capsys):
    code, _, out = _run(tmp_path, capsys, GOOD)
    assert code == 0 and out.startswith("{")


@pytest.mark.parametrize(
    ("old", "new", "path", "code_name"),
    [
        ("  vix: 18.4\n", "", "market.vix", "missing"),
        ("  vix: 18.4\n", "  vix: high\n", "market.vix", "type"),
        ("  vix: 18.4\n", "  vix: .nan\n", "market.vix", "not-finite"),
        ("  vix: 18.4\n", "  vix: .inf\n", "market.vix", "not-finite"),
        ("{price: 228.5,", "{price: -228.5,", "market.underlyings.AAPL.price", "range"),
        ("    kind: gen\n", "    kind: generator\n", "accounts[0].kind", "bad-value"),
        ("expiry: 2026-11-20", "expiry: 2026-11-18", "accounts[0].positions[0].expiry", "expired"),
        ("as_of: 2026-11-19T10:15:00-05:00", "as_of: 2026-11-19T10:15:00", "as_of", "no-offset"),
        (
            "{symbol: AAPL, right: put",
            "{symbol: MSFT, right: put",
            "accounts[0].positions[0].symbol",
            "unknown-symbol",
        ),
        (
            "    cash: 395000\n",
            "    cash: 395000\n    cahs: 1\n",
            "accounts[0].cahs",
            "unknown-key",
        ),
        (
            "    high_water_mark: 420000\n",
            "    high_water_mark: 1000\n",
            "accounts[0].high_water_mark",
            "inconsistent",
        ),
        ("contracts: 10,", "contracts: 0,", "accounts[0].positions[0].contracts", "range"),
    ],
)
def test_bad_fact_is_named_by_its_path(tmp_path, capsys, old, new, path, code_name):
    code, lines, out = _run(tmp_path, capsys, GOOD.replace(old, new))
    assert code == 2
    assert out == ""  # no decision is printed for bad facts
    assert path in _paths(lines), lines
    assert any(f": {code_name}: {path}:" in ln for ln in lines), lines


def test_every_bad_fact_is_reported_at_once(tmp_path, capsys):
    bad = GOOD.replace("  vix: 18.4\n", "  vix: .nan\n").replace(
        "    kind: gen\n", "    kind: generator\n"
    )
    code, lines, _ = _run(tmp_path, capsys, bad)
    assert code == 2
    assert {"market.vix", "accounts[0].kind"} <= set(_paths(lines))


def test_json_facts_are_accepted(tmp_path, capsys):
    import json

    import yaml

    path = tmp_path / "facts.json"
    path.write_text(json.dumps(yaml.safe_load(GOOD), default=str))
    code = main(["evaluate", "--facts", str(path), "--json"])
    assert code == 0
    assert capsys.readouterr().out.startswith("{")


def test_missing_facts_file_is_exit_2(capsys):
    assert main(["evaluate", "--facts", "/nonexistent/facts.yaml"]) == 2
    assert "file-not-found" in capsys.readouterr().err
