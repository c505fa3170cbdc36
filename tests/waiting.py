"""Polling for tests that watch a daemon or a subprocess on the wall clock."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else a failed test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
