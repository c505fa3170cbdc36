"""The `alluse` console script end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLUSE = Path(sys.executable).with_name("alluse")


def _alluse(*args, cwd=ROOT):
    if not ALLUSE.exists():
        pytest.skip("the alluse console script is not installed in this environment")
    return subprocess.run(
        [str(ALLUSE), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_validate_show_and_evaluate_the_bundled_constitution():
    assert _alluse("validate").returncode == 0
    shown = _alluse("show", "--rules")
    assert shown.returncode == 0
    assert "vix.kill_switch" in shown.stdout and "Protocol levels" in shown.stdout
    evaluated = _alluse("evaluate", "--facts", "examples/facts-calm-thursday.yaml")
    assert evaluated.returncode == 0
    assert "open_short_put" in evaluated.stdout


def test_invalid_constitution_is_exit_2_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nmeta: {name: x}\ncapital: !!python/object:os.system {}\n")
    proc = _alluse("validate", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}:3:10: unsafe-tag:" in proc.stderr


def test_unknown_verb_and_bad_arguments_are_exit_2():
    assert _alluse("frobnicate").returncode == 2
    assert _alluse("evaluate").returncode == 2  # --facts is required


def test_evaluate_record_then_verify_and_replay_the_decision(tmp_path):
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    out = _alluse(
        "evaluate", "--facts", "examples/facts-calm-thursday.yaml", "--json", "--record", "--db", db
    )
    assert out.returncode == 0
    decision = json.loads(out.stdout)
    listed = _alluse("audit", "list", "--db", db, "--json")
    assert listed.returncode == 0
    assert decision["decision_id"] in listed.stdout
    assert _alluse("audit", "verify", "--db", db).returncode == 0
    replay = _alluse("audit", "replay", "--db", db, decision["decision_id"])
    assert replay.returncode == 0
    assert "identical" in replay.stdout


def test_paper_step_from_a_facts_file_then_resume_as_console_scripts(tmp_path):
    db = f"sqlite:///{tmp_path / 'paper.db'}"
    step = _alluse("paper", "step", "--facts", "examples/facts-calm-thursday.yaml", "--db", db)
    assert step.returncode == 0, step.stderr
    resumed = _alluse("paper", "resume", "--db", db)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr
    from adapters.storage.ledger_store import SqlLedgerStore

    store = SqlLedgerStore.open(db)
    state = store.state
    store.close()
    assert set(state.accounts) == {"GEN", "REV", "COM"} and state.orders and state.mode == "active"
    refused = _alluse("paper", "resume", "--reset", "--db", db)
    assert (
        refused.returncode == 2
        and "--reason" in refused.stderr
        and "Traceback" not in refused.stderr
    )


def test_evaluate_shadow_prints_the_decision_both_evaluators_agree_on(capsys):
    from scheduler.cli import main

    facts = str(ROOT / "examples" / "facts-calm-thursday.yaml")
    assert main(["evaluate", "--facts", facts, "--json"]) == 0
    alone = capsys.readouterr().out
    assert main(["evaluate", "--facts", facts, "--json", "--shadow"]) == 0
    both = capsys.readouterr()
    assert both.out == alone and json.loads(both.out)["actions"]
    assert "compiled and durable-rules agree" in both.err


def test_evaluate_shadow_refuses_a_decision_the_evaluators_disagree_on(capsys, monkeypatch):
    from engine.rules import shadow
    from scheduler.cli import main

    real = shadow.evaluate

    def disagreeing(constitution, facts, **kwargs):
        decision = real(constitution, facts, **kwargs)
        if kwargs.get("evaluator") == "durable":
            return decision.model_copy(update={"actions": decision.actions[1:]})
        return decision

    monkeypatch.setattr(shadow, "evaluate", disagreeing)
    facts = str(ROOT / "examples" / "facts-calm-thursday.yaml")
    assert main(["evaluate", "--facts", facts, "--json", "--shadow"]) == 1
    out = capsys.readouterr()
    assert out.out == ""  # no decision is shown as if it were agreed
    assert "the evaluators disagree at actions" in out.err


def test_validate_quiet_prints_problems_only(tmp_path, capsys):
    from constitution.load import bundled_path
    from scheduler.cli import main

    assert main(["validate", "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # valid: nothing to say
    assert main(["validate"]) == 0
    assert "valid" in capsys.readouterr().out  # without --quiet the summary line
    bad = tmp_path / "bad.yaml"
    bad.write_text(bundled_path().read_text().replace("kill_switch: 80", "kill_switch: high", 1))
    assert main(["validate", "-q", str(bundled_path()), str(bad)]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # the valid file's line is left out too
    assert f"{bad}:" in out.err and "1 problem(s) in 1 file(s)" in out.err


@pytest.mark.parametrize(
    "argv",
    [
        ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-03"],
        ["evaluate", "--facts", str(ROOT / "examples/facts-calm-thursday.yaml"), "--record"],
    ],
)
def test_a_database_under_a_file_is_exit_2_naming_the_path_without_a_traceback(argv, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    proc = _alluse(*argv, "--db", str(a_file / "x.db"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"alluse: cannot use {a_file}: a file is there, where a directory is needed"
    )
    assert a_file.read_text() == "mine"


def test_an_output_under_a_file_is_exit_2_naming_the_path(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    db = tmp_path / "r.db"
    assert _alluse("evaluate", "--facts", "examples/facts-calm-thursday.yaml", "--record",
                   "--db", str(db)).returncode == 0  # fmt: skip
    proc = _alluse("audit", "export", "--db", str(db), "--out", str(a_file / "x.jsonl"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(f"cannot use {a_file / 'x.jsonl'}: Not a directory")
