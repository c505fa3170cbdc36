"""``alluse sweep GRID.yaml``: backtests over a parameter grid, in local processes or on Ray."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
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
    p.add_argument(
        "--shadow",
        action="store_true",
        help="durable-rules decides every decision beside the compiled path; a disagreement exits 1",
    )
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from constitution.errors import InvalidInput
    from scheduler import sweep

    grid = sweep.load_grid(args.grid)
    table = args.table or args.out / "results.csv"
    problems = sweep.output_problems(args.out, table)
    if problems:
        raise InvalidInput(problems, what="arguments")
    execute = (
        sweep.on_ray(None if args.ray == "local" else args.ray)
        if args.ray
        else sweep.local(max(1, args.processes))
    )
    swept = sweep.sweep(grid, args.out, execute, shadow=args.shadow)
    if swept.rows:  # shown before it is written: a failed write loses nothing on the screen
        _print(swept.rows, grid, table)
    sweep.write_table(swept.rows, table)
    for line in swept.failures:
        print(f"alluse: sweep {line}", file=sys.stderr)
    return 1 if swept.failures else 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _print(rows: list[dict[str, Any]], grid: Grid, table: Path) -> None:
    """The table whole, however narrow the terminal (rich would cut the cells and drop the
    columns that do not fit); the digest's first 8 hex digits here, whole in the results."""
    keys = [k for k, _ in grid.axes]
    cells = [
        [
            str(r["run"]),
            *(str(r[k]) for k in keys),
            r["digest"][7:15],
            _pct(r["cagr"]),
            *(_pct(r[f"max_drawdown_{s}"]) for s in ("GEN", "REV", "COM")),
            str(r["trades"]),
            str(r["kill_days"]),
            str(r["safe_days"]),
        ]
        for r in rows
    ]
    headers = ["run", *keys, "digest", "CAGR", "max DD GEN", "max DD REV", "max DD COM"]
    headers += ["trades", "kill days", "SAFE days"]
    if "disagreements" in rows[0]:  # --shadow
        headers.append("disagreements")
        for c, r in zip(cells, rows, strict=True):
            c.append(str(r["disagreements"]))
    t = Table(
        title=f"sweep {grid.first} .. {grid.last}: {len(rows)} runs",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
        pad_edge=False,
    )
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    for i, header in enumerate(headers):
        t.add_column(
            header, no_wrap=True, min_width=widths[i], justify="right" if i == 0 else "left"
        )
    for c in cells:
        t.add_row(*c)
    # never narrower than the table: rich would cut the cells or the columns that do not fit
    width = max(Console().width, sum(widths) + 2 * len(widths))
    out = Console(highlight=False, width=width)
    out.print(t)
    out.print(f"results: {table} (each run's audit log: the file in its db column)")
