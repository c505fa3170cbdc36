"""durable-rules in a child process: the shadow paper and live cycles decide with (D200).

durable-rules' C core can crash the process that calls it (segfault, abort: P18, P20, P22 in
docs/architecture.md; the shapes found are kept from it, D214, but it is unmaintained). A paper
or live daemon must not die with it, so its shadow evaluation runs here, in a long-lived child.
``ShadowProcess`` is an ``Evaluate`` for ``engine.rules.shadow.decide_both``; the child
(``python -m adapters.shadow_process``) loads the constitution from its text once per digest and
evaluates each decision's facts with durable-rules (``evaluate(..., evaluator="durable")``, the
in-process shadow's code).

Why ``subprocess`` and JSON lines, not ``multiprocessing``: the child is a fresh interpreter
(no fork of a daemon holding APScheduler threads and database connections); nothing is
pickled (multiprocessing's spawn and forkserver hand the child its target pickled, and a
Connection's ``send`` pickles); the exit status names a crash by its signal (-11 SIGSEGV, -6
SIGABRT); and a protocol line is JSON a person can read.

Protocol, one JSON object per line (the child moves its own stdout to stderr first, so no
print - a library's, durable's C code's - can forge or corrupt a protocol line):

* child -> parent, once, when its imports are done: ``{"ready": PID}``;
* parent -> child: ``{"digest": D, "source": S, "facts": FACTS}``, with ``"text": TEXT`` when
  this child has not loaded digest D yet (its first request, and each new constitution).
  FACTS is the Facts model's JSON data, the data the compiled side digests
  (``engine.rules.explained.facts_identity``);
* child -> parent: ``{"decision": DECISION}`` (the durable Decision's ``to_json``) or
  ``{"failure": {"kind": "engine_failure" | "error", "type": NAME, "message": TEXT}}``.

What is not a decision raises ``ShadowFailed`` (``decide_both`` makes it a disagreement with
no durable result: the cycle is SAFE): the child died (``crash``: exit code, signal, the last
lines of its stderr), gave no answer within ``timeout`` seconds (``timeout``: it is killed),
answered with something that is not a Decision (``error``), or reported a failure
(``engine_failure``, ``error``). After any failure the child is ended; the next evaluation
starts a new one (durable's memory after a failed call is not trusted). ``close()`` ends it.

The child ignores SIGINT and SIGTERM: its life is its stdin. A Ctrl-C or a service manager's
SIGTERM to the process group reaches the daemon, which finishes its cycle (the child still
answering) and closes; a parent that dies closes the pipe and the child exits. A child stuck
in durable's C code reads no pipe: on Linux the kernel kills it when its parent dies
(``die_with_parent``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any

from pydantic import ValidationError

from adapters.children import die_with_parent, protocol_stdout, start_child
from constitution.load import LoadedConstitution
from engine.facts.model import Facts
from engine.records.decision import Decision
from engine.rules.explained import FactsIdentity, facts_identity
from engine.rules.shadow import FailureKind, ShadowFailed, ShadowFailure

log = logging.getLogger(__name__)

# Bounds on the child (docs/decisions.md D200). One answer: a durable evaluation of a paper
# cycle's facts takes ~6 ms and loading a new constitution ~0.3 s here; the fastest schedule
# the constitution has is 30 s (an L2 position); 10 s is far above the one and keeps a stuck
# child from costing more than a third of that tick. A start (interpreter, pydantic, durable,
# the ready line): ~0.8 s; a loaded machine may take many times that, and a child that cannot
# start at all fails at once (its exit), so the bound only catches a hang.
EVALUATE_SECONDS = 10.0
START_SECONDS = 60.0
_STDERR_LINES = 20  # the tail of the child's stderr kept for a crash's note
_DEFAULT_COMMAND = (sys.executable, "-m", "adapters.shadow_process")


class ShadowProcess:
    """durable-rules as the shadow evaluator, in a child process restarted when it dies.
    ``command`` is the child's argv (tests run a child with faults on request); ``timeout``
    bounds each answer and ``start_timeout`` a child's start, in seconds."""

    def __init__(
        self,
        *,
        timeout: float = EVALUATE_SECONDS,
        start_timeout: float = START_SECONDS,
        command: Sequence[str] | None = None,
    ):
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.command = tuple(command or _DEFAULT_COMMAND)
        self.starts = 0  # children started so far
        self._child: _Child | None = None
        self._lock = threading.Lock()  # one request at a time

    @property
    def pid(self) -> int | None:
        """The running child's process id (None: none running)."""
        child = self._child
        return child.proc.pid if child is not None and child.proc.poll() is None else None

    def __call__(
        self,
        constitution: LoadedConstitution,
        facts: Facts,
        *,
        evaluator: str = "durable",
        identity: FactsIdentity | None = None,
    ) -> Decision:
        if evaluator != "durable":
            raise ValueError(f"the shadow process evaluates with durable-rules, not {evaluator!r}")
        data, _ = identity or facts_identity(facts)
        request: dict[str, Any] = {
            "digest": constitution.digest,
            "source": constitution.source,
            "facts": data,
        }
        with self._lock:
            try:
                child = self._running()
                if child.loaded != constitution.digest:
                    request["text"] = constitution.text
                decision = _decision(child.ask(request, self.timeout))
            except ShadowFailed as exc:
                self._end()
                log.warning("durable-rules shadow: %s", exc)
                raise
            child.loaded = constitution.digest
            return decision

    def close(self) -> None:
        """End the child (it is started again if this shadow is asked once more)."""
        with self._lock:
            self._end()

    def _running(self) -> _Child:
        child = self._child
        if child is not None and child.proc.poll() is not None:
            # died between decisions: nothing was asked of it, so nothing is lost
            log.warning(
                "durable-rules shadow: process %d ended (%s) between decisions; starting another",
                child.proc.pid,
                describe_exit(child.proc.returncode),
            )
            child.end()
            child = self._child = None
        if child is None:
            self.starts += 1
            child = self._child = _Child(self.command, self.start_timeout)
        return child

    def _end(self) -> None:
        if self._child is not None:
            self._child.end()
            self._child = None


def _decision(reply: dict[str, Any]) -> Decision:
    if isinstance(reply.get("failure"), dict):
        f = reply["failure"]
        kind: FailureKind = "engine_failure" if f.get("kind") == "engine_failure" else "error"
        raise ShadowFailed(
            ShadowFailure(kind, str(f.get("message", "")), {"type": str(f.get("type", ""))})
        )
    try:
        return Decision.model_validate(reply["decision"])
    except (KeyError, ValidationError) as exc:
        raise ShadowFailed(
            ShadowFailure("error", f"the child answered something that is not a Decision: {exc}")
        ) from None


def describe_exit(code: int | None) -> str:
    """``killed by SIGSEGV`` for -11, ``exit code 1``; None: still running."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Child:
    """One child process: its pipes, a thread reading its answers into a queue and one keeping
    the tail of its stderr."""

    def __init__(self, command: Sequence[str], start_timeout: float):
        self.proc = start_child(command, stderr=subprocess.PIPE)
        self.loaded: str | None = None  # the constitution digest this child holds
        self.answers: queue.Queue[bytes | None] = queue.Queue()
        self.stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = (
            _thread(_read_lines, self.proc.stdout, self.answers.put),
            _thread(_read_stderr, self.proc.stderr, self.stderr, self.proc.pid),
        )
        # an interpreter that exits with the child running (no close) still ends it
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        try:
            ready = self._answer(start_timeout, "start")
            if not isinstance(ready.get("ready"), int):
                raise ShadowFailed(ShadowFailure("error", f"the child started with {ready!r}"))
        except ShadowFailed:
            self.end()
            raise

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        line = json.dumps(request, separators=(",", ":"), allow_nan=False).encode("utf-8")
        try:
            self.proc.stdin.write(line + b"\n")
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError: it died before reading
            raise self._crashed() from None
        return self._answer(timeout, "answer")

    def _answer(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            _kill(self.proc)
            raise ShadowFailed(
                ShadowFailure(
                    "timeout",
                    f"the durable-rules process gave no {what} within {timeout:g} s; it was killed",
                    {"pid": self.proc.pid, "seconds": timeout},
                )
            ) from None
        if line is None:
            raise self._crashed()
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise ShadowFailed(
                ShadowFailure("error", f"the child wrote a line that is not JSON: {line[:200]!r}")
            )
        return reply

    def _crashed(self) -> ShadowFailed:
        """The child's stdout closed: it ended (or is ending; it is made to)."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            code = self.proc.returncode
        self._readers[1].join(timeout=2)  # its last stderr lines
        detail: dict[str, Any] = {"pid": self.proc.pid, "exit_code": code}
        if code is not None and code < 0:
            detail["signal"] = describe_exit(code).rsplit(" ", 1)[-1]
        detail["stderr"] = list(self.stderr)
        return ShadowFailed(
            ShadowFailure(
                "crash",
                f"the durable-rules process died ({describe_exit(code)})",
                detail,
            )
        )

    def end(self) -> None:
        """Close its stdin (it exits at the end of its input), else kill it; reap it."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _kill(self.proc)
        for reader in self._readers:
            reader.join(timeout=2)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self._finalizer.detach()


def _thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, daemon=True, name="durable-shadow-reader")
    t.start()
    return t


def _read_lines(pipe: IO[bytes], put: Callable[[bytes | None], None]) -> None:
    try:
        for line in iter(pipe.readline, b""):
            put(line)
    except (OSError, ValueError):  # closed under us by end()
        pass
    put(None)  # end of output: the child has ended


def _read_stderr(pipe: IO[bytes], tail: deque[str], pid: int) -> None:
    try:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()[:500]
            tail.append(line)
            log.warning("durable-rules shadow (process %d): %s", pid, line)
    except (OSError, ValueError):
        pass


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        pass


# --------------------------------------------------------------------------- the child


def durable_decision(constitution: LoadedConstitution, facts: Facts) -> Decision:
    """What the child does with one request: durable-rules' decision."""
    from engine.rules.evaluate import evaluate

    return evaluate(constitution, facts, evaluator="durable")


def serve(decide: Callable[[LoadedConstitution, Facts], Decision] = durable_decision) -> None:
    """The child's loop: answer each request line on stdin until stdin ends."""
    die_with_parent()  # first: a parent SIGKILLed from here on takes this child with it
    import faulthandler

    protocol = protocol_stdout()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    faulthandler.enable()  # a segfault prints the Python stack to stderr (the crash's note)

    from constitution.load import load_constitution_text
    from engine.facts.load import facts_from_data
    from engine.rules.durable import EngineFailure

    def send(line: bytes) -> None:
        protocol.write(line + b"\n")
        protocol.flush()

    send(json.dumps({"ready": os.getpid()}).encode("utf-8"))
    loaded: LoadedConstitution | None = None
    for line in iter(sys.stdin.buffer.readline, b""):
        try:
            request = json.loads(line)
            if "text" in request:
                # the parent validated this text already (and its release check); here it is
                # only turned back into the same LoadedConstitution
                loaded = load_constitution_text(
                    request["text"], request["source"], released_check=False
                )
            if loaded is None or loaded.digest != request["digest"]:
                have = loaded.digest if loaded is not None else "none"
                raise ValueError(f"asked for constitution {request['digest']}, holding {have}")
            decision = decide(loaded, facts_from_data(request["facts"], "<shadow facts>"))
            send(b'{"decision":' + decision.to_json() + b"}")
        except EngineFailure as exc:
            send(_failure("engine_failure", exc))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            send(_failure("error", exc))


def _failure(kind: str, exc: Exception) -> bytes:
    data = {"kind": kind, "type": type(exc).__name__, "message": str(exc)[:2000]}
    return json.dumps({"failure": data}).encode("utf-8")


if __name__ == "__main__":
    serve()
