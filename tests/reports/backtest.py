"""One short synthetic backtest per test session, shared by tests/reports and tests/web: two
weeks of seeded synthetic data through the real paper pipeline into its own SQLite file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

FIRST, LAST, SEED = date(2024, 1, 29), date(2024, 2, 9), 7  # has an L1 breach, alerts, assignments


def short_backtest(tmp_path_factory) -> Path:
    """The database of the session's short backtest (run on first use)."""
    from constitution.load import bundled_path, load_constitution
    from scheduler import compose
    from scheduler.backtest import run_backtest

    path = tmp_path_factory.getbasetemp() / "short-backtest" / "bt.db"
    done = path.with_name("done")
    if not done.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a run cut short before: start again
        run_backtest(
            load_constitution(bundled_path()),
            FIRST,
            LAST,
            f"sqlite:///{path}",
            compose.paper_cycle_factory,
            synthetic_seed=SEED,
        )
        done.write_text("ok")
    return path
