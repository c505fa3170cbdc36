"""The durable-rules shadow's child (``adapters.shadow_process.serve``) with faults on request,
for tests/engine/test_shadow_process.py: real processes that really crash.

``python -m tests.engine.shadow_faults FILE``: before each evaluation the child reads FILE, if
it exists, deletes it and does what it says - ``segv`` (SIGSEGV to itself, as durable's C core
does), ``kill`` (SIGKILL), ``abort`` (SIGABRT, as a failed C assertion), ``hang`` (sleeps past
any timeout), ``engine_failure`` (durable-rules' EngineFailure), ``noise`` (prints to stdout,
which must not reach the protocol) - and otherwise evaluates as the real child does. A fault
is used once: the child started after a crash evaluates normally.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from adapters.shadow_process import durable_decision, serve


def main(faults: Path) -> None:
    from engine.rules.durable import EngineFailure

    def decide(constitution, facts):
        if faults.exists():
            fault = faults.read_text("utf-8").strip()
            faults.unlink()
            if fault == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif fault == "abort":
                os.abort()
            elif fault == "hang":
                time.sleep(3600)
            elif fault == "engine_failure":
                raise EngineFailure("durable-rules failed in stratum 0: injected by the test")
            elif fault == "noise":
                print("a library printing to stdout", flush=True)
                os.write(1, b"C code writing to fd 1\n")
        return durable_decision(constitution, facts)

    serve(decide)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
