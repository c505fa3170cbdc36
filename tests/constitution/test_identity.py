"""The bundled constitution: valid, identified by its digest, immutable once released."""

from __future__ import annotations

import re

from constitution.load import (
    bundled_path,
    constitution_digest,
    load_constitution,
    load_constitution_text,
)
from constitution.schema import SCHEMA_PATH, render
from constitution.versions import LOCK_PATH, Release, check_lock, read_lock, render_lock
from scheduler.cli import main


def test_bundled_constitution_validates(capsys):
    assert main(["validate", str(bundled_path())]) == 0
    assert "valid" in capsys.readouterr().out


def test_committed_schema_matches_the_models():
    assert SCHEMA_PATH.read_text("utf-8") == render(), "run: python -m constitution.schema"


def test_released_versions_are_unchanged():
    assert check_lock() == []


def test_a_changed_released_file_is_caught(tmp_path):
    released = (LOCK_PATH.parent / "released" / "v1.3.0.yaml").read_text("utf-8")
    (tmp_path / "released").mkdir()
    (tmp_path / "released" / "v1.3.0.yaml").write_text(
        released.replace("  margin_max: 0.60\n", "  margin_max: 0.55\n")
    )
    lock = tmp_path / "versions.lock"
    lock.write_text(LOCK_PATH.read_text())
    [problem] = check_lock(lock)
    assert "released version 1.3.0 changed" in problem


def test_digest_ignores_comments_and_layout_but_not_values(bundled, bundled_text):
    relaid = load_constitution_text(
        "# a comment\n"
        + bundled_text.replace(
            "{gen: 0.40, rev: 0.30, com: 0.30}", "{com: 0.30, rev: 0.30, gen: 0.4}"
        ),
        "x.yaml",
    )
    changed = load_constitution_text(
        bundled_text.replace("  margin_max: 0.60\n", "  margin_max: 0.55\n"), "y.yaml"
    )
    assert relaid.digest == bundled.digest
    assert changed.digest != bundled.digest
    assert bundled.digest == constitution_digest(bundled.model)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", bundled.digest)


def test_lock_round_trips():
    releases = read_lock()
    assert render_lock(releases) == LOCK_PATH.read_text()
    released = LOCK_PATH.parent / "released" / "v1.3.0.yaml"
    assert releases["1.3.0"] == Release(
        "1.3.0", "released/v1.3.0.yaml", load_constitution(released).digest
    )


def test_every_section_has_a_comment_naming_its_clause(bundled_text):
    lines = bundled_text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line) and not line.startswith("schema_version"):
            comment = lines[i - 1]
            assert comment.startswith("#") and "§" in comment, (
                f"section '{line}' needs a '# §N ...' comment above it"
            )


def test_every_rule_names_an_existing_clause(bundled):
    # "§6" or "§6 covered-call protocol": the section number, then optionally the clause's name
    for rule in bundled.model.rules:
        m = re.fullmatch(r"§(\d+)( [a-zA-Z][\w -]*)?", rule.clause)
        assert m and int(m.group(1)) in range(0, 18), rule.id


def test_all_required_action_kinds_exist():
    from constitution.actions import KINDS, REQUIRED_KINDS

    assert set(REQUIRED_KINDS) <= set(KINDS)


def test_docs_reference_is_generated_from_the_schema():
    from constitution.docs import render_constitution_doc

    assert (SCHEMA_PATH.parents[1] / "docs" / "constitution.md").read_text(
        "utf-8"
    ) == render_constitution_doc(), "run: python -m constitution.docs"


def test_facts_and_actions_docs_are_generated_from_the_code():
    from constitution.docs import DOCS, render_actions_doc, render_facts_doc

    assert (DOCS / "facts.md").read_text("utf-8") == render_facts_doc(), (
        "run: python -m constitution.docs"
    )
    assert (DOCS / "actions.md").read_text("utf-8") == render_actions_doc(), (
        "run: python -m constitution.docs"
    )


def test_published_facts_schema_matches_the_facts_model():
    from engine.facts.schema import PATH, render

    assert PATH.read_text("utf-8") == render(), "run: python -m engine.facts.schema"


def test_an_older_schema_version_is_migrated_explicitly(bundled_text, monkeypatch):
    from constitution import load as L

    def v0_to_v1(data):  # e.g. a key renamed between format versions
        capital = dict(data["capital"])
        capital["margin_max"] = capital.pop("max_margin")
        return {**data, "capital": capital, "schema_version": 1}

    monkeypatch.setitem(L.MIGRATIONS, 0, v0_to_v1)
    old = bundled_text.replace("schema_version: 1\n", "schema_version: 0\n").replace(
        "  margin_max: 0.60\n", "  max_margin: 0.60\n"
    )
    migrated = load_constitution_text(old, "old.yaml")
    assert migrated.model.capital.margin_max == 0.60
    assert migrated.digest == load_constitution(bundled_path()).digest
