"""Every constitution scenario file case as its own pytest case (the same runner as alluse test)."""

from pathlib import Path

import pytest

from scheduler.scenarios import load_cases, run_case, scenario_files

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CASES = [case for path in scenario_files([str(SCENARIOS)]) for case in load_cases(path)]


@pytest.mark.parametrize(("name", "facts", "case"), CASES, ids=[c[0] for c in CASES])
def test_scenario(bundled, name, facts, case):
    """Each scenario on both evaluators: the expectations hold and the decisions are identical."""
    result = run_case(name, facts, case, bundled, shadow=True)
    assert result.passed, "\n".join(result.failures)


def test_every_rule_has_a_scenario_that_fires_it(bundled):
    fired = set()
    for name, facts, case in CASES:
        fired |= {f.rule for f in run_case(name, facts, case, bundled).decision.fired}
    assert {r.id for r in bundled.model.rules} - fired == set()


def test_alluse_test_cli_passes_on_the_scenarios(capsys):
    from scheduler.cli import main

    assert main(["test", str(SCENARIOS)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{len(CASES)} passed, 0 failed")


@pytest.mark.parametrize("flags", [["--shadow"], ["--evaluator", "durable"]])
def test_alluse_test_cli_runs_the_scenarios_on_both_evaluators(capsys, flags):
    from scheduler.cli import main

    assert main(["test", str(SCENARIOS), *flags]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{len(CASES)} passed, 0 failed")


def test_alluse_test_verbose_lists_every_scenario_by_name(capsys):
    from scheduler.cli import main

    assert main(["test", str(SCENARIOS / "vix.yaml"), "--verbose"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [name for name, _, _ in CASES if name.startswith("vix.yaml::")]
    assert lines[:-1] == [f"PASS {name}" for name in names] and names
    assert lines[-1] == f"{len(names)} passed, 0 failed"


def test_alluse_test_shadow_fails_a_scenario_the_evaluators_disagree_on(capsys, monkeypatch):
    from engine.rules import shadow
    from scheduler.cli import main

    real = shadow.evaluate

    def disagreeing(constitution, facts, **kwargs):
        decision = real(constitution, facts, **kwargs)
        if kwargs.get("evaluator") == "durable":
            return decision.model_copy(update={"derived": {}})
        return decision

    monkeypatch.setattr(shadow, "evaluate", disagreeing)
    assert main(["test", str(SCENARIOS / "vix.yaml"), "--shadow"]) == 1
    assert "the evaluators disagree at derived" in capsys.readouterr().out


def test_alluse_test_cli_fails_on_a_wrong_expectation(tmp_path, capsys):
    from scheduler.cli import main

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        f"base: {SCENARIOS / 'base.yaml'}\nscenarios:\n  - note: VIX 52 is no kill switch\n"
        "    facts: {market: {vix: 52}}\n    expect: [{kind: kill_switch}]\n"
    )
    assert main(["test", str(wrong)]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out
