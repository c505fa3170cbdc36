"""A sweep's worker process: ``python -m scheduler.sweep_worker`` (``scheduler.sweep.local``).

One JSON line in, one out, until stdin ends: a ``Run`` (``Run.to_json``) in, its outcome
(``sweep.outcome``: the row, the located problems of a refused input, or what failed) out.
Nothing is pickled (docs/decisions.md D215): a worker is a fresh interpreter given plain data,
as the shadow and the chain feed are (D200, D212). It dies with its parent
(``die_with_parent``); the parent kills it on an interrupt.
"""

from __future__ import annotations

import sys

from adapters.children import die_with_parent, protocol_stdout


def serve() -> None:
    die_with_parent()
    protocol = protocol_stdout()
    from scheduler.sweep import outcome_json  # after the pipes are set: its imports may print

    for line in iter(sys.stdin.buffer.readline, b""):
        protocol.write(outcome_json(line.decode("utf-8")).encode("utf-8") + b"\n")
        protocol.flush()


if __name__ == "__main__":
    serve()
