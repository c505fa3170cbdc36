"""Crash safety: 200 evaluate-plan-submit cycles in a subprocess killed with SIGKILL at
random points and restarted. Afterwards: no duplicate order, every order traces to an intent
and a recorded decision, every venue fill is booked exactly once and linked in the audit log
once per decision it traces to, the ledger balances and matches the venue's positions, and the
audit chain verifies."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adapters.brokers.paper import PaperBroker
from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
from engine.clock import WallClock
from engine.execution.broker import OrderState
from engine.execution.ledger import CAPITAL, total
from engine.execution.resume import position_differences
from engine.records.audit import RecordType

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 200
KILLS = 8


def _progress(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _run_with_kills(url: str, progress: Path) -> int:
    rng = random.Random(20240108)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.execution.kill9_child", url, str(progress), str(CYCLES)]
    kills = 0
    while True:
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        if kills < KILLS:
            seen = _progress(progress)
            deadline = time.monotonic() + 60
            while (
                _progress(progress) == seen and child.poll() is None and time.monotonic() < deadline
            ):
                time.sleep(0.02)  # wait until this run is inside its cycles
            time.sleep(rng.uniform(0.0, 0.4))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
                kills += 1
                continue
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()[-3000:]
        return kills


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_no_duplicate_and_a_balanced_verified_state(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill9.db'}"
    progress = tmp_path / "progress"
    kills = _run_with_kills(url, progress)
    assert kills >= 3 and _progress(progress) == CYCLES
    _check_invariants(url)


def _check_invariants(url: str) -> None:
    store = SqlLedgerStore.open(url)
    venue = PaperBroker(store=SqlVenueStore(store.engine))
    audit = AuditStore(store.engine, WallClock())
    state = store.state

    # the audit chain verifies, and every order traces to an intent and a recorded decision
    assert audit.verify().ok
    requests = venue.requests()
    assert requests, "the cycles placed orders"
    for r in requests:
        assert r.client_order_id in state.orders
        assert audit.for_decision(r.decision_id)[0].record_type is RecordType.DECISION

    # no duplicate: per (decision, action, contract, side) the orders are the slices 0..k-1 of
    # ONE plan (plus at most one retry-smaller child each), never a second copy
    legs: dict = {}
    for r in requests:
        decision, action, leg = r.client_order_id.split(":")
        if leg.endswith(".r"):
            continue
        legs.setdefault((decision, action, r.contract.key, r.side), []).append(leg)
    for key, found in legs.items():
        letter = found[0].rstrip("0123456789")
        assert sorted(found) == sorted(f"{letter}{n}" for n in range(len(found))), key

    # every venue fill booked exactly once; the ledger balances and matches the venue
    fills = venue.fills()
    ids = [f.execution_id for f in fills]
    assert len(ids) == len(set(ids))
    assert {i for i in state.applied if i in set(ids)} == set(ids)
    links = Counter(
        (r.decision_id, r.link.data["execution_id"])
        for r in audit.iter_records(AuditQuery(record_type="link", limit=None))
        if r.link.kind == "fill"
    )
    assert {eid for _, eid in links} == set(ids), (
        "every fill (ours, expiries, assignments) is linked"
    )
    assert max(links.values()) == 1, [k for k, n in links.items() if n > 1]
    assert total(state) == 0 and store.entries_total() == 0
    assert position_differences(state, venue) == []
    premiums = sum(
        round((f.price * f.quantity * f.contract.multiplier) * 100)
        * (1 if f.side.value == "SELL" else -1)
        - round(f.commission * 100)
        for f in fills
    )
    internal = sum(v for (acct, _), v in state.balances.items() if not acct.startswith("@"))
    assert internal == -state.balance(CAPITAL) + premiums
    store.close()


WORKING_CYCLES = 30  # three sessions: Monday calls, Wednesday puts
KILL_AT_SUBMITS = (1, 1, 1, 1)  # each run dies right after its first limit order reached the venue


@pytest.mark.slow
def test_sigkill_with_a_working_order_then_resume_works_it_to_a_fill_or_cancel(
    tmp_path, backend_url
):
    """Issue 13: the order a crash leaves working continues its ladder after the restart,
    every step linked to its decision; the book stays exactly right (SQLite, PostgreSQL)."""
    url = backend_url
    progress = tmp_path / "progress"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "tests.execution.kill9_child",
        url,
        str(progress),
        str(WORKING_CYCLES),
    ]
    runs = 0
    while _progress(progress) < WORKING_CYCLES:
        nth = KILL_AT_SUBMITS[runs] if runs < len(KILL_AT_SUBMITS) else 0
        run = subprocess.run(
            cmd,
            cwd=ROOT,
            env={**env, "KILL9_AT_SUBMIT": str(nth)},
            capture_output=True,
            timeout=300,
        )
        assert run.returncode in (-signal.SIGKILL, 0), run.stderr.decode()[-3000:]
        runs += 1
        assert runs < 20
    killed = (tmp_path / "progress.killed").read_text().split()
    assert len(killed) >= 3, "the runs died with working orders"
    _check_invariants(url)

    store = SqlLedgerStore.open(url)
    audit = AuditStore(store.engine, WallClock())
    found: dict[str, set[str]] = {}  # order -> what the restart's reconciliation reported
    for row in _ops(store, "Note"):
        note = json.loads(row)
        found.setdefault(dict(note["data"]).get("ref"), set()).add(note["kind"])
    for coid in killed:
        order = store.state.orders[coid]
        assert order.state in (OrderState.FILLED, OrderState.CANCELLED), (coid, order.state)
        steps = [
            r.link.data["ladder"]
            for r in audit.for_decision(order.request.decision_id)
            if r.link is not None and r.link.ref == coid and "ladder" in r.link.data
        ]
        if "worked" in found.get(coid, ()):  # still working at the restart: worked on
            assert steps and steps[0]["step"] == "replace" and steps[0]["index"] == 1, steps
            if order.state is OrderState.CANCELLED:
                assert steps[-1]["step"] == "cancel"
        else:  # the venue ended it while the process was down (filled, or DAY expiry)
            assert found.get(coid) == {"closed"} and not steps, (coid, found.get(coid))
    assert any("worked" in found.get(c, ()) for c in killed)
    assert not store.state.open_orders()  # nothing rests: every order filled or cancelled
    store.close()


def _ops(store: SqlLedgerStore, kind: str) -> list[str]:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(text("SELECT body FROM ledger_op WHERE kind = :k"), {"k": kind})
        ]
