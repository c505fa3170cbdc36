"""No output shows a secret: a run whose database URL carries a password prints it nowhere (every
command, errors included), checkpoints are named without it, and a live run's IB account codes
are masked by value wherever a record would hold them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_decision

from engine.clock import FixedClock
from engine.execution.broker import Fill, OrderSide
from engine.facts.model import Facts
from engine.market.instruments import ContractSpec, SecType
from engine.records.audit import AuditRecord, ExecutionLink, RunMode
from engine.records.log import InMemoryDecisionLog
from engine.records.masking import DEFAULT_MASKS, mask_code
from scheduler.cli import main
from tests import postgres
from tests.audit.test_audit_cli import EXAMPLES

PASSWORD = "Pw-9f3Kq-never-shown"
ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = ("password", "passwd", "secret", "token", "credential", "broker_account", "api_key")


@pytest.fixture
def secret_url():
    for url in postgres.fresh_schema("alluse_secret"):
        yield url.replace(
            "postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@", 1
        )


def _run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_no_command_of_a_run_prints_the_databases_password(
    secret_url, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALLUSE_CHECKPOINT_DIR", str(tmp_path / "cp"))
    bt = ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-03"]
    outputs = {"backtest": _run(capsys, *bt, "--db", secret_url, "--no-progress")}
    assert outputs["backtest"][0] == 0
    commands = {
        "backtest again (refused)": [*bt, "--db", secret_url, "--no-progress"],
        "audit list": ["audit", "list", "--db", secret_url],
        "audit list --json": ["audit", "list", "--json", "--db", secret_url],
        "audit show": ["audit", "show", "1", "--db", secret_url],
        "audit verify": ["audit", "verify", "--db", secret_url],
        "audit verify --json": ["audit", "verify", "--json", "--db", secret_url],
        "audit export": ["audit", "export", "--db", secret_url],
        "audit export csv": ["audit", "export", "--format", "csv", "--db", secret_url],
        "audit replay": ["audit", "replay", "--all", "--db", secret_url],
        "audit checkpoint export": ["audit", "checkpoint", "export", "--db", secret_url],
        "paper status": ["paper", "status", "--db", secret_url],
        "evaluate --record": [
            "evaluate",
            "--facts",
            str(EXAMPLES / "facts-calm-thursday.yaml"),
            "--record",
            "--db",
            secret_url,
        ],
        "unreachable": [
            "audit",
            "verify",
            "--db",
            f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/test",
        ],
        "unsupported": ["audit", "list", "--db", f"mysql://root:{PASSWORD}@127.0.0.1/db"],
    }
    for name, argv in commands.items():
        outputs[name] = _run(capsys, *argv)
    assert outputs["backtest again (refused)"][0] == 2 and outputs["audit verify"][0] == 0
    assert outputs["unreachable"][0] == 3 and outputs["unsupported"][0] == 3
    leaked = [name for name, (_, text) in outputs.items() if PASSWORD in text]
    assert leaked == []
    verified = json.loads(outputs["audit verify --json"][1])
    assert verified["checkpoint"]["status"] == "matches"  # the PostgreSQL log's checkpoint
    [checkpoint] = (tmp_path / "cp").iterdir()
    assert PASSWORD not in checkpoint.name and PASSWORD not in checkpoint.read_text()


@pytest.mark.slow
def test_the_run_banner_and_its_log_do_not_show_the_password(secret_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLUSE_CHECKPOINT_DIR", str(tmp_path / "cp"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALLUSE_CHECKPOINT_DIR": str(tmp_path / "cp")}
    cmd = [
        sys.executable,
        "-m",
        "scheduler",
        "run",
        "--every",
        "2",
        "--synthetic",
        "1",
        "--db",
        secret_url,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        banner = ""
        while "schedule:" not in banner:  # the banner, printed once started (may wrap)
            line = proc.stdout.readline()
            assert line, proc.stderr.read()[-2000:]
            banner += line
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err[-2000:]
    assert "postgresql+psycopg://postgres:***@" in banner.replace("\n", "")
    assert PASSWORD not in banner + out + err
    # the shutdown sealed the log: its checkpoint is the last word
    assert main(["audit", "verify", "--db", secret_url, "--require-checkpoint"]) == 0


def test_no_model_a_record_holds_has_a_field_named_like_a_secret():
    from engine.execution.broker import OrderRequest, OrderStatus

    def names(schema: dict) -> set[str]:
        found = set(schema.get("properties", {}))
        for sub in schema.get("$defs", {}).values():
            found |= set(sub.get("properties", {}))
        return found

    fields = set()
    for model in (Facts, OrderRequest, OrderStatus, Fill):
        fields |= names(model.model_json_schema())
    assert fields and not [f for f in fields if any(s in f.lower() for s in SECRET_NAMES)]
    assert DEFAULT_MASKS == ()  # so no default pointer names a field that does not exist


def test_a_live_logs_ib_account_codes_are_masked_by_value():
    log = InMemoryDecisionLog(
        RunMode.LIVE, FixedClock(datetime(2025, 1, 10, 15, tzinfo=UTC)), secrets=("U7654321",)
    )
    decision = make_decision(0)
    log.record(decision, "text")
    stock = ContractSpec(sec_type=SecType.STOCK, symbol="MSFT")
    fill = Fill(
        execution_id="e1",
        client_order_id="assignment",
        broker_order_id="",
        account="U7654321",  # an unmapped account keeps its IB code
        contract=stock,
        side=OrderSide.BUY,
        quantity=100,
        price=400.0,
        commission=0.0,
        at=datetime(2025, 1, 10, 15, tzinfo=UTC),
    )
    log.link(ExecutionLink.of(decision.decision_id, "fill", fill))

    record = AuditRecord.from_row(log.rows[1])
    assert record.body["link"]["data"]["account"] == "***"
    assert "/link/data/account" in record.masked
    assert all("U7654321" not in row.body for row in log.rows)
    assert mask_code("U7654321") == "U7****21"
