"""The pure record: canonical hash, masking, chain verification, in-memory log, replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import T0, make_decision
from hypothesis import given
from hypothesis import strategies as st

from constitution.canonical import canonical_json, sha256_hex
from engine.clock import FixedClock
from engine.records.audit import (
    COLUMNS,
    GENESIS_HASH,
    AuditRecord,
    DecisionConflict,
    ExecutionLink,
    RunMode,
    StoredRow,
    UnknownDecision,
    draft_decision,
    preimage,
    search_keys,
)
from engine.records.chain import verify_chain
from engine.records.decision import Decision
from engine.records.log import InMemoryDecisionLog
from engine.records.masking import MASK, mask, parse_pointer
from engine.records.replay import replay

texts = st.text(min_size=0, max_size=30)


def _log(n: int = 0) -> InMemoryDecisionLog:
    log = InMemoryDecisionLog(RunMode.PAPER, FixedClock(T0))
    for i in range(n):
        log.record(make_decision(i), "text")
    return log


@given(texts, texts, texts, texts, st.integers(1, 10**12), st.none() | texts)
def test_preimage_equals_canonical_json_of_record(
    decision_id, search, reason, mode_text, seq, as_of
):
    body = canonical_json(
        {"decision": {"reason": reason, "x": [1.5, None, True]}, "masked": []}
    ).decode()
    row = (
        seq,
        GENESIS_HASH,
        "decision",
        1,
        "2026-01-05T15:00:00.000000Z",
        mode_text,
        decision_id,
        as_of,
        None,
        "sha256:ab",
        search,
        body,
        "",
    )
    record = dict(zip(COLUMNS, row, strict=True))
    del record["hash"]
    record["body"] = json.loads(body)
    assert preimage(row) == canonical_json(record)


def test_sealed_hash_is_sha256_of_canonical_record_without_hash():
    row = draft_decision(make_decision(1), RunMode.LIVE).seal(7, "sha256:" + "ab" * 32, T0)
    doc = AuditRecord.from_row(row).to_json_dict()
    stored_hash = doc.pop("hash")
    assert stored_hash == "sha256:" + sha256_hex(canonical_json(doc))
    assert (
        doc["seq"] == 7
        and doc["mode"] == "live"
        and doc["recorded_at"] == "2026-01-05T15:00:00.000000Z"
    )


@pytest.mark.parametrize("column", [c for c in COLUMNS if c != "hash"])
def test_changing_any_column_changes_the_hash(column):
    row = draft_decision(make_decision(1), RunMode.PAPER).seal(3, "sha256:" + "ab" * 32, T0)
    index = COLUMNS.index(column)
    value = row[index]
    changed = value + 1 if isinstance(value, int) else (value or "") + "x"
    tampered = list(row)
    tampered[index] = changed
    report = verify_chain([*_log(2).rows, StoredRow(*tampered)])
    assert not report.ok and report.problem.seq == 3


def test_mask_replaces_values_at_pointers_and_lists_each_concrete_pointer():
    doc = {
        "facts": {
            "accounts": [{"id": "GEN", "acct": "U1"}, {"id": "REV", "acct": "U2"}, {"id": "COM"}]
        },
        "a/b": {"~k": "secret"},
    }
    masked, where = mask(doc, ["/facts/accounts/*/acct", "/a~1b/~0k", "/nope/x"])
    assert (
        masked["facts"]["accounts"][0]["acct"] == MASK
        and masked["facts"]["accounts"][1]["acct"] == MASK
    )
    assert "acct" not in masked["facts"]["accounts"][2]
    assert masked["a/b"]["~k"] == MASK
    assert where == ("/a~1b/~0k", "/facts/accounts/0/acct", "/facts/accounts/1/acct")
    assert doc["facts"]["accounts"][0]["acct"] == "U1"  # the input is not modified


def test_mask_pointer_must_start_with_slash():
    with pytest.raises(ValueError):
        parse_pointer("facts/x")


SECRET_POINTERS = ("/decision/facts/credentials",)  # a deployment's own (there are no defaults)


def test_decision_record_masks_the_declared_secret_pointers_and_says_so():
    decision = make_decision(1, extra_facts={"credentials": {"user": "me", "password": "hunter2"}})
    draft = draft_decision(decision, RunMode.PAPER, SECRET_POINTERS)
    record = AuditRecord.from_row(draft.seal(1, GENESIS_HASH, T0))
    assert record.body["decision"]["facts"]["credentials"] == MASK
    assert record.masked == ("/decision/facts/credentials",)
    assert "hunter2" not in record.model_dump_json()


def test_search_keys_name_accounts_rules_kinds_and_denials():
    keys = search_keys(
        make_decision(1, account="MINI-1", kind="roll", rule="atr level 2", approved=False)
    )
    assert set(keys.split()) == {
        "account:MINI-1",
        "rule:atr_level_2",
        "kind:roll",
        "verdict:denied",
    }
    assert keys.startswith(" ") and keys.endswith(" ")


def test_a_link_is_a_new_record_and_leaves_the_decision_record_unchanged():
    log = _log(1)
    before = log.rows[0]
    receipt = log.link(
        ExecutionLink(decision_id=before.decision_id, kind="order", ref="c-1", data={"qty": 2})
    )
    assert log.rows[0] == before
    assert receipt.seq == 2 and log.rows[1].prev_hash == before.hash
    assert AuditRecord.from_row(log.rows[1]).link.data == {"qty": 2}
    assert verify_chain(log.rows).ok


def test_a_link_to_an_unlogged_decision_is_refused():
    log = _log(1)
    with pytest.raises(UnknownDecision):
        log.link(ExecutionLink(decision_id="d-never", kind="fill", ref="c-1"))
    assert len(log.rows) == 1


def test_recording_the_same_decision_again_returns_the_first_receipt():
    log = _log(0)
    first = log.record(make_decision(1), "text")
    again = log.record(make_decision(1), "text")
    assert (again.seq, again.hash, again.created) == (first.seq, first.hash, False)
    assert len(log.rows) == 1


def test_same_decision_id_with_different_content_is_a_conflict():
    log = _log(1)
    changed = make_decision(0).model_copy(update={"derived": {"something": "else"}})
    with pytest.raises(DecisionConflict):
        log.record(changed, "text")


def test_in_memory_log_chain_verifies_and_reports_its_head():
    log = _log(5)
    report = verify_chain(log.rows)
    assert (
        report.ok
        and report.count == 5
        and report.head_seq == 5
        and report.head_hash == log.rows[-1].hash
    )


def test_empty_log_verifies_with_genesis_head():
    report = verify_chain([])
    assert report.ok and report.count == 0 and report.head_hash == GENESIS_HASH


def _problem(rows):
    report = verify_chain(rows)
    assert not report.ok
    return report.problem.seq, report.problem.code


def test_verify_names_a_deleted_record():
    rows = _log(6).rows
    assert _problem(rows[:3] + rows[4:]) == (4, "gap")


def test_verify_names_a_deleted_first_record():
    assert _problem(_log(3).rows[1:]) == (1, "genesis")


def test_verify_names_a_record_replaced_by_a_valid_record_of_another_chain():
    rows, other = (
        _log(4).rows,
        InMemoryDecisionLog(RunMode.PAPER, FixedClock(T0 + timedelta(days=1))),
    )
    for i in range(4):
        other.record(make_decision(i), "text")
    assert _problem(rows[:2] + [other.rows[2]] + rows[3:]) == (3, "prev-hash")


def test_verify_names_rows_out_of_order():
    rows = _log(4).rows
    assert _problem([rows[0], rows[2], rows[1], rows[3]]) == (2, "gap")
    assert _problem([rows[0], rows[1], rows[1]]) == (2, "out-of-order")


def test_verify_names_an_altered_record():
    rows = _log(4).rows
    altered = rows[2]._replace(body=rows[2].body.replace("weekly", "Weekly"))
    assert _problem(rows[:2] + [altered] + rows[3:]) == (3, "hash")


# --------------------------------------------------------------------------- replay


def _stored(decision: Decision) -> AuditRecord:
    log = InMemoryDecisionLog(RunMode.BACKTEST, FixedClock(T0), SECRET_POINTERS)
    log.record(decision, "text")
    return AuditRecord.from_row(log.rows[0])


def _replayer(result: Decision, seen: list):
    def load(text, source):
        seen.append(("load", text, source))
        return "constitution"

    def redecide(constitution, recorded):
        seen.append(("redecide", constitution, recorded.facts))
        return result

    return load, redecide


def test_replay_of_an_unchanged_engine_is_identical():
    decision, seen = make_decision(3), []
    result = replay(_stored(decision), "the text", *_replayer(decision, seen))
    assert result.identical and result.differences == ()
    assert seen[0] == ("load", "the text", f"audit:{decision.constitution.digest}")
    assert seen[1] == ("redecide", "constitution", decision.facts)


def test_replay_reports_each_difference_by_path():
    decision = make_decision(3)
    changed = decision.model_copy(
        update={"actions": (decision.actions[0].model_copy(update={"kind": "roll"}),)}
    )
    result = replay(_stored(decision), "t", *_replayer(changed, []))
    assert not result.identical
    assert result.differences == ('actions[0].kind: recorded "open_put", replayed "roll"',)
    assert result.first_difference == "actions[0].kind"


def test_replay_lists_differences_in_pipeline_order():
    decision = make_decision(3)
    changed = decision.model_copy(
        update={
            "actions": (decision.actions[0].model_copy(update={"kind": "roll"}),),
            "derived": {"market": {"mode": "safe"}},
        }
    )
    result = replay(_stored(decision), "t", *_replayer(changed, []))
    # derived comes before actions in the pipeline, though "actions" sorts first
    assert result.first_difference.startswith("derived")


def test_replay_with_masked_facts_compares_all_but_the_fact_digests():
    decision = make_decision(3, extra_facts={"credentials": "secret"})
    # Re-evaluating masked facts gives other digests; everything else must still match.
    fresh = decision.model_copy(update={"decision_id": "d-other", "facts_digest": "sha256:other"})
    result = replay(_stored(decision), "t", *_replayer(fresh, []))
    assert result.identical and result.notes


def test_replay_refuses_a_link_record():
    log = _log(1)
    log.link(ExecutionLink(decision_id=log.rows[0].decision_id, kind="note"))
    with pytest.raises(ValueError):
        replay(AuditRecord.from_row(log.rows[1]), "t", *_replayer(make_decision(0), []))


def test_verify_says_where_an_anchor_hash_is_and_when_it_is_missing():
    rows = _log(5).rows
    assert verify_chain(rows, anchor=rows[2].hash).anchor_seq == 3
    assert verify_chain(rows[:2], anchor=rows[2].hash).anchor_seq is None


def test_secret_values_are_masked_wherever_they_appear():
    decision = make_decision(1, extra_facts={"note": "account U7654321 is unmapped"})
    draft = draft_decision(decision, RunMode.LIVE, secrets=("U7654321",))
    record = AuditRecord.from_row(draft.seal(1, GENESIS_HASH, T0))
    assert record.body["decision"]["facts"]["note"] == MASK
    assert record.masked == ("/decision/facts/note",)
    assert "U7654321" not in record.model_dump_json()
