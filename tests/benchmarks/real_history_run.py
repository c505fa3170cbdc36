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


def peak_rss_mb() -> float:
    """This program's peak resident set: Linux's VmHWM, which starts again at exec. Not
    ru_maxrss: Linux carries that over from the process this one was forked from (the
    benchmark run's, ~730 MB after its 10,000 accounts), so it said the parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main(store: str, first: str, last: str, url: str) -> dict:
    constitution = load_constitution(bundled_path())
    before = peak_rss_mb()
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
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(before, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
