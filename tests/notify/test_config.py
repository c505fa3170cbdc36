"""The deployment config (alluse.yaml): found beside the database, every mistake located and
reported at once, secrets named by environment variable and checked before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.deployment import DEFAULTS, config_path, load_deployment, missing_secrets
from constitution.errors import InvalidInput
from scheduler.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "facts-calm-thursday.yaml"

BAD = """alerts:
  destinations:
    ops: {type: slack, url_env: ALLUSE_SLACK_URL}
    hooks: {type: webhook, url: "ftp://x", secret_env: lower}
  routes:
    - {to: [opz], severities: [loud]}
  quiet_hours: {start: "22:00", end: "07:00", timezone: Mars/Base}
approvals:
  paper: maybe
"""


def test_the_config_beside_a_sqlite_database_is_found_and_an_explicit_one_wins(tmp_path):
    db = tmp_path / "paper.db"
    assert config_path(f"sqlite:///{db}", env={}) is None
    (tmp_path / "alluse.yaml").write_text("approvals: {paper: person}\n")
    assert config_path(f"sqlite:///{db}", env={}) == tmp_path / "alluse.yaml"
    assert config_path(str(db), env={}) == tmp_path / "alluse.yaml"
    assert config_path(f"sqlite:///{db}", "other.yaml", env={}) == Path("other.yaml")
    assert config_path("postgresql+psycopg://u@h/db", env={"ALLUSE_CONFIG": "x.yaml"}) == Path(
        "x.yaml"
    )
    assert config_path("postgresql+psycopg://u@h/db", env={}) is None
    assert load_deployment(None) == DEFAULTS
    assert load_deployment(tmp_path / "alluse.yaml").approvals.for_mode("paper").kind == "person"
    assert load_deployment(tmp_path / "alluse.yaml").approvals.for_mode("live").kind == "person"


def test_every_mistake_is_located_at_once(tmp_path):
    path = tmp_path / "alluse.yaml"
    path.write_text(BAD)
    with pytest.raises(InvalidInput) as exc:
        load_deployment(path)
    got = {(p.line, p.path, p.code) for p in exc.value.problems}
    assert got == {
        (4, "alerts.destinations.hooks.url", "invalid"),
        (4, "alerts.destinations.hooks.secret_env", "invalid"),
        (6, "alerts.routes[0].severities[0]", "bad-value"),
        (7, "alerts.quiet_hours.timezone", "inconsistent"),
        (9, "approvals.paper", "inconsistent"),
    }
    path.write_text(
        "alerts:\n  destinations:\n    ops: {type: slack, url_env: X}\n"
        "  routes:\n    - {to: [opz]}\n"
    )
    with pytest.raises(InvalidInput) as exc:
        load_deployment(path)
    [p] = exc.value.problems
    assert (p.line, p.path, p.code) == (5, "alerts.routes[0].to", "unknown-destination")


def test_an_unset_secret_stops_a_paper_step_before_anything_is_decided(tmp_path, capsys):
    (tmp_path / "alluse.yaml").write_text(
        "alerts:\n  destinations:\n    ops: {type: slack, url_env: ALLUSE_TEST_UNSET_URL}\n"
        "  routes:\n    - {to: [ops]}\n"
    )
    db = tmp_path / "paper.db"
    code = main(["paper", "step", "--db", str(db), "--facts", str(EXAMPLE)])
    err = capsys.readouterr().err
    assert code == 2
    assert "alluse.yaml:3:24: secret-not-set: alerts.destinations.ops.url_env" in err
    assert "ALLUSE_TEST_UNSET_URL is not set" in err
    assert not db.exists()  # nothing was decided, nothing written
    config = load_deployment(tmp_path / "alluse.yaml")
    assert missing_secrets(config, {"ALLUSE_TEST_UNSET_URL": "https://hooks.example/x"}) == []
