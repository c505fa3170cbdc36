"""``alluse sweep GRID.yaml``: one backtest per parameter set of a grid.

A grid file names constitution keys and the values to try; every combination is one run::

    constitution: constitution/v1.3.yaml   # optional; the bundled v1.3 by default
    from: 2024-01-02
    to: 2024-12-31
    synthetic: 7                           # or  data: DIR  (bars from alluse data import)
    grid:
      vix.kill_switch: [75, 80, 85]
      protocol.levels.L2.atr_multiple: [1.5, 2.0]

Each parameter set's constitution is validated like any constitution file (all problems at
once, named by the set and the key) before anything runs, and its digest recorded; a run is
reproducible from that digest, the constitution text (kept in the run's audit log) and the
seed. Runs go to local processes (``concurrent.futures``) by default, or to a Ray cluster
(``--ray ADDRESS``, the optional ``ray`` extra). Only plain data crosses to a worker: the
constitution's text, dates, the data source and a database path; the worker loads and
validates the text itself. Results: one row per run (parameters, digest, CAGR, max drawdown
per sleeve, trades, kill/SAFE days), printed and written as CSV or Parquet.
"""

from __future__ import annotations

import copy
import csv
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from constitution.errors import InvalidInput, Problem
from constitution.load import bundled_path, load_constitution_text
from constitution.yamlsafe import Loaded, load_file, load_text

KNOWN = ("constitution", "from", "to", "synthetic", "data", "grid")
SLEEVES = ("GEN", "REV", "COM")


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
    db: str  # the run's own SQLite file


@dataclass(frozen=True)
class Grid:
    base_text: str
    base_source: str
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
    doc = load_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    problems = _shape(doc, data)
    if problems:
        raise InvalidInput(problems, what="sweep grid")
    base = Path(data["constitution"]) if "constitution" in data else bundled_path()
    if not base.is_absolute() and "constitution" in data:
        base = (Path(path).parent / base).resolve()
    return Grid(
        base_text=base.read_text("utf-8"),
        base_source=str(base),
        first=_date(data["from"]),
        last=_date(data["to"]),
        seed=data.get("synthetic"),
        data=data.get("data"),
        axes=tuple((str(k), tuple(v)) for k, v in data["grid"].items()),
    )


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
    for k in ("from", "to"):
        if k in data and not _is_date(data[k]):
            out.append(doc.problem((k,), "type", f"'{k}' is a date (YYYY-MM-DD)"))
    grid = data.get("grid")
    if "grid" in data and (not isinstance(grid, dict) or not grid):
        out.append(
            doc.problem(("grid",), "type", "'grid' maps constitution keys to lists of values")
        )
    elif isinstance(grid, dict):
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                out.append(
                    doc.problem(("grid", k), "type", f"'{k}' needs a non-empty list of values")
                )
    return out


def _is_date(value: Any) -> bool:
    try:
        _date(value)
    except ValueError:
        return False
    return True


# --- one constitution per parameter set ----------------------------------------------------------


def apply(base: dict, params: Iterable[tuple[str, Any]]) -> dict:
    """``base`` (the constitution's YAML data) with each dotted key set to its value."""
    out = copy.deepcopy(base)
    for dotted, value in params:
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise KeyError(dotted)
        node[parts[-1]] = value
    return out


def plan(grid: Grid, out_dir: Path) -> list[Run]:
    """Every parameter set as a validated constitution; all problems at once."""
    base = load_text(grid.base_text, grid.base_source).data  # times stay text (D18)
    runs, problems = [], []
    for i, params in enumerate(grid.combinations()):
        label = ", ".join(f"{k}={v}" for k, v in params)
        try:
            text = yaml.safe_dump(apply(base, params), sort_keys=False, allow_unicode=True)
            loaded = load_constitution_text(text, f"{grid.base_source} [{label}]")
        except KeyError as exc:
            problems.append(
                Problem(
                    f"grid.{exc.args[0]}",
                    1,
                    1,
                    "unknown-key",
                    "",
                    f"the constitution has no key {exc.args[0]}",
                )
            )
            continue
        except InvalidInput as exc:
            problems += exc.problems
            continue
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
                str(out_dir / f"run-{i:03d}.db"),
            )
        )
    if problems:
        raise InvalidInput(problems, what="sweep grid")
    return runs


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
        chain_feed=False,  # the sweep's processes use the cores already
    )
    return row(run, s)


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
            "db": run.db,
        }
    )
    return out


Executor = Callable[[Sequence[Run]], list[dict[str, Any]]]


def local(processes: int | None) -> Executor:
    def execute(runs: Sequence[Run]) -> list[dict[str, Any]]:
        if processes == 1:
            return [run_one(r) for r in runs]
        with ProcessPoolExecutor(max_workers=processes) as pool:
            return list(pool.map(run_one, runs))

    return execute


def on_ray(address: str | None) -> Executor:
    """Runs on a Ray cluster (``address``; None starts a local one). Needs ``alluse[ray]``."""
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
            remote = ray.remote(run_one)
            return list(ray.get([remote.remote(r) for r in runs]))
        finally:
            if started:
                ray.shutdown()

    return execute


def sweep(grid: Grid, out_dir: Path, execute: Executor) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = plan(grid, out_dir)
    return sorted(execute(runs), key=lambda r: r["run"])


# --- results -----------------------------------------------------------------------------------


def write_table(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """CSV, or Parquet for a ``.parquet`` path (pandas with pyarrow or fastparquet)."""
    if path.suffix == ".parquet":
        import pandas as pd

        try:
            pd.DataFrame(list(rows)).to_parquet(path, index=False)
        except ImportError as exc:
            raise InvalidInput(
                [Problem("--out", 1, 1, "no-parquet", "", f"writing Parquet needs pyarrow: {exc}")],
                what="arguments",
            ) from None
        return path
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["run"])
        writer.writeheader()
        writer.writerows(rows)
    return path
