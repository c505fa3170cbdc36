import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = ROOT / "examples" / "facts-calm-thursday.yaml"


def _evaluate_in_new_process(seed: str) -> bytes:
    env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "evaluate", "--facts", str(EXAMPLE), "--json"],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_evaluate_json_is_byte_identical_across_processes():
    first = _evaluate_in_new_process("1")
    second = _evaluate_in_new_process("98765")  # different hash seeds, different set orders
    assert first == second
    assert b'"decision_id":"d-' in first


def test_decision_id_derives_from_constitution_and_facts(bundled, facts_with):
    from engine.rules.evaluate import evaluate

    calm, stressed = facts_with(), facts_with({"market": {"vix": 52}})
    a, b, c = evaluate(bundled, calm), evaluate(bundled, calm), evaluate(bundled, stressed)
    assert a.decision_id == b.decision_id != c.decision_id
    assert a.facts_digest != c.facts_digest
    assert a.constitution.digest == bundled.digest
