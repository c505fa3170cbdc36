"""``alluse audit ...`` end to end, through ``scheduler.cli.main`` and one real subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONSTITUTION_TEXT, make_decision, raw_execute

from constitution.canonical import canonical_json, sha256_hex
from engine.records.audit import GENESIS_HASH, ExecutionLink, RunMode
from scheduler.cli import audit_cmds, main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
D1 = make_decision(1, account="GEN", kind="open_put")
D2 = make_decision(2, account="REV", kind="roll", rule="atr level", approved=False)
D3 = make_decision(3, account="COM", kind="hedge")


@pytest.fixture
def seeded(store):
    store.append_decision(D1, RunMode.PAPER, CONSTITUTION_TEXT)
    store.append_decision(D2, RunMode.PAPER, CONSTITUTION_TEXT)
    store.append_link(
        ExecutionLink(decision_id=D1.decision_id, kind="order", ref="c-1", data={"qty": 1}),
        RunMode.PAPER,
    )
    store.append_decision(D3, RunMode.BACKTEST, CONSTITUTION_TEXT)
    return store


def _run(capsys, *argv):
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_decisions_as_a_table(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "list", "--db", backend_url)
    assert code == 0
    for decision_id in (D1.decision_id, D2.decision_id, D3.decision_id):
        assert decision_id in out
    assert "3 decision(s)" in out


def test_list_json_applies_every_filter(seeded, backend_url, capsys):
    def seqs(*filters):
        code, out, _ = _run(capsys, "list", "--db", backend_url, "--json", *filters)
        assert code == 0
        return [r["seq"] for r in json.loads(out)]

    assert seqs() == [1, 2, 4]
    assert seqs("--account", "REV") == [2]
    assert seqs("--rule", "atr level") == [2]
    assert seqs("--kind", "hedge") == [4]
    assert seqs("--mode", "backtest") == [4]
    assert seqs("--since", "2026-01-07") == [2, 4]
    assert seqs("--until", "2026-01-07T00:00:00+00:00") == [1]
    assert seqs("--limit", "1") == [4]


def test_list_rejects_a_bad_date_as_invalid_input(seeded, backend_url, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "list", "--db", backend_url, "--since", "last tuesday"])
    assert exit_.value.code == 2


def test_show_explains_a_decision_with_its_verdicts_firings_and_links(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "show", D1.decision_id, "--db", backend_url)
    assert code == 0
    assert "open_put GEN TSLA" in out and "APPROVED" in out
    assert "because market.vix=18.5 < params.vix.normal=20" in out
    assert "order c-1" in out  # the execution link
    code, out, _ = _run(capsys, "show", "#2", "--db", backend_url)
    assert code == 0 and "DENIED (max contracts)" in out


def test_show_json_is_the_stored_records(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "show", "1", "--db", backend_url, "--json")
    records = json.loads(out)
    assert code == 0 and [r["seq"] for r in records] == [1, 3]
    assert records[0]["body"]["decision"] == D1.model_dump(mode="json")


def test_show_an_unknown_id_exits_2(seeded, backend_url, capsys):
    code, _, err = _run(capsys, "show", "d-nothing", "--db", backend_url)
    assert code == 2 and "d-nothing" in err


def test_verify_an_intact_log_exits_0_with_its_head(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "verify", "--db", backend_url, "--json")
    report = json.loads(out)
    assert (
        code == 0
        and report["ok"]
        and report["count"] == 4
        and report["head_hash"] == seeded.get(4).hash
    )


def test_verify_a_tampered_log_exits_1_naming_the_seq(seeded, backend_url, capsys):
    raw_execute(backend_url, "UPDATE audit_record SET mode = 'live' WHERE seq = 2")
    code, out, _ = _run(capsys, "verify", "--db", backend_url)
    assert code == 1 and out.startswith("BROKEN at seq 2: hash:")


def test_verify_against_a_noted_anchor_detects_a_cut_tail(seeded, backend_url, capsys):
    noted = seeded.get(3).hash
    seeded.append_decision(
        make_decision(9), RunMode.PAPER, CONSTITUTION_TEXT
    )  # later appends are fine
    code, out, _ = _run(capsys, "verify", "--db", backend_url, "--anchor", noted, "--json")
    assert code == 0 and json.loads(out)["anchor_seq"] == 3
    raw_execute(backend_url, "DELETE FROM audit_record WHERE seq >= 3")
    assert _run(capsys, "verify", "--db", backend_url)[0] == 0  # a chain alone cannot see it
    code, out, _ = _run(capsys, "verify", "--db", backend_url, "--anchor", noted, "--json")
    assert code == 1 and json.loads(out)["problem"]["code"] == "anchor"


def test_export_jsonl_lines_carry_their_own_proof(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "export", "--db", backend_url, "--format", "jsonl")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["seq"] for r in lines] == [1, 2, 3, 4]
    prev = GENESIS_HASH
    for record in lines:
        stated = record.pop("hash")
        assert record["prev_hash"] == prev and stated == "sha256:" + sha256_hex(
            canonical_json(record)
        )
        prev = stated


def test_export_csv_to_a_file_keeps_the_stored_body(seeded, backend_url, capsys, tmp_path):
    target = tmp_path / "audit.csv"
    code, _, _ = _run(
        capsys,
        "export",
        "--db",
        backend_url,
        "--format",
        "csv",
        "--output",
        str(target),
        "--mode",
        "paper",
    )
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert code == 0 and [r["seq"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["hash"] == seeded.get(1).hash
    assert json.loads(rows[0]["body"])["decision"]["decision_id"] == D1.decision_id


def test_readers_on_a_missing_database_exit_3(tmp_path, capsys):
    code, _, err = _run(capsys, "verify", "--db", str(tmp_path / "missing.db"))
    assert code == 3 and "no audit log" in err
    assert not (tmp_path / "missing.db").exists()


def test_replay_reports_identical_with_an_unchanged_engine(
    seeded, backend_url, capsys, monkeypatch
):
    calls = []

    def load(text, source):
        calls.append(text)
        return "constitution"

    monkeypatch.setattr(audit_cmds, "replay_functions", lambda: (load, lambda c, recorded: D1))
    code, out, _ = _run(capsys, "replay", D1.decision_id, "--db", backend_url)
    assert code == 0 and out.startswith("identical") and calls == [CONSTITUTION_TEXT]


def test_replay_reports_the_difference_and_exits_4(seeded, backend_url, capsys, monkeypatch):
    changed = make_decision(1, kind="roll")  # another action kind (and so another id)
    monkeypatch.setattr(
        audit_cmds,
        "replay_functions",
        lambda: (lambda t, s: None, lambda c, recorded: changed),
    )
    code, out, _ = _run(capsys, "replay", "1", "--db", backend_url, "--json")
    result = json.loads(out)
    assert code == 4 and not result["identical"]
    assert 'actions[0].kind: recorded "open_put", replayed "roll"' in result["differences"]


def test_replay_of_a_real_evaluation_is_identical_after_the_file_is_gone(
    store, backend_url, capsys, tmp_path
):
    load_mod = pytest.importorskip("constitution.load")
    pipeline = pytest.importorskip("engine.rules.evaluate")
    facts_load = pytest.importorskip("engine.facts.load")
    copy = tmp_path / "constitution.yaml"
    copy.write_text(load_mod.bundled_path().read_text())
    constitution = load_mod.load_constitution(copy)
    decision = pipeline.evaluate(
        constitution, facts_load.load_facts(EXAMPLES / "facts-calm-thursday.yaml")
    )
    store.append_decision(decision, RunMode.DRY_RUN, constitution.text)
    copy.unlink()
    code, out, _ = _run(capsys, "replay", decision.decision_id, "--db", backend_url)
    assert code == 0 and out.startswith(f"identical: #1 {decision.decision_id}")


def test_the_installed_command_verifies_in_a_subprocess(seeded, backend_url):
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "audit", "verify", "--db", backend_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("intact: 4 record(s)")
    assert "Traceback" not in done.stderr


def test_show_a_link_record_by_its_seq(seeded, backend_url, capsys):
    code, out, _ = _run(capsys, "show", "3", "--db", backend_url)
    assert code == 0 and "#3 link" in out and '"ref": "c-1"' in out


def test_evaluate_record_then_verify_and_replay(tmp_path, capsys):
    pytest.importorskip("scheduler.compose")
    db = str(tmp_path / "alluse.db")
    assert (
        main(
            [
                "evaluate",
                "--facts",
                str(EXAMPLES / "facts-calm-thursday.yaml"),
                "--record",
                "--db",
                db,
            ]
        )
        == 0
    )
    capsys.readouterr()
    code, out, _ = _run(capsys, "list", "--db", db, "--json")
    [record] = json.loads(out)
    assert code == 0 and record["mode"] == "dry-run"
    assert _run(capsys, "verify", "--db", db)[0] == 0
    code, out, _ = _run(capsys, "replay", record["decision_id"], "--db", db)
    assert code == 0 and out.startswith("identical")
