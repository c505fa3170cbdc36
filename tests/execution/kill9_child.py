"""Child process of the kill-9 test: run the evaluate-plan-submit cycles from where the last
run stopped. Progress is only a hint (a cycle run twice is harmless); the database holds the
truth. Usage: python -m tests.execution.kill9_child DB_URL PROGRESS_FILE CYCLES

With ``KILL9_AT_SUBMIT=N`` in the environment the process SIGKILLs itself right after the
venue accepted its N-th limit order (appending the order's id to ``PROGRESS_FILE.killed``):
a crash with a working order the ledger has not heard back about."""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

from engine.market import calendar
from tests.execution import helpers

TICKS = (
    (10, 0),
    (10, 20),
    (10, 40),
    (11, 30),
    (12, 30),
    (13, 30),
    (14, 40),
    (15, 20),
    (16, 10),
    (16, 45),
)


def times(n: int):
    out, day = [], helpers.WEEK
    while len(out) < n:
        if calendar.is_session(day):
            out += [helpers.at(day, hh, mm) for hh, mm in TICKS]
        day += timedelta(days=1)
    return out[:n]


def main(url: str, progress: str, n: int) -> int:
    from engine.cycle.bootstrap import Portfolio, open_portfolio
    from scheduler.compose import open_paper_cycle

    start = int(open(progress).read() or 0) if os.path.exists(progress) else 0
    market = helpers.market()
    cycle, broker, store = open_paper_cycle(url, market)
    ticks = times(n)
    if not store.state.accounts:
        t0 = helpers.at(helpers.WEEK, 9, 40)
        broker.sync(t0, market.snapshot(t0, cycle.symbols, cycle.params))
    open_portfolio(
        cycle,
        Portfolio(helpers.CAPITAL, helpers.WEEK),
        ticks[max(start - 1, 0)],
        broker.seed_position,
    )
    _die_at_submit(broker, progress + ".killed", int(os.environ.get("KILL9_AT_SUBMIT", 0)))
    for i in range(start, n):
        cycle.run(ticks[i])
        tmp = progress + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(i + 1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, progress)
    return 0


def _die_at_submit(broker, record: str, nth: int) -> None:
    if nth <= 0:
        return
    real, seen = broker.submit, []

    def submit(request):
        status = real(request)
        if request.order_type == "LMT":
            seen.append(request.client_order_id)
            if len(seen) == nth:
                with open(record, "a") as f:
                    f.write(request.client_order_id + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        return status

    broker.submit = submit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
