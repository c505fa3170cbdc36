"""Shared test helpers. Real history lives beside the project in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def bundled():
    from constitution.load import bundled_path, load_constitution

    return load_constitution(bundled_path())


@pytest.fixture(scope="session")
def bundled_text() -> str:
    from constitution.load import bundled_path

    return bundled_path().read_text("utf-8")


@pytest.fixture(scope="session", autouse=True)
def checkpoint_key(tmp_path_factory):
    """Every test signs checkpoints with a key of its own session, never the user's key in
    ~/.config, and a server database's checkpoints go to the session's data directory, not
    ~/.local/share (subprocesses inherit the variables)."""
    import os

    path = tmp_path_factory.mktemp("checkpoint-key") / "checkpoint.key"
    names = ("ALLUSE_CHECKPOINT_KEY", "ALLUSE_CHECKPOINT_DIR", "XDG_DATA_HOME")
    saved = {k: os.environ.pop(k, None) for k in names}
    os.environ["ALLUSE_CHECKPOINT_KEY"] = str(path)
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield path
    for k in names:
        os.environ.pop(k, None)
    os.environ.update({k: v for k, v in saved.items() if v is not None})


BENCHMARKS = ROOT / "tests" / "benchmarks"


def pytest_addoption(parser):
    parser.addoption(
        "--benchmarks",
        action="store_true",
        help="also run the pytest-benchmark suite in tests/benchmarks (figures, no timing asserts)",
    )


def pytest_collection_modifyitems(config, items):
    """A normal run prints no benchmark tables: tests/benchmarks runs only with --benchmarks
    (or when named on the command line)."""
    named = any(Path(a.split("::")[0]).resolve().is_relative_to(BENCHMARKS) for a in config.args)
    if config.getoption("--benchmarks") or named:
        return
    keep = [i for i in items if not Path(str(i.path)).is_relative_to(BENCHMARKS)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
