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


def test_an_expectation_that_could_never_match_is_a_located_problem_in_every_scenario(tmp_path):
    """An unknown kind, key or derived value never matches: under expect_not it would pass
    whatever the rules decide. All of a file's are reported at once, each at its place."""
    from constitution.errors import InvalidInput

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"base: {SCENARIOS / 'base.yaml'}\nscenarios:\n"
        "  - note: a typo in a kind\n"
        "    expect_not: [{kind: open_short_puts}]\n"
        "  - note: a key no action has\n"
        "    expect_not: [{kindd: open_short_put}]\n"
        "  - note: a derived value there is not\n"
        "    expect_derived: {accounts.GEN.csp_windo: false}\n"
    )
    with pytest.raises(InvalidInput) as err:
        load_cases(bad)
    lines = bad.read_text().splitlines()

    def at(n: int, key: str) -> tuple[int, int]:  # where the key is written (1-based)
        return n, lines[n - 1].index(key) + 1

    found = [(p.line, p.col, p.code, p.path) for p in err.value.problems]
    assert found == [
        (*at(4, "kind"), "unknown-kind", "scenarios[0].expect_not[0].kind"),
        (*at(6, "kindd"), "unknown-key", "scenarios[1].expect_not[0].kindd"),
        (
            *at(8, "accounts."),
            "unknown-derived",
            "scenarios[2].expect_derived.accounts.GEN.csp_windo",
        ),
    ]


def test_an_expectation_naming_a_rule_the_constitution_lacks_fails(bundled, tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        f"base: {SCENARIOS / 'base.yaml'}\nscenarios:\n  - note: a misspelled rule id\n"
        "    expect_not: [{rule: entry.csp.gne}]\n"
    )
    ((name, facts, case),) = load_cases(wrong)
    result = run_case(name, facts, case, bundled)
    assert not result.passed
    assert result.failures == (
        f"expect_not names rule 'entry.csp.gne', which constitution {bundled.version} does not have",
    )
