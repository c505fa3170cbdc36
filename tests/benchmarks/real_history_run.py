"""One real-history backtest in a process of its own, for test_bench_speed: its seconds and
the process's peak memory, as one JSON line on stdout.

    python -m tests.benchmarks.real_history_run BAR_STORE FIRST LAST DB_URL
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date

from constitution.load import bundled_path, load_constitution
from scheduler import compose
from scheduler.backtest import run_backtest


def main(store: str, first: str, last: str, url: str) -> dict:
    constitution = load_constitution(bundled_path())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    summary = run_backtest(
        constitution,
        date.fromisoformat(first),
        date.fromisoformat(last),
        url,
        compose.paper_cycle_factory,
        data_dir=store,
    )
    seconds = time.perf_counter() - started
    return {
        "sessions": summary.sessions,
        "cycles": summary.cycles,
        "run": summary.run,
        "decided": summary.decided,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mb": round(before, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
