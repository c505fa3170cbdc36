"""The dependency direction scheduler -> adapters -> engine -> constitution, enforced.

Also: durable-rules only in engine/rules/durable.py, SQL only in adapters/storage, APScheduler only in
scheduler/, the IB client only in its adapters, and no eval/exec or unsafe YAML anywhere.
"""

from __future__ import annotations

import ast
import re
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


# engine's rooms and the rooms each may import (besides itself, engine.clock and constitution).
ROOMS: dict[str, frozenset[str]] = {
    "facts": frozenset(),
    "records": frozenset(),
    "market": frozenset({"facts"}),
    "rules": frozenset({"facts", "market", "records"}),
    "execution": frozenset({"facts", "market", "records"}),
    "cycle": frozenset({"facts", "market", "records", "rules", "execution"}),
}
ENGINE_MODULES = {"__init__.py", "clock.py"}  # all else lives in a room


def _engine_room(path: Path) -> str | None:
    rel = path.relative_to(ROOT / "engine")
    return rel.parts[0] if len(rel.parts) > 1 else None


def test_engine_is_made_of_rooms():
    loose = sorted(p.name for p in (ROOT / "engine").glob("*.py") if p.name not in ENGINE_MODULES)
    rooms = sorted(
        p.name for p in (ROOT / "engine").iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert loose == [] and rooms == sorted(ROOMS)


def test_engine_rooms_import_only_the_rooms_they_name():
    wrong = []
    for path, tree in _modules():
        if _rel(path).split("/")[0] != "engine":
            continue
        room = _engine_room(path)
        allowed = ROOMS.get(room, frozenset()) | {room, "clock"}
        for name in _imports(tree):
            parts = name.split(".")
            if parts[0] == "engine" and len(parts) > 1 and parts[1] not in allowed:
                wrong.append(f"{_rel(path)} imports {name}")
    assert wrong == []


def test_each_room_says_what_it_holds_and_may_import():
    for room, allowed in ROOMS.items():
        doc = (
            ast.get_docstring(
                ast.parse((ROOT / "engine" / room / "__init__.py").read_text("utf-8"))
            )
            or ""
        )
        assert "May import:" in doc, (
            f"engine/{room}/__init__.py needs a docstring with 'May import:'"
        )
        named = set(re.findall(r"engine\.(\w+)", doc.split("May import:", 1)[1]))
        assert named - {"clock"} == set(allowed), (
            f"engine/{room}: docstring names {sorted(named)}, ROOMS says {sorted(allowed)}"
        )


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("durable", lambda p: p == "engine/rules/durable.py"),
        ("sqlmodel", lambda p: p.startswith("adapters/storage/")),
        ("sqlalchemy", lambda p: p.startswith("adapters/storage/")),
        ("apscheduler", lambda p: p.startswith("scheduler/")),
        ("ib_async", lambda p: p.startswith("adapters/ib/")),
        ("ib_insync", lambda p: p.startswith("adapters/ib/")),
    ],
)
def test_libraries_stay_in_their_module(library, allowed):
    offenders = [
        _rel(p)
        for p, tree in _modules()
        if any(n.split(".")[0] == library for n in _imports(tree)) and not allowed(_rel(p))
    ]
    assert offenders == []


# Serialisers that can run code when they load: nothing the program stores may need one
# (issue 16: APScheduler's SQL job store unpickled job rows from the database).
CODE_LOADERS = (
    "pickle",
    "cPickle",
    "shelve",
    "dill",
    "cloudpickle",
    "marshal",
    "joblib",
    "jsonpickle",
)


def test_no_pickle_or_other_code_loading_serialiser_anywhere():
    offenders = [
        f"{_rel(p)}: {n}"
        for p, tree in _modules()
        for n in _imports(tree)
        if n.split(".")[0] in CODE_LOADERS or n == "apscheduler.jobstores.sqlalchemy"
    ]
    assert offenders == []


# Transports that pickle what crosses between processes (a target, its arguments, its result,
# an exception): children here are fresh interpreters spoken to in JSON lines (D200, D212,
# D215). Ray's own transport (cloudpickle) is Ray's; the sweep hands it JSON text.
PICKLING_TRANSPORTS = {"multiprocessing", "concurrent.futures.ProcessPoolExecutor"}


def test_no_process_pool_or_multiprocessing_that_would_pickle_between_processes():
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [
                f"{_rel(path)}: {n}"
                for n in names
                if n in PICKLING_TRANSPORTS or n.split(".")[0] == "multiprocessing"
            ]
    assert offenders == []


# The one module that turns generated text into code: the rules' matching loops and their
# explanations, written from the typed AST with no user value in the text
# (engine/rules/generated.py, D210); never eval.
GENERATED_CODE = {"engine/rules/generated.py": {"compile", "exec"}}


def test_no_eval_or_exec_and_yaml_is_loaded_safely():
    offenders = []
    for path, tree in _modules():
        allowed = GENERATED_CODE.get(_rel(path), set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                if (
                    isinstance(f, ast.Name)
                    and f.id in ("eval", "exec", "compile")
                    and f.id not in allowed
                ):
                    offenders.append(f"{_rel(path)}:{node.lineno} {f.id}()")
                if (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "yaml"
                    and f.attr in ("load", "load_all", "unsafe_load", "full_load")
                ):
                    offenders.append(f"{_rel(path)}:{node.lineno} yaml.{f.attr}()")
    assert offenders == []


WALL_CLOCK = {
    ("datetime", "now"),
    ("datetime", "today"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "time_ns"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter_ns"),
}


def _wall_clock_reads(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in WALL_CLOCK
        ):
            yield node.lineno, f"{node.value.id}.{node.attr}"
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if (node.module, alias.name) in WALL_CLOCK:
                    yield node.lineno, f"from {node.module} import {alias.name}"


def test_wall_clock_is_read_only_in_engine_clock():
    offenders = [
        f"{_rel(path)}:{line} {what}"
        for path, tree in _modules()
        if _rel(path) != "engine/clock.py"
        for line, what in _wall_clock_reads(tree)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "probe",
    [
        "from datetime import datetime\nx = datetime.now()\n",
        "import time\nx = time.time()\n",
        "import time\nx = time.monotonic()\n",
        "from time import monotonic\n",
        "from datetime import date\nx = date.today()\n",
    ],
)
def test_the_wall_clock_check_catches_every_read(probe):
    assert list(_wall_clock_reads(ast.parse(probe)))


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed in this environment")
    proc = subprocess.run(
        [ruff, "check", "--no-cache", *PACKAGES, "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    fmt = [ruff, "format", "--check", "--no-cache", *PACKAGES, "tests"]
    proc = subprocess.run(fmt, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, "run: ruff format .\n" + proc.stdout[-4000:]
