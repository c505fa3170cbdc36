"""What every child process of ALL-USE does first: die with its parent, and keep its stdout.

The durable-rules shadow (``adapters.shadow_process``), a backtest's chain feed
(``adapters.market_data.chain_feed``) and a sweep's workers (``scheduler.sweep_worker``) run in
child processes. A child whose parent is gone is of no use to anyone, and one stuck in C code
reads no pipe that would tell it so. Each speaks JSON lines on its stdout, which nothing else
it runs may print to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, BinaryIO

PARENT_ENV = "ALLUSE_PARENT_PID"  # the parent's pid, given to the child (die_with_parent)
ORPHANED_EXIT = 1  # a child whose parent died before it asked to die with it exits with this
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def protocol_stdout(buffering: int = -1) -> BinaryIO:
    """The child's own copy of its stdout, for its protocol lines; fd 1 and ``sys.stdout``
    become stderr, so a print (a library's, C code's) can neither forge nor break a line."""
    protocol = os.fdopen(os.dup(1), "wb", buffering=buffering)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


_ROOT = Path(__file__).resolve().parents[1]  # the directory holding adapters/, engine/, ...


def start_child(command: Sequence[str], stderr: int | IO[bytes]) -> subprocess.Popen[bytes]:
    """``command`` (``python -m MODULE``) as a child speaking on its stdin and stdout, run from
    the project's root with ``child_env()``; ``stderr``: a file, ``subprocess.PIPE`` or
    ``subprocess.DEVNULL``."""
    return subprocess.Popen(
        list(command),
        cwd=_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=child_env(),
    )


def child_env() -> dict[str, str]:
    """The environment a child is started with: this one, and this process's pid."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this child when its parent dies; elsewhere nothing.

    A closed stdin ends a child waiting for a request, not one stuck in durable's C code: that
    child would outlive a SIGKILLed daemon. A parent that died before the ``prctl`` call (the
    child already re-parented) is seen by its pid, which it put in ``PARENT_ENV``: the child
    exits at once (``ORPHANED_EXIT``). The kernel watches the parent *thread* that started the
    child: the threads that start children (the daemon's main thread and its one cycle
    worker, ``paper step``'s and a backtest's main thread) live as long as their process."""
    if not sys.platform.startswith("linux"):
        return  # no prctl: the child's life is its pipes alone
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        print(f"prctl(PR_SET_PDEATHSIG): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and int(parent) != os.getppid():
        print(f"parent {parent} is gone (parent now {os.getppid()}); exiting", file=sys.stderr)
        sys.exit(ORPHANED_EXIT)
