"""``alluse sweep GRID.yaml``: backtests over a parameter grid, in local processes or on Ray."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import argparse
    from typing import Any

    from scheduler.cli import SubParsers
    from scheduler.sweep import Grid


def register(sub: SubParsers) -> None:
    p = sub.add_parser("sweep", help="backtests over a parameter grid, local processes or Ray")
    p.add_argument("grid", metavar="GRID.yaml", help="constitution keys and the values to try")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("sweep"),
        metavar="DIR",
        help="where each run's database and the results go (default ./sweep)",
    )
    p.add_argument(
        "--table",
        type=Path,
        default=None,
        metavar="FILE",
        help="results as CSV, or Parquet if FILE ends in .parquet (default DIR/results.csv)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="local worker processes (default: one per CPU)",
    )
    p.add_argument(
        "--ray", metavar="ADDRESS", help="run on a Ray cluster ('local' starts one here)"
    )
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from scheduler import sweep

    grid = sweep.load_grid(args.grid)
    execute = (
        sweep.on_ray(None if args.ray == "local" else args.ray)
        if args.ray
        else sweep.local(max(1, args.processes))
    )
    rows = sweep.sweep(grid, args.out, execute)
    table = sweep.write_table(rows, args.table or args.out / "results.csv")
    _print(rows, grid, table)
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _print(rows: list[dict[str, Any]], grid: Grid, table: Path) -> None:
    keys = [k for k, _ in grid.axes]
    t = Table(title=f"sweep {grid.first} .. {grid.last}: {len(rows)} runs")
    for col in (
        "run",
        *keys,
        "digest",
        "CAGR",
        *(f"max DD {s}" for s in ("GEN", "REV", "COM")),
        "trades",
        "kill days",
        "SAFE days",
    ):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["run"]),
            *(str(r[k]) for k in keys),
            r["digest"][7:19],
            _pct(r["cagr"]),
            *(_pct(r[f"max_drawdown_{s}"]) for s in ("GEN", "REV", "COM")),
            str(r["trades"]),
            str(r["kill_days"]),
            str(r["safe_days"]),
        )
    out = Console(highlight=False)
    out.print(t)
    out.print(f"results: {table}; each run's audit log: {grid.first}..{grid.last} in its db column")
