"""Polling for tests that watch a daemon or a subprocess on the wall clock."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else a failed test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the parent-death signal is Linux's prctl(PR_SET_PDEATHSIG); elsewhere the child's "
    "life is its pipes alone",
)


def running(pid: int) -> bool:
    """A process that has not ended: it exists and is not a zombie (an orphan's reaper may be
    slow or absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def ended_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` ends within ``seconds``."""
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def child_outlives_sigkilled_parent(script: Path, args: list[str], root: Path, wait: float) -> bool:
    """Run ``script`` (a parent that starts a child and prints its pid) with ``args``, SIGKILL
    it once it has, and say whether the child is still running 10 s later. The child is
    killed (not reaped: it is not ours) whatever the answer."""
    errors = script.with_suffix(".stderr")
    with errors.open("wb") as err:
        parent = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            stderr=err,
        )
    child = None
    try:
        assert parent.stdout is not None
        ready, _, _ = select.select([parent.stdout], [], [], wait)
        line = parent.stdout.readline() if ready else b""
        assert line.strip().isdigit(), f"no child pid: {errors.read_text()[-2000:]}"
        child = int(line)
        assert running(child) and child != parent.pid
        parent.kill()
        assert parent.wait(timeout=10) == -signal.SIGKILL
        return not ended_within(child, 10)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if child is not None and running(child):
            os.kill(child, signal.SIGKILL)
