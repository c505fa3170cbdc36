"""Exports a reviewer can use: actions (decision, time, rule, action, account, symbol, verdict,
order ids), trades and fills, in CSV, JSON lines and Parquet, from a real backtest's log."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.records.export import ACTION_COLUMNS, FILL_COLUMNS, TRADE_COLUMNS
from scheduler.cli import main
from tests.audit.test_replay_pipeline import _decisions


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("export") / "bt.db")
    argv = ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-09"]
    assert main([*argv, "--db", path, "--no-progress"]) == 0
    return path


def _csv(capsys, db: str, table: str) -> list[dict]:
    capsys.readouterr()
    assert main(["audit", "export", "--db", db, "--table", table, "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_actions_have_one_row_per_action_with_its_verdict_and_orders(db, capsys):
    rows = _csv(capsys, db, "actions")
    decisions = [r.decision for r in _decisions(db)]
    assert list(rows[0]) == list(ACTION_COLUMNS)
    assert len(rows) == sum(len(d.actions) for d in decisions)
    first = decisions[0]
    mine = [r for r in rows if r["decision_id"] == first.decision_id]
    assert [r["action"] for r in mine] == [a.kind for a in first.actions]
    assert [r["rule"] for r in mine] == [a.rule for a in first.actions]
    assert {r["verdict"] for r in rows} <= {"approved", "denied"}
    traded = [r for r in rows if r["order_ids"]]
    assert traded and all(r["verdict"] == "approved" for r in traded)


def test_trades_and_fills_name_their_decision_and_orders(db, capsys):
    actions = _csv(capsys, db, "actions")
    trades = _csv(capsys, db, "trades")
    fills = _csv(capsys, db, "fills")
    assert list(trades[0]) == list(TRADE_COLUMNS) and list(fills[0]) == list(FILL_COLUMNS)
    order_ids = {o for r in actions for o in r["order_ids"].split("; ") if o}
    assert order_ids == {t["client_order_id"] for t in trades}
    filled = {t["client_order_id"] for t in trades if t["state"] == "filled"}
    assert filled and filled <= {f["client_order_id"] for f in fills}
    assert all(f["decision_id"].startswith("d-") and f["execution_id"] for f in fills)


def test_parquet_holds_the_same_rows_as_csv(db, capsys, tmp_path):
    for table in ("actions", "trades", "fills"):
        path = tmp_path / f"{table}.parquet"
        assert (
            main(
                [
                    "audit",
                    "export",
                    "--db",
                    db,
                    "--table",
                    table,
                    "--format",
                    "parquet",
                    "-o",
                    str(path),
                ]
            )
            == 0
        )
        parquet = pq.read_table(path).to_pylist()
        rows = _csv(capsys, db, table)
        assert [r["decision_id"] for r in parquet] == [r["decision_id"] for r in rows]
        assert pq.read_table(path).column_names == list(rows[0])


def test_jsonl_rows_are_canonical_objects(db, capsys):
    capsys.readouterr()
    assert main(["audit", "export", "--db", db, "--table", "fills"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(set(json.loads(x)) == set(FILL_COLUMNS) for x in lines)


def test_parquet_needs_a_file_and_a_table(db, capsys, tmp_path):
    assert main(["audit", "export", "--db", db, "--table", "fills", "--format", "parquet"]) == 2
    out = tmp_path / "r.parquet"
    assert main(["audit", "export", "--db", db, "--format", "parquet", "-o", str(out)]) == 2
    assert not Path(out).exists()
