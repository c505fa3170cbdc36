"""``alluse run --live --ib HOST:PORT`` as a user runs it: a subprocess against the stub
gateway on the wall clock, the start-up refusal when the gateway is down, and the arguments
that are refused before anything connects."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.storage.audit_store import AuditStore
from adapters.storage.ledger_store import SqlLedgerStore
from engine.clock import FixedClock
from engine.records.audit import RunMode
from scheduler.cli import main

from .live_world import ACCOUNTS, CASH, make_live_stub

ROOT = Path(__file__).resolve().parents[2]
MAPPING = [arg for sub, code in ACCOUNTS.items() for arg in ("--account", f"{sub}={code}")]


def _alluse(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_decisions(db: Path) -> list:
    if not db.exists():
        return []
    store = AuditStore.open(f"sqlite:///{db}", FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    try:
        return [
            r for r in (store.get(s) for s in range(1, store.count() + 1)) if r.decision is not None
        ]
    except Exception:  # noqa: BLE001 - the daemon may be migrating the file right now
        return []
    finally:
        store.close()


def test_alluse_run_live_against_the_gateway_records_live_decisions_and_stops_on_sigterm(tmp_path):
    gw = make_live_stub()
    gw.start()
    db = tmp_path / "live.db"
    proc = _alluse(
        "run",
        "--live",
        "--ib",
        f"127.0.0.1:{gw.port}",
        *MAPPING,
        "--client-id",
        "31",
        "--db",
        str(db),
    )
    try:
        deadline = time.monotonic() + 90
        while not _live_decisions(db) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert 31 in gw.connected_clients()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        gw.close()

    assert proc.returncode == 0, err[-3000:]
    assert "alluse run - live" in out and "broker state and reconcile" in out
    decisions = _live_decisions(db)
    assert decisions and {r.mode for r in decisions} == {
        RunMode.LIVE
    }  # the start-up risk check, at least
    store = SqlLedgerStore.open(f"sqlite:///{db}")
    try:
        assert sorted(store.state.accounts) == sorted(
            ACCOUNTS
        )  # opened from the gateway's accounts
        assert store.state.balance("GEN") == round(CASH["GEN"] * 100)
    finally:
        store.close()
    assert "Traceback" not in err


def test_alluse_run_live_with_the_gateway_down_exits_3_with_a_message(tmp_path):
    port = _free_port()  # nothing listens there
    db = tmp_path / "live.db"
    proc = _alluse("run", "--live", "--ib", f"127.0.0.1:{port}", *MAPPING, "--db", str(db))
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 3
    assert (
        f"alluse: live trading cannot start: cannot reach TWS/IB Gateway at 127.0.0.1:{port}" in err
    )
    assert "Traceback" not in err and out == ""
    assert _live_decisions(db) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--live"], ["--live:1:1: no-broker", "--account:1:1: no-accounts"]),
        (
            ["--live", "--ib", "gateway", "--account", "GEN=DU1"],
            ["--ib:1:1: bad-address: expected HOST:PORT, got 'gateway'"],
        ),
        (
            ["--live", "--ib", "127.0.0.1:7497", "--account", "GENX=DU1", "--account", "COM"],
            [
                "--account:1:1: bad-account: expected SUB=CODE with SUB one of GEN, REV, COM, MINI-n, got 'GENX=DU1'",
                "--account:1:1: bad-account: expected SUB=CODE with SUB one of GEN, REV, COM, MINI-n, got 'COM'",
            ],
        ),
        (
            ["--live", "--ib", "127.0.0.1:7497", "--account", "GEN=DU1", "--synthetic", "3"],
            ["--synthetic:1:1: live:"],
        ),
        (
            ["--live", "--ib", "127.0.0.1:7497", "--account", "GEN=DU1", "--every", "1"],
            ["--every:1:1: live:"],
        ),
        (["--ib", "127.0.0.1:7497"], ["--ib:1:1: live-only"]),
        (["--account", "GEN=DU1"], ["--account:1:1: live-only"]),
    ],
)
def test_live_arguments_are_refused_before_anything_connects(argv, expected, capsys, tmp_path):
    assert main(["run", *argv, "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert not (tmp_path / "x.db").exists()  # refused before the database was touched
