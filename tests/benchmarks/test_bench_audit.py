"""Decision-log throughput (pytest-benchmark; figures, not asserts).

Targets (issue 4): append >= 2,000 records/s on a SQLite file with durable commits
(``synchronous=FULL``: every commit is fsynced); verify >= 50,000 records/s.
A single append is one fsync, so its rate is the disk's fsync rate; ``append_decisions``
(one commit per batch, as a backtest writes) is what reaches the append target.
Run: ``pytest tests/benchmarks/test_bench_audit.py --benchmark-enable -q``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest

from adapters.storage.audit_store import AuditStore
from engine.clock import FixedClock
from engine.records.audit import RunMode
from engine.records.chain import verify_chain
from engine.records.decision import Action, ConstitutionRef, Decision, Firing, Verdict
from engine.records.log import InMemoryDecisionLog

CONSTITUTION = ConstitutionRef(version="1.3", digest="sha256:" + "c1" * 32)
TEXTS = {CONSTITUTION.digest: "version: '1.3'\n"}
CLOCK = FixedClock(datetime(2026, 1, 5, 15, tzinfo=UTC))
BATCH = 100
VERIFY_ROWS = 10_000


def _decision(i: int) -> Decision:
    """About 2.5 kB of canonical JSON: three accounts with positions, three firings."""
    positions = [
        {
            "symbol": "TSLA",
            "right": "put",
            "side": "short",
            "strike": 200.0 + k,
            "expiry": "2026-02-20",
            "contracts": 2,
            "entry_credit": 3.1,
        }
        for k in range(3)
    ]
    facts = {
        "as_of": "2026-01-05T15:00:00Z",
        "market": {"vix": 18.5, "underlyings": {"TSLA": {"price": 250.0, "atr5": 9.5}}},
        "accounts": [
            {"id": a, "kind": a.lower(), "equity": 100000.0, "positions": positions}
            for a in ("GEN", "REV", "COM")
        ],
    }
    fired = tuple(
        Firing(
            rule=f"rule-{k}",
            clause="when",
            salience=k,
            account="GEN",
            symbol="TSLA",
            bindings=(f"market.vix=18.5 < {20 + k}",),
        )
        for k in range(3)
    )
    return Decision(
        decision_id=f"d-bench-{i:08d}",
        as_of="2026-01-05T15:00:00Z",
        constitution=CONSTITUTION,
        facts_digest=f"sha256:{i:064x}",
        facts=facts,
        derived={"account": {"GEN": {"mode": "active"}}},
        fired=fired,
        actions=(
            Action(
                kind="open_put",
                account="GEN",
                symbol="TSLA",
                rule="rule-0",
                clause="when",
                salience=0,
                params={"delta": 0.3},
                reason="weekly entry",
            ),
        ),
        verdicts=(Verdict(action=0, approved=True),),
    )


@pytest.fixture
def sqlite_store(tmp_path):
    store = AuditStore.open(str(tmp_path / "bench.db"), CLOCK)
    yield store
    store.close()


def _rate(benchmark, records_per_round: int, target: int) -> None:
    # The median: shared CI machines make the mean swing with other jobs' load.
    median = benchmark.stats.stats.median if benchmark.stats else None
    if median:
        benchmark.extra_info["records_per_s"] = round(records_per_round / median)
    benchmark.extra_info["target_records_per_s"] = target


def test_bench_append_one_decision_per_durable_commit(benchmark, sqlite_store):
    ids = count()
    benchmark.pedantic(
        lambda: sqlite_store.append_decision(
            _decision(next(ids)), RunMode.PAPER, TEXTS[CONSTITUTION.digest]
        ),
        rounds=300,
        warmup_rounds=5,
    )
    _rate(benchmark, 1, 2_000)
    assert sqlite_store.verify().count == next(ids)


def test_bench_append_batches_of_100_per_durable_commit(benchmark, sqlite_store):
    ids = count()

    def batch():
        sqlite_store.append_decisions(
            [_decision(next(ids)) for _ in range(BATCH)], RunMode.BACKTEST, TEXTS
        )

    benchmark.pedantic(batch, rounds=20, warmup_rounds=1)
    _rate(benchmark, BATCH, 2_000)
    assert sqlite_store.verify().count == next(ids)


def test_bench_verify_from_a_sqlite_file(benchmark, sqlite_store):
    for start in range(0, VERIFY_ROWS, 1000):
        sqlite_store.append_decisions(
            [_decision(i) for i in range(start, start + 1000)], RunMode.BACKTEST, TEXTS
        )
    report = benchmark.pedantic(sqlite_store.verify, rounds=3, warmup_rounds=1)
    _rate(benchmark, VERIFY_ROWS, 50_000)
    assert report.ok and report.count == VERIFY_ROWS


def test_bench_verify_chain_of_rows_in_memory(benchmark):
    log = InMemoryDecisionLog(RunMode.BACKTEST, CLOCK)
    for i in range(VERIFY_ROWS):
        log.record(_decision(i), "text")
    report = benchmark.pedantic(verify_chain, args=(log.rows,), rounds=3, warmup_rounds=1)
    _rate(benchmark, VERIFY_ROWS, 50_000)
    assert report.ok and report.count == VERIFY_ROWS


def _checkpoint_round(store: AuditStore, ids) -> None:
    """One decided cycle's share: a record appended, then the checkpoint (heads moved)."""
    store.append_decision(_decision(next(ids)), RunMode.PAPER, TEXTS[CONSTITUTION.digest])
    store.checkpoint(CONSTITUTION.digest)


def test_bench_checkpoint_per_cycle(benchmark, sqlite_store):
    """A durable store (fsync of the checkpoint file and its directory): append + checkpoint."""
    ids = count(200_000)
    benchmark.pedantic(_checkpoint_round, args=(sqlite_store, ids), rounds=200, warmup_rounds=5)


def test_bench_checkpoint_alone(benchmark, sqlite_store):
    """The checkpoint's own cost after a record: heads read, signature, file replaced."""
    ids = count(300_000)

    def setup():
        sqlite_store.append_decision(
            _decision(next(ids)), RunMode.PAPER, TEXTS[CONSTITUTION.digest]
        )
        return (), {}

    benchmark.pedantic(
        lambda: sqlite_store.checkpoint(CONSTITUTION.digest), setup=setup, rounds=200
    )


def test_bench_checkpoint_in_a_backtest_database(benchmark, tmp_path):
    """A backtest's database (reproducible): the checkpoint file is not fsynced."""
    from adapters.storage.database import reproducible

    url = f"sqlite:///{tmp_path / 'bt.db'}"
    reproducible(url)
    store = AuditStore.open(url, CLOCK)
    ids = count(400_000)

    def setup():
        store.append_decision(_decision(next(ids)), RunMode.BACKTEST, TEXTS[CONSTITUTION.digest])
        return (), {}

    try:
        benchmark.pedantic(lambda: store.checkpoint(CONSTITUTION.digest), setup=setup, rounds=200)
    finally:
        store.close()
