"""The ``alluse`` command line.

Each verb lives in its own module with a ``register(subparsers)`` function. Exit codes:
0 ok; 1 unexpected error; 2 invalid input (constitution, facts, arguments); 3 broker or
operational failure. A user's mistake never produces a traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from constitution.errors import AllUseError, InvalidInput

# Verb modules, in the order ``alluse --help`` lists them. A module that is not there yet
# (being built by another issue) is simply skipped.
_VERB_MODULES = (
    "scheduler.cli.constitution_cmds",
    "scheduler.cli.evaluate_cmds",
    "scheduler.cli.audit_cmds",
    "scheduler.cli.data_cmds",
    "scheduler.cli.paper_cmds",
    "scheduler.cli.run_cmds",
    "scheduler.cli.ib_cmds",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default exits 2 too; keep the message short
        self.print_usage(sys.stderr)
        print(f"alluse: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alluse", description="ALL-USE: the constitution, evaluated. Paper by default.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for name in _VERB_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInput as exc:
        print(exc.render(), file=sys.stderr)
        print(f"alluse: {exc}", file=sys.stderr)
        return exc.exit_code
    except AllUseError as exc:
        print(f"alluse: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
