"""The README's main job works on the default install (``pip install -e .``, no extras).

The test environment has every extra installed, so a top-level import of one on the main job's
path (httpx for alerts was one: the backtest failed on a fresh clone) would pass unnoticed. Here
the main job runs in a subprocess in which the optional packages cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What pyproject.toml's optional extras bring (postgres, ib, ray, alerts, web, reports, parquet).
OPTIONAL = (
    "psycopg",
    "ib_async",
    "ray",
    "httpx",
    "fastapi",
    "uvicorn",
    "jinja2",
    "prometheus_client",
    "plotly",
    "empyrical",
    "pyarrow",
)

_RUN = """
import importlib.abc, sys
BLOCKED = set({blocked!r})

class NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (an optional extra)", name=name)
        return None

sys.meta_path.insert(0, NoExtras())
from scheduler.cli import main
for argv in {commands!r}:
    code = main(argv)
    if code != 0:
        sys.exit(f"{{argv[0]}} exited {{code}}")
"""


def test_the_main_job_needs_no_optional_extra(tmp_path):
    db = str(tmp_path / "demo.db")
    commands = [
        ["validate"],
        ["backtest", "--synthetic", "7", "--from", "2024-01-02", "--to", "2024-01-05", "--db", db],
        ["audit", "verify", "--db", db],
    ]
    code = _RUN.format(blocked=OPTIONAL, commands=commands)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
