"""A user's mistakes with the new verbs: a located message, exit 2, no traceback, nothing
written."""

from __future__ import annotations

import pytest

from constitution.load import bundled_path
from scheduler.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def _bumped(tmp_path, text: str | None = None) -> str:
    text = text or bundled_path().read_text("utf-8")
    text = text.replace("  version: 1.3.1\n", "  version: 1.3.9\n").replace(
        "  changelog:\n",
        '  changelog:\n    - version: 1.3.9\n      date: 2026-12-01\n      summary: "x"\n',
        1,
    )
    path = tmp_path / "new.yaml"
    path.write_text(text, "utf-8")
    return str(path)


def test_propose_refuses_an_invalid_an_unchanged_or_an_unbumped_file_before_any_backtest(
    tmp_path, capsys
):
    db = str(tmp_path / "gov.db")
    common = ("--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-05", "--db", db)
    broken = tmp_path / "broken.yaml"
    broken.write_text(bundled_path().read_text("utf-8").replace("safe: 65", "safe: [65"))
    code, text = _run(capsys, "propose", str(broken), *common)
    assert code == 2 and f"{broken}:" in text and "yaml-syntax" in text

    same = tmp_path / "same.yaml"
    same.write_text(bundled_path().read_text("utf-8"))
    code, text = _run(capsys, "propose", str(same), *common)
    assert code == 2 and f"{same}:1:1: no-change" in text

    unbumped = tmp_path / "unbumped.yaml"
    unbumped.write_text(
        bundled_path().read_text("utf-8").replace("min_volume: 100", "min_volume: 99")
    )
    code, text = _run(capsys, "propose", str(unbumped), *common)
    version_line = unbumped.read_text().splitlines().index("  version: 1.3.1") + 1
    assert code == 2 and f"{unbumped}:{version_line}:3: version-not-bumped: meta.version" in text

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, text = _run(capsys, "propose", _bumped(tmp_path), *common, "--out", str(out))
    assert code == 2 and "not-empty" in text
    assert not (tmp_path / "gov.db").exists() and sorted(p.name for p in out.iterdir()) == [
        "keep.txt"
    ]


def test_approving_what_was_never_proposed_or_an_unknown_request_is_refused(tmp_path, capsys):
    db = str(tmp_path / "gov.db")
    code, text = _run(capsys, "constitution", "approve", "9.9.9", "--reason", "x", "--db", db)
    assert code == 2 and "no-proposal" in text and "alluse propose" in text
    code, text = _run(capsys, "constitution", "approve", "9.9.9", "--reason", " ", "--db", db)
    assert code == 2 and "--reason" in text
    # an approvals database that does not exist is not created by a reader
    code, text = _run(capsys, "approvals", "approve", "A-0", "--reason", "x", "--db", db + "x")
    assert code == 3 and "no audit log" in text
    assert main(["paper", "step", "--db", db, "--date", "2024-01-04", "--synthetic", "7"]) == 0
    capsys.readouterr()
    code, text = _run(capsys, "approvals", "approve", "A-0", "--reason", "x", "--db", db)
    assert code == 2 and "unknown-approval" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-03",
          "--approvals", "maybe"), "bad-policy"),
        (("run", "--live", "--ib", "127.0.0.1:1", "--account", "GEN=DU1",
          "--approvals", "auto-approve"), "a live run asks a person"),
        (("run", "--live", "--ib", "127.0.0.1:1", "--account", "GEN=DU1", "--unapproved"),
         "loads only an approved constitution"),
    ],
)  # fmt: skip
def test_run_and_backtest_refuse_a_bad_policy_and_live_refuses_policies(
    tmp_path, capsys, argv, expected
):
    code, text = _run(capsys, *argv, "--db", str(tmp_path / "x.db"))
    assert code == 2 and expected in text
    assert not (tmp_path / "x.db").exists()


def test_a_version_proposed_with_two_contents_is_approved_by_its_digest(tmp_path, capsys):
    from adapters.storage.governance_store import GovernanceStore
    from constitution.load import load_constitution

    db = str(tmp_path / "gov.db")
    common = ("--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-05", "--db", db)
    digests = []
    for volume in (99, 98):  # the same version number, two different texts
        (tmp_path / "v").mkdir(exist_ok=True)
        text = bundled_path().read_text("utf-8").replace("min_volume: 100", f"min_volume: {volume}")
        path = _bumped(tmp_path / "v", text)
        code, out = _run(capsys, "propose", path, *common, "--out", str(tmp_path / f"o{volume}"))
        assert code == 0, out
        digests.append(load_constitution(path).digest)
    code, text = _run(capsys, "constitution", "approve", "1.3.9", "--reason", "x", "--db", db)
    assert code == 2 and "ambiguous" in text and "--digest" in text
    assert all(d[:19] in text for d in digests)  # both named, to choose from
    chosen = digests[1][: len("sha256:") + 12]  # a prefix is enough
    code, text = _run(
        capsys, "constitution", "approve", "1.3.9", "--reason", "x", "--digest", chosen, "--db", db
    )
    assert code == 0 and "approval of proposal" in text
    store = GovernanceStore.open(f"sqlite:///{db}")
    try:
        assert [a["digest"] for a in store.approvals()] == [digests[1]]
    finally:
        store.close()
