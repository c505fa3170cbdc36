"""The approvals store, the alert outbox and the governance records on SQLite and
PostgreSQL: a request's change, its audit-log record and its notification commit together or
not at all; an answer to a request no longer pending is refused and leaves nothing; the
governance tables are append-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from adapters.notify.config import AlertsConfig
from adapters.storage.approvals_store import SqlApprovalStore
from adapters.storage.audit_store import AuditStore
from adapters.storage.governance_store import GovernanceStore
from adapters.storage.outbox import SqlOutbox
from engine.clock import FixedClock
from engine.execution.approvals import (
    NEEDS_KIND,
    ApprovalClosed,
    alert_of,
    answer,
    link_of,
    request,
)
from engine.records.audit import RunMode
from engine.records.decision import Action, ConstitutionRef, Decision
from tests import postgres

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'h.db'}"
    else:
        yield from postgres.fresh_schema("alluse_h")


def _decision() -> Decision:
    fork = Action(kind="fork_account", account="GEN", rule="fork.gen", clause="§2", salience=90,
                  params={"amount": 100000, "creates": "mini"}, reason="fork")  # fmt: skip
    return Decision(decision_id="d-1", as_of=T0.isoformat(),
                    constitution=ConstitutionRef(version="1.3.1", digest="sha256:c"),
                    facts_digest="f", facts={}, derived={}, fired=(), actions=(fork,))  # fmt: skip


def _stores(url: str):
    clock = FixedClock(T0)
    audit = AuditStore.open(url, clock)
    routing = AlertsConfig.model_validate(
        {"destinations": {"ops": {"type": "slack", "url_env": "X"}}, "routes": [{"to": ["ops"]}]}
    )
    outbox = SqlOutbox.open(url, clock, routing)
    return audit, outbox, SqlApprovalStore(audit, outbox)


def test_a_request_its_record_and_its_notification_commit_together(bundled, url):
    audit, outbox, store = _stores(url)
    try:
        receipt = audit.append_decision(_decision(), RunMode.PAPER, "text")
        a = request(bundled.model.governance.approvals, "d-1", (receipt.seq, receipt.hash), 0,
                    _decision().actions[0], "paper", NEEDS_KIND, T0)  # fmt: skip
        store.save(a, None, link_of(a), (alert_of(a),))
        approved = answer(a, True, "ana", "ok", T0 + timedelta(minutes=5))
        store.save(approved, "pending", link_of(approved), (alert_of(approved),))
        count = audit.count()

        late = answer(a, False, "bo", "no", T0 + timedelta(minutes=6))  # from a stale read
        with pytest.raises(ApprovalClosed, match="is approved, not pending"):
            store.save(late, "pending", link_of(late), (alert_of(late),))

        assert audit.count() == count  # the refused answer left no record ...
        assert store.get(a.id).state == "approved" and store.get(a.id).by == "ana"
        keys = [x.alert.key for x in outbox.listed()]
        assert sorted(keys) == [f"alluse:{a.id}:approved", f"alluse:{a.id}:pending"]  # no third
        assert [d.destination for x in outbox.listed() for d in x.deliveries] == ["ops", "ops"]
        assert [x.state for x in store.open_approvals()] == ["approved"]
        assert audit.verify().ok
    finally:
        outbox.close()
        audit.close()


def test_proposals_and_approvals_are_append_only(url):
    store = GovernanceStore.open(url)
    try:
        store.add_proposal(
            {"id": "P-1", "version": "1.4.0", "digest": "sha256:n", "against_digest": "sha256:c",
             "verdict": "fail", "report_digest": "sha256:r", "created_at": T0.isoformat()},
            "{}",
        )  # fmt: skip
        store.add_approval(
            {"version": "1.4.0", "digest": "sha256:n", "proposal_id": "P-1", "override": True,
             "approved_by": "cro", "reason": "accepted", "approved_at": T0.isoformat()}
        )  # fmt: skip
        for statement in (
            "UPDATE constitution_proposal SET verdict = 'pass'",
            "DELETE FROM constitution_approval",
        ):
            with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
                conn.execute(text(statement))
        [a] = store.approvals("sha256:n")
        assert (a["override"], a["approved_by"], a["reason"]) == (1, "cro", "accepted")
    finally:
        store.close()
