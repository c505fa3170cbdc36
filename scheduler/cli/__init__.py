"""The ``alluse`` command line.

Each verb lives in its own module with a ``register(subparsers)`` function. Exit codes:
0 ok; 1 unexpected error; 2 invalid input (constitution, facts, arguments); 3 broker or
operational failure. A user's mistake never produces a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, NoReturn

from constitution.errors import AllUseError, InvalidInput

if TYPE_CHECKING:
    from typing import TypeAlias

# Verb -> (module that registers it, one-line help). Only the chosen verb's module is
# imported, so `alluse validate` does not pay for pandas, SciPy or SQLAlchemy at start-up.
_VERBS: dict[str, tuple[str, str]] = {
    "validate": (
        "scheduler.cli.constitution_cmds",
        "check constitution files; every problem at once",
    ),
    "show": ("scheduler.cli.constitution_cmds", "the understood constitution as tables"),
    "diff": ("scheduler.cli.constitution_cmds", "semantic diff of two constitutions"),
    "evaluate": ("scheduler.cli.evaluate_cmds", "one dry-run evaluation; nothing is sent"),
    "test": ("scheduler.cli.evaluate_cmds", "run constitution scenario files"),
    "audit": (
        "scheduler.cli.audit_cmds",
        "review the decision log: list, show, verify, export, replay",
    ),
    "data": ("scheduler.cli.data_cmds", "market data: import bars, build facts"),
    "paper": ("scheduler.cli.paper_cmds", "one paper cycle, or the paper account's status"),
    "run": ("scheduler.cli.run_cmds", "the scheduler daemon (paper unless --live)"),
    "backtest": ("scheduler.cli.run_cmds", "replay history through the same pipeline"),
    "sweep": (
        "scheduler.cli.sweep_cmds",
        "backtests over a parameter grid, local processes or Ray",
    ),
    "ib": ("scheduler.cli.ib_cmds", "Interactive Brokers: check a gateway before trading"),
    "account": ("scheduler.cli.account_cmds", "pause or resume one account (§0 user kill switch)"),
    "system": ("scheduler.cli.account_cmds", "§9 MAINTENANCE / AUDIT, §2 stress-test mode"),
    "alerts": ("scheduler.cli.alerts_cmds", "the alert outbox: list, test destinations, deliver"),
    "approvals": (
        "scheduler.cli.approvals_cmds",
        "actions waiting for a person: list, show, approve, deny",
    ),
    "propose": (
        "scheduler.cli.governance_cmds",
        "a new constitution version: diff, A/B backtest, the governance gate",
    ),
    "constitution": (
        "scheduler.cli.governance_cmds",
        "constitution versions: approve a proposal, history",
    ),
    "backup": ("scheduler.cli.backup_cmds", "copy the database; the copy is verified"),
    "restore": ("scheduler.cli.backup_cmds", "put a verified copy back"),
    "serve": ("scheduler.cli.serve_cmds", "the dashboard and JSON API (read-only)"),
    "report": (
        "scheduler.cli.report_cmds",
        "reports: weekly, monthly, quarterly (§11); a backtest's tearsheet, two runs compared",
    ),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default exits 2 too; keep it short
        self.print_usage(sys.stderr)
        print(f"alluse: error: {message}", file=sys.stderr)
        raise SystemExit(2)


if TYPE_CHECKING:
    # What a verb module's register(sub) takes: the action add_subparsers returns. Typed with
    # the base parser, so a verb's own argparse.ArgumentParser(add_help=False) can be a parent.
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _chosen_verb(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alluse", description="ALL-USE: the constitution, evaluated. Paper by default."
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    verb = _chosen_verb(sys.argv[1:] if argv is None else argv)
    if verb in _VERBS:
        _register(_VERBS[verb][0], sub)
    for name, (module, help_text) in _VERBS.items():
        if name not in sub.choices and _available(module):
            sub.add_parser(name, help=help_text)  # listed in --help; loaded when chosen
    return parser


def _register(module_name: str, sub: argparse._SubParsersAction[_Parser]) -> None:
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return
        raise
    module.register(sub)


def _available(module_name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module_name) is not None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
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
    except OSError as exc:  # a path the system refused: said as such, never a traceback
        print(f"alluse: {_os_error(exc)}", file=sys.stderr)
        return 2 if exc.errno in _PATH_ERRNOS else 3


# A path the user gave that cannot be used as given (an input problem, exit 2); any other
# refusal of the system (a full disk, an I/O error) needs an operator (exit 3).
_PATH_ERRNOS = frozenset(
    (
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.EACCES,
        errno.EPERM,
        errno.ENAMETOOLONG,
        errno.EROFS,
    )
)


def _os_error(exc: OSError) -> str:
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and exc.filename and os.path.isfile(exc.filename):
        reason = "a file is there, where a directory is needed"  # mkdir of a path under it
    return f"cannot use {where}: {reason}" if where else reason


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
