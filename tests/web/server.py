"""``alluse serve`` as a real process on a free loopback port, for the web tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(base: str, proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"alluse serve exited with {proc.returncode}: {proc.stderr.read()}")
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(db: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The base URL of a server on ``db``; stopped (SIGTERM, then waited for) on exit."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "serve", "--db", str(db), "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base, proc), 60, "alluse serve to answer /healthz", poll=0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def ready(base: str, **kw) -> bool:
    return httpx.get(f"{base}/readyz", timeout=5, **kw).status_code == 200
