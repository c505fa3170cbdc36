"""A child process that evaluates with durable-rules, for tests that generate rules.

durable-rules' C core can still crash the process on rare generated rule shapes (the hazards
after P20 in docs/architecture.md). The random-rules agreement test evaluates durable here, so a
crash ends this child - reported as a crash on that example - and never the test run.

Protocol: one JSON line in ({"text": constitution text, "facts": facts as JSON data}), one line
out: the durable Decision's JSON, or {"invalid": message} for a constitution the loader refuses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class DurableCrashed(Exception):
    """The child died while evaluating (a crash of durable's C core)."""


class DurableWorker:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.engine.durable_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def evaluate(self, text: str, facts: dict) -> str:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(json.dumps({"text": text, "facts": facts}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._proc = None
            raise DurableCrashed("durable-rules' child process died")
        return line.rstrip("\n")

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()  # type: ignore[union-attr]
            self._proc.wait(timeout=30)


def _serve() -> None:
    from constitution.errors import InvalidInput
    from constitution.load import load_constitution_text
    from engine.facts.load import facts_from_data
    from engine.rules.evaluate import evaluate

    for line in sys.stdin:
        request = json.loads(line)
        try:
            constitution = load_constitution_text(request["text"], "<random rules>")
        except InvalidInput as exc:
            print(json.dumps({"invalid": str(exc)}), flush=True)
            continue
        facts = facts_from_data(request["facts"])
        decision = evaluate(constitution, facts, evaluator="durable")
        print(decision.to_json().decode("utf-8"), flush=True)


if __name__ == "__main__":
    _serve()
