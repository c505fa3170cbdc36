"""``alluse sweep GRID.yaml``: one backtest per parameter set of a grid.

A grid file names constitution keys and the values to try; every combination is one run::

    constitution: constitution/v1.3.yaml   # optional; the bundled v1.3 by default
    from: 2024-01-02
    to: 2024-12-31
    synthetic: 7                           # or  data: DIR  (bars from alluse data import)
    grid:
      vix.kill_switch: [75, 80, 85]
      protocol.levels.L2.atr_multiple: [1.5, 2.0]

Each parameter set's constitution is validated like any constitution file before anything
runs, and its digest recorded; a run is reproducible from that digest, the constitution text
(kept in the run's audit log) and the seed. Every problem is reported at once and where the
user can mend it: a grid key the constitution lacks, or a value it refuses, at that key or
value in the grid file; a problem elsewhere (one value against another) in the constitution
file; each once, with the parameter sets it was found in.

Runs go to local worker processes by default (``scheduler.sweep_worker``: one JSON line in,
one out; nothing is pickled) or to a Ray cluster (``--ray ADDRESS``, the optional ``ray``
extra; Ray is handed a module function and JSON text). Only plain data crosses: the
constitution's text, dates, the data source and a database path; the worker loads and
validates the text itself. A run that fails is reported with its parameters and the others'
results are kept. Results: one row per run (parameters, digest, CAGR, max drawdown per sleeve,
trades, kill/SAFE days), printed and written as CSV or Parquet.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import queue
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import yaml

from adapters.children import start_child
from constitution.errors import InvalidInput, Problem
from constitution.load import bundled_path, load_constitution_text
from constitution.yamlsafe import Loaded, load_file

KNOWN = ("constitution", "from", "to", "synthetic", "data", "grid")
SLEEVES = ("GEN", "REV", "COM")


def label_of(params: Iterable[tuple[str, Any]]) -> str:
    """A parameter set as the user reads it: ``vix.kill_switch=75, ...``."""
    return ", ".join(f"{k}={v}" for k, v in params)


@dataclass(frozen=True)
class Run:
    """One parameter set, as plain data a worker process can be given."""

    index: int
    params: tuple[tuple[str, Any], ...]
    text: str  # the constitution with the parameters applied (validated)
    digest: str
    first: date
    last: date
    seed: int | None
    data: str | None
    db: str  # the run's own SQLite file (an absolute path: a worker runs elsewhere)
    shadow: bool = False  # durable-rules decides every decision beside the compiled path

    @property
    def label(self) -> str:
        return label_of(self.params)

    def to_json(self) -> str:
        data = asdict(self)
        data.update(first=self.first.isoformat(), last=self.last.isoformat())
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Run:
        data = json.loads(text)
        return cls(
            **{
                **data,
                "params": tuple((k, v) for k, v in data["params"]),
                "first": date.fromisoformat(data["first"]),
                "last": date.fromisoformat(data["last"]),
            }
        )


@dataclass(frozen=True)
class Grid:
    doc: Loaded  # the grid file, for locating a problem with one of its values
    base: Loaded  # the constitution the parameters are applied to
    first: date
    last: date
    seed: int | None
    data: str | None
    axes: tuple[tuple[str, tuple[Any, ...]], ...]

    def combinations(self) -> list[tuple[tuple[str, Any], ...]]:
        keys = [k for k, _ in self.axes]
        return [
            tuple(zip(keys, values, strict=True))
            for values in itertools.product(*(v for _, v in self.axes))
        ]


# --- reading the grid --------------------------------------------------------------------------


def load_grid(path: str | Path) -> Grid:
    """The grid file, checked whole: its own keys, the dates, the data, the constitution it
    names and every grid key in that constitution (``InvalidInput``: all problems at once)."""
    doc = load_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    problems = _shape(doc, data)
    base = _base(doc, data, Path(path).parent, problems)
    if base is not None and isinstance(data.get("grid"), dict):
        unknown = (_unknown_key(doc, base, str(k)) for k in data["grid"])
        problems += [p for p in unknown if p is not None]
    data_dir = _data_dir(doc, data, Path(path).parent, problems)
    if problems or base is None:
        raise InvalidInput(problems, what="sweep grid")
    return Grid(
        doc=doc,
        base=base,
        first=_date(data["from"]),
        last=_date(data["to"]),
        seed=data.get("synthetic"),
        data=data_dir,
        axes=tuple((str(k), tuple(v)) for k, v in data["grid"].items()),
    )


def _base(doc: Loaded, data: dict, here: Path, problems: list[Problem]) -> Loaded | None:
    """The constitution the grid names (relative to the grid file), else the bundled v1.3."""
    if "constitution" not in data:
        return load_file(bundled_path())
    path = Path(str(data["constitution"]))
    path = path if path.is_absolute() else (here / path).resolve()
    try:
        return load_file(path)
    except InvalidInput as exc:
        missing = [p for p in exc.problems if p.code == "file-not-found"]
        if not missing:
            raise  # the file is there and not YAML: its own located problems
        problems.append(
            doc.problem(("constitution",), "file-not-found", f"{path}: {missing[0].message}")
        )
        return None


def _unknown_key(doc: Loaded, base: Loaded, dotted: str) -> Problem | None:
    node: Any = base.data
    for depth, part in enumerate(dotted.split(".")):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(dotted.split(".")[:depth]) or "the top level"
            known = ", ".join(map(str, node)) if isinstance(node, dict) else "no keys"
            return doc.problem(
                ("grid", dotted),
                "unknown-key",
                f"the constitution has no key {dotted} ({where} has: {known})",
            )
        node = node[part]
    return None


def _data_dir(doc: Loaded, data: dict, here: Path, problems: list[Problem]) -> str | None:
    """``data: DIR`` (relative to the grid file, as ``constitution``), which must exist."""
    if "data" not in data:
        return None
    path = Path(str(data["data"]))
    path = path if path.is_absolute() else (here / path).resolve()
    if not path.is_dir():
        problems.append(
            doc.problem(("data",), "file-not-found", f"{path} is not a directory of bars")
        )
    return str(path)


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _shape(doc: Loaded, data: dict) -> list[Problem]:
    out = [
        doc.problem((k,), "unknown-key", f"unknown grid key '{k}' (known: {', '.join(KNOWN)})")
        for k in sorted(set(data) - set(KNOWN))
    ]
    for k in ("from", "to", "grid"):
        if k not in data:
            out.append(doc.problem((), "missing", f"a sweep grid needs '{k}'"))
    if ("synthetic" in data) == ("data" in data):
        out.append(
            doc.problem((), "data", "choose the market data: 'synthetic: SEED' or 'data: DIR'")
        )
    seed = data.get("synthetic")
    if "synthetic" in data and (not isinstance(seed, int) or isinstance(seed, bool)):
        out.append(doc.problem(("synthetic",), "type", "'synthetic' is a seed (a whole number)"))
    return out + _span(doc, data) + _axes(doc, data)


def _span(doc: Loaded, data: dict) -> list[Problem]:
    out = [
        doc.problem((k,), "type", f"'{k}' is a date (YYYY-MM-DD)")
        for k in ("from", "to")
        if k in data and not _is_date(data[k])
    ]
    if not out and "from" in data and "to" in data and _date(data["to"]) < _date(data["from"]):
        out.append(doc.problem(("to",), "range", f"{data['to']} is before 'from' {data['from']}"))
    return out


def _axes(doc: Loaded, data: dict) -> list[Problem]:
    grid = data.get("grid")
    if "grid" in data and (not isinstance(grid, dict) or not grid):
        return [doc.problem(("grid",), "type", "'grid' maps constitution keys to lists of values")]
    return [
        doc.problem(("grid", k), "type", f"'{k}' needs a non-empty list of values")
        for k, v in (grid.items() if isinstance(grid, dict) else ())
        if not isinstance(v, list) or not v
    ]


def _is_date(value: Any) -> bool:
    try:
        _date(value)
    except ValueError:
        return False
    return True


# --- one constitution per parameter set ----------------------------------------------------------


def apply(base: dict, params: Iterable[tuple[str, Any]]) -> dict:
    """``base`` (the constitution's YAML data) with each dotted key set to its value (every key
    exists: ``load_grid`` checked them)."""
    out = copy.deepcopy(base)
    for dotted, value in params:
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return out


def plan(grid: Grid, out_dir: Path, *, shadow: bool = False) -> list[Run]:
    """Every parameter set as a validated constitution; all problems at once, located.
    ``shadow``: each run's decisions are made by both evaluators (``run_backtest``)."""
    runs: list[Run] = []
    found: dict[Problem, list[str]] = {}  # each problem, located, and the sets it was in
    combinations = grid.combinations()
    for i, params in enumerate(combinations):
        label = label_of(params)
        source = f"{grid.base.source} [{label}]"
        text = yaml.safe_dump(apply(grid.base.data, params), sort_keys=False, allow_unicode=True)
        try:
            loaded = load_constitution_text(text, source)
        except InvalidInput as exc:
            for p in exc.problems:
                found.setdefault(_located(p, source, grid, dict(params)), []).append(label)
            continue
        db = str(out_dir.resolve() / f"run-{i:03d}.db")
        runs.append(
            Run(
                i,
                params,
                text,
                loaded.digest,
                grid.first,
                grid.last,
                grid.seed,
                grid.data,
                db,
                shadow,
            )
        )
    if found:
        raise InvalidInput(
            [_with_sets(p, sets, len(combinations)) for p, sets in found.items()],
            what="sweep grid",
        )
    return runs


def _located(p: Problem, source: str, grid: Grid, params: dict[str, Any]) -> Problem:
    """A parameter set's problem where the user can mend it: at the grid's value when it is
    in a key the grid sets, else at its place in the constitution file (the set's text is
    made from the data, so its own lines are no one's)."""
    if p.file != source:
        return p
    for key, value in params.items():
        if p.path == key or p.path.startswith((key + ".", key + "[")):
            index = next(i for k, v in grid.axes if k == key for i, x in enumerate(v) if x == value)
            line, col = grid.doc.where(("grid", key, index))
            return Problem(grid.doc.source, line, col, p.code, p.path, p.message)
    line, col = grid.base.where(_path(p.path))
    return Problem(grid.base.source, line, col, p.code, p.path, p.message)


def _path(dotted: str) -> tuple[str | int, ...]:
    return tuple(
        int(part[1:-1]) if part.startswith("[") else part
        for part in re.findall(r"\[\d+\]|[^.\[\]]+", dotted)
    )


def _with_sets(p: Problem, sets: list[str], total: int) -> Problem:
    if len(sets) == total and total > 1:
        where = f"every parameter set ({total})"
    elif len(sets) == 1:
        where = f"parameter set {sets[0]}"
    else:
        where = f"{len(sets)} of {total} parameter sets, the first {sets[0]}"
    return Problem(p.file, p.line, p.col, p.code, p.path, f"{p.message} (in {where})")


# --- running ------------------------------------------------------------------------------------


def run_one(run: Run) -> dict[str, Any]:
    """One backtest, in whatever process runs it (plain data in, plain data out)."""
    from scheduler import compose
    from scheduler.backtest import run_backtest

    constitution = load_constitution_text(run.text, f"sweep run {run.index}")
    assert constitution.digest == run.digest  # the text is the validated one
    s = run_backtest(
        constitution,
        run.first,
        run.last,
        f"sqlite:///{run.db}",
        compose.paper_cycle_factory,
        data_dir=run.data,
        synthetic_seed=run.seed,
        shadow=run.shadow,
        chain_feed=False,  # the sweep's processes use the cores already
    )
    return row(run, s)


def outcome(run: Run) -> dict[str, Any]:
    """``run_one``'s row, or what stopped it, as JSON data: ``{"run": i, "row": ROW}``, or
    ``"problems"`` (the located problems of an input it refused) or ``"failed"``."""
    try:
        return {"run": run.index, "row": run_one(run)}
    except InvalidInput as exc:
        return {"run": run.index, "problems": [p.render() for p in exc.problems]}
    except Exception as exc:  # a run's failure is reported with its parameters; the rest go on
        return {"run": run.index, "failed": f"{type(exc).__name__}: {exc}"}


def outcome_json(run_json: str) -> str:
    """``outcome`` from JSON text to JSON text: all a worker or a Ray task is handed and gives."""
    return json.dumps(outcome(Run.from_json(run_json)))


def row(run: Run, s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"run": run.index}
    out.update({k: v for k, v in run.params})
    out.update(
        {
            "digest": run.digest,
            "seed": run.seed,
            "cagr": s.cagr,
            **{f"max_drawdown_{a}": s.max_drawdown.get(a) for a in SLEEVES},
            "trades": s.trades,
            "kill_days": len(s.mode_days["kill"]),
            "safe_days": len(s.mode_days["safe"]),
            "decided": s.decided,
            **({"disagreements": s.disagreements} if run.shadow else {}),
            "db": run.db,
        }
    )
    return out


Executor = Callable[[Sequence[Run]], list[dict[str, Any]]]  # runs -> their outcomes
_WORKER = (sys.executable, "-m", "scheduler.sweep_worker")


def local(processes: int | None) -> Executor:
    """``processes`` worker processes (``scheduler.sweep_worker``); 1 runs them here."""

    def execute(runs: Sequence[Run]) -> list[dict[str, Any]]:
        if processes == 1:
            return [outcome(r) for r in runs]
        return _in_workers(runs, max(1, min(processes or 1, len(runs))))

    return execute


def _in_workers(runs: Sequence[Run], workers: int) -> list[dict[str, Any]]:
    """The runs shared by ``workers`` threads, each with its worker process. An interrupt
    (Ctrl-C) or any other error here ends every worker at once and is raised: no run is
    started after it, and no worker outlives the command."""
    pending: queue.SimpleQueue[Run] = queue.SimpleQueue()
    for r in runs:
        pending.put(r)
    pool = _Pool(pending)
    done = [threading.Event() for _ in range(workers)]
    threads = [threading.Thread(target=pool.work, args=(d,)) for d in done]
    for t in threads:
        t.start()
    # Waited for on events, not by join: a join that an interrupt cuts short marks its thread
    # as ended while it runs on (CPython 3.11's Thread._wait_for_tstate_lock), and the next
    # join would not wait for that thread's worker to be ended.
    try:
        for d in done:
            d.wait()
    except BaseException:
        pool.stop()
        for d in done:
            d.wait()
        raise
    for t in threads:
        t.join()  # each has finished: this only collects it
    return [pool.outcomes[r.index] for r in runs]


class _Pool:
    """What the threads share: the runs left, their outcomes, the workers running."""

    def __init__(self, pending: queue.SimpleQueue[Run]) -> None:
        self.pending = pending
        self.outcomes: dict[int, dict[str, Any]] = {}
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._running: set[_Worker] = set()

    def work(self, done: threading.Event) -> None:
        """One worker process's share: runs until none is left. Each run is tried once; a
        worker that died with one is replaced for the next. ``done`` is set when this thread's
        worker has been ended."""
        worker: _Worker | None = None
        try:
            while not self._stopped.is_set():
                try:
                    run = self.pending.get_nowait()
                except queue.Empty:
                    return
                if worker is None or not worker.alive():
                    worker = self._started()
                    if worker is None:
                        return
                self.outcomes[run.index] = worker.ask(run)
        finally:
            try:
                if worker is not None:
                    worker.close()
            finally:
                done.set()

    def _started(self) -> _Worker | None:
        with self._lock:  # a stop between the check and the start still ends this worker
            if self._stopped.is_set():
                return None
            worker = _Worker()
            self._running.add(worker)
            return worker

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            for w in self._running:
                w.kill()


class _Worker:
    """``python -m scheduler.sweep_worker``: a Run's JSON on its stdin, the outcome's on its
    stdout; its stderr kept in a temporary file for the note of a death."""

    def __init__(self) -> None:
        self.stderr: IO[bytes] = tempfile.TemporaryFile()
        self.proc = start_child(_WORKER, stderr=self.stderr)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask(self, run: Run) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(run.to_json().encode("utf-8") + b"\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = b""
        if line:
            answer: dict[str, Any] = json.loads(line)
            return answer
        return {"run": run.index, "failed": self._death()}

    def _death(self) -> str:
        code = self.proc.wait()
        self.stderr.seek(0)
        last = [x for x in self.stderr.read().decode("utf-8", "replace").splitlines() if x]
        said = f": {last[-1]}" if last else ""
        return f"the worker process ended (exit code {code}){said}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the worker's loop ends with its stdin
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def on_ray(address: str | None) -> Executor:
    """Runs on a Ray cluster (``address``; None starts a local one). Needs ``alluse[ray]``.
    Ray moves its tasks with cloudpickle; what it is handed here is ``outcome_json``, a module
    function, and JSON text each way."""
    try:
        import ray
    except ImportError:
        raise InvalidInput(
            [
                Problem(
                    "--ray",
                    1,
                    1,
                    "not-installed",
                    "",
                    "Ray is an optional extra: pip install 'alluse[ray]'",
                )
            ],
            what="arguments",
        ) from None

    def execute(runs: Sequence[Run]) -> list[dict[str, Any]]:
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(outcome_json)
            answers = ray.get([remote.remote(r.to_json()) for r in runs])
            return [json.loads(a) for a in answers]
        finally:
            if started:
                ray.shutdown()

    return execute


@dataclass(frozen=True)
class Swept:
    """A sweep's results: a row per run that ran, and a line per run that did not."""

    rows: list[dict[str, Any]]
    failures: list[str]  # "run 2 (vix.kill_switch=85): what stopped it", or its disagreements


def sweep(grid: Grid, out_dir: Path, execute: Executor, *, shadow: bool = False) -> Swept:
    runs = plan(grid, out_dir, shadow=shadow)
    _refuse_used(runs, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_index = {r.index: r for r in runs}
    rows, failures = [], []
    for o in sorted(execute(runs), key=lambda o: o["run"]):
        if "row" in o:
            rows.append(o["row"])
            continue
        why = "; ".join(o["problems"]) if "problems" in o else o["failed"]
        failures.append(f"run {o['run']} ({by_index[o['run']].label}): {why}")
    for r in rows:
        if r.get("disagreements"):
            label = by_index[r["run"]].label
            failures.append(
                f"run {r['run']} ({label}): the evaluators disagreed on {r['disagreements']}"
                f" decisions (each recorded with both results in {r['db']})"
            )
    return Swept(rows, failures)


def _refuse_used(runs: Sequence[Run], out_dir: Path) -> None:
    """A run's database must be new (a backtest needs its own): say so before any runs."""
    used = [Path(r.db).name for r in runs if Path(r.db).exists()]
    if used:
        shown = ", ".join(used[:3]) + (f" and {len(used) - 3} more" if len(used) > 3 else "")
        raise InvalidInput(
            [
                Problem(
                    "--out",
                    1,
                    1,
                    "not-empty",
                    "",
                    f"{out_dir} already holds {shown}: each run needs a new database;"
                    " choose another --out, or move those files away",
                )
            ],
            what="arguments",
        )


# --- results -----------------------------------------------------------------------------------


def output_problems(out_dir: Path, table: Path) -> list[Problem]:
    """What would stop the sweep from keeping its results, found before any run: an ``--out``
    that is a file, a table whose directory is not there (``--out`` itself is made), a table
    that is a directory, Parquet without its engine."""
    problems = []
    if out_dir.exists() and not out_dir.is_dir():
        problems.append(_argument("--out", "not-a-directory", f"{out_dir} is a file"))
    if table.is_dir():
        problems.append(_argument("--table", "is-a-directory", f"{table} is a directory"))
    elif table.parent != out_dir and not table.parent.is_dir():
        problems.append(
            _argument("--table", "file-not-found", f"{table.parent} is not a directory")
        )
    if table.suffix == ".parquet" and not _parquet_engine():
        problems.append(
            _argument("--table", "no-parquet", "writing Parquet needs pyarrow or fastparquet")
        )
    return problems


def _argument(flag: str, code: str, message: str) -> Problem:
    return Problem(flag, 1, 1, code, "", message)


def _parquet_engine() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet"))


def write_table(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """CSV, or Parquet for a ``.parquet`` path (pandas with pyarrow or fastparquet)."""
    if path.suffix == ".parquet":
        import pandas as pd

        try:
            pd.DataFrame(list(rows)).to_parquet(path, index=False)
        except ImportError as exc:
            raise InvalidInput(
                [_argument("--table", "no-parquet", f"writing Parquet needs pyarrow: {exc}")],
                what="arguments",
            ) from None
        return path
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["run"])
        writer.writeheader()
        writer.writerows(rows)
    return path
