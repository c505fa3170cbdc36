"""mypy over constitution, engine, adapters and scheduler: 0 errors (pyproject [tool.mypy]).

All four (``constitution.*``, ``engine.*``, ``adapters.*``, ``scheduler.*``) are checked with ``disallow_untyped_defs``:
every function says what it takes and returns. The cache (.mypy_cache, git-ignored) keeps a rerun to seconds.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mypy"]


def test_mypy_checks_every_package_and_types_the_core_strictly():
    config = _config()
    assert config["packages"] == ["constitution", "engine", "adapters", "scheduler"]
    strict = [
        o
        for o in config["overrides"]
        if o.get("disallow_untyped_defs")
        and set(o["module"]) >= {"constitution.*", "engine.*", "adapters.*"}
    ]
    assert strict, "constitution.*, engine.* and adapters.* need disallow_untyped_defs"
    assert not config.get("ignore_missing_imports"), "ignore missing imports per module only"


def test_mypy_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 0 and not errors, (
        f"mypy found {len(errors)} error(s):\n" + "\n".join(errors[:200]) + proc.stderr[-2000:]
    )
