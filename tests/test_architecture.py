"""The dependency direction scheduler -> adapters -> engine -> constitution, enforced.

Also: durable-rules only in engine/rules.py, SQL only in adapters/storage, APScheduler only in
scheduler/, the IB client only in its adapters, and no eval/exec or unsafe YAML anywhere.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("constitution", "engine", "adapters", "scheduler")
LAYER = {"constitution": 0, "engine": 1, "adapters": 2, "scheduler": 3}


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, ast.parse(path.read_text("utf-8"), str(path))


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_layers_only_import_downwards():
    wrong = []
    for path, tree in _modules():
        own = LAYER[_rel(path).split("/")[0]]
        for name in _imports(tree):
            top = name.split(".")[0]
            if top in LAYER and LAYER[top] > own:
                wrong.append(f"{_rel(path)} imports {name}")
    assert wrong == []


@pytest.mark.parametrize(("library", "allowed"), [
    ("durable", lambda p: p == "engine/rules.py"),
    ("sqlmodel", lambda p: p.startswith("adapters/storage/")),
    ("sqlalchemy", lambda p: p.startswith("adapters/storage/")),
    ("apscheduler", lambda p: p.startswith("scheduler/")),
    ("ib_async", lambda p: p.startswith(("adapters/brokers/ib", "adapters/market_data/ib"))),
    ("ib_insync", lambda p: p.startswith(("adapters/brokers/ib", "adapters/market_data/ib"))),
])
def test_libraries_stay_in_their_module(library, allowed):
    offenders = [_rel(p) for p, tree in _modules() if any(n.split(".")[0] == library for n in _imports(tree)) and not allowed(_rel(p))]
    assert offenders == []


def test_no_eval_or_exec_and_yaml_is_loaded_safely():
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id in ("eval", "exec", "compile"):
                    offenders.append(f"{_rel(path)}:{node.lineno} {f.id}()")
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "yaml" \
                        and f.attr in ("load", "load_all", "unsafe_load", "full_load"):
                    offenders.append(f"{_rel(path)}:{node.lineno} yaml.{f.attr}()")
    assert offenders == []


def test_wall_clock_is_read_only_in_engine_clock():
    offenders = []
    for path, tree in _modules():
        if _rel(path) == "engine/clock.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date"):
                offenders.append(f"{_rel(path)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "time" and isinstance(node.value, ast.Name) \
                    and node.value.id == "time":
                offenders.append(f"{_rel(path)}:{node.lineno} time.time")
    assert offenders == []


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed in this environment")
    proc = subprocess.run([ruff, "check", "--no-cache", *PACKAGES, "tests"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
