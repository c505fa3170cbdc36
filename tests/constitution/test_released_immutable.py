"""Released versions are immutable: a file whose version is in versions.lock with other content
is refused (exit 2, located at ``meta.version``) by every command that loads a constitution."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from constitution.errors import ConstitutionInvalid
from constitution.load import load_constitution
from constitution.versions import LOCK_PATH
from scheduler.cli import main

RELEASED = LOCK_PATH.parent / "released" / "v1.3.0.yaml"
FACTS = Path(__file__).resolve().parents[2] / "examples" / "facts-calm-thursday.yaml"


def _version_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line == "  version: 1.3.0")


@pytest.fixture
def edited(tmp_path) -> Path:
    """v1.3.0 with one value changed and its version left as it was."""
    path = tmp_path / "v1.3.0-edited.yaml"
    text = RELEASED.read_text("utf-8")
    assert "  margin_max: 0.60\n" in text
    path.write_text(text.replace("  margin_max: 0.60\n", "  margin_max: 0.55\n", 1), "utf-8")
    return path


def test_the_released_file_itself_loads(tmp_path):
    copy = tmp_path / "copy.yaml"
    shutil.copy(RELEASED, copy)
    assert load_constitution(copy).version == "1.3.0"


def test_a_comment_only_edit_of_a_released_version_is_the_same_version(tmp_path):
    path = tmp_path / "commented.yaml"
    path.write_text("# my notes\n" + RELEASED.read_text("utf-8"), "utf-8")
    assert load_constitution(path).version == "1.3.0"


def test_an_edited_released_version_is_refused_at_its_version_line(edited):
    with pytest.raises(ConstitutionInvalid) as exc:
        load_constitution(edited)
    [problem] = exc.value.problems
    assert problem.code == "released-version-changed"
    assert problem.path == "meta.version"
    assert problem.line == _version_line(edited.read_text("utf-8"))  # meta.version
    assert "bump meta.version" in problem.message


def test_a_bumped_version_of_the_edit_loads(edited):
    text = edited.read_text("utf-8").replace("  version: 1.3.0\n", "  version: 1.3.9\n", 1)
    text = text.replace(
        "  changelog:\n",
        '  changelog:\n    - {version: 1.3.9, date: 2026-01-01, summary: "margin 55 %"}\n',
        1,
    )
    edited.write_text(text, "utf-8")
    assert load_constitution(edited).version == "1.3.9"


def _commands(edited: Path, tmp_path: Path) -> dict[str, list[str]]:
    db = str(tmp_path / "x.db")
    common = ["--constitution", str(edited), "--db", db]
    return {
        "validate": ["validate", str(edited)],
        "evaluate": ["evaluate", "--facts", str(FACTS), "--constitution", str(edited)],
        "backtest": [
            "backtest",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-03",
            "--synthetic",
            "1",
            "--no-progress",
            *common,
        ],
        "run": ["run", "--every", "60", *common],
    }


@pytest.mark.parametrize("command", ["validate", "evaluate", "backtest", "run"])
def test_every_command_refuses_an_edited_released_version(command, edited, tmp_path, capsys):
    argv = _commands(edited, tmp_path)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = _version_line(edited.read_text("utf-8"))
    assert f"{edited}:{line}:" in err and "released-version-changed" in err
    assert not (tmp_path / "x.db").exists()  # refused before anything was written
