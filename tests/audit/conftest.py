"""Fixtures of the audit-log suite: decisions, and a database per backend.

``backend_url`` runs each test on a SQLite file and on PostgreSQL (``tests.postgres``: a fresh
schema per test, dropped afterwards).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.storage.audit_store import AuditStore
from engine.clock import FixedClock
from engine.records.decision import (
    Action,
    ConstitutionRef,
    Decision,
    Firing,
    Verdict,
    decision_id_for,
)
from tests import postgres

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONSTITUTION_TEXT = "version: '1.3'\n# the constitution's source text, kept for replay\n"


def make_decision(
    i: int = 0,
    *,
    account: str = "GEN",
    kind: str = "open_put",
    rule: str = "entry",
    approved: bool = True,
    vix: float = 18.5,
    as_of: str | None = None,
    constitution: ConstitutionRef | None = None,
    extra_facts: dict | None = None,
) -> Decision:
    constitution = constitution or ConstitutionRef(version="1.3", digest="sha256:" + "c1" * 32)
    facts = {
        "as_of": as_of or f"2026-01-{5 + i % 20:02d}T15:00:00Z",
        "market": {"vix": vix, "underlyings": {"TSLA": {"price": 250.0 + i, "atr5": 9.5}}},
        "accounts": [{"id": account, "kind": "gen", "equity": 100000.0, "positions": []}],
        **(extra_facts or {}),
    }
    facts_digest = "sha256:" + f"{i:064x}"
    return Decision(
        decision_id=decision_id_for(constitution.digest, facts_digest + vix.hex() + account + kind),
        as_of=facts["as_of"],
        constitution=constitution,
        facts_digest=facts_digest,
        facts=facts,
        derived={"account": {account: {"mode": "active"}}},
        fired=(
            Firing(
                rule=rule,
                clause="when",
                salience=10,
                account=account,
                symbol="TSLA",
                bindings=(f"market.vix={vix} < params.vix.normal=20", f"reason-{i:04d}"),
            ),
        ),
        actions=(
            Action(
                kind=kind,
                account=account,
                symbol="TSLA",
                rule=rule,
                clause="when",
                salience=10,
                params={"delta": 0.3},
                reason=f"weekly income entry {i}",
            ),
        ),
        verdicts=(
            Verdict(action=0, approved=approved, reasons=() if approved else ("max contracts",)),
        ),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    yield from postgres.fresh_schema("alluse_t")


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def store(backend_url, clock):
    s = AuditStore.open(backend_url, clock)
    yield s
    s.close()


def raw_execute(url: str, *statements: str) -> None:
    """Write to the database behind the store's back, triggers off: how an attacker (or a
    disk fault) would change it. Never used by product code."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for t in ("audit_record_no_update", "audit_record_no_delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {t}")
            for s in statements:
                conn.execute(s)
        finally:
            conn.close()
        return
    import psycopg

    schema = url.split("search_path%3D")[1].split("&")[0]
    with psycopg.connect(postgres.psycopg_url(url), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("ALTER TABLE audit_record DISABLE TRIGGER USER")
        for s in statements:
            conn.execute(s)
