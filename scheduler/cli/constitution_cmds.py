"""``alluse validate``, ``alluse show`` and ``alluse diff``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from constitution.diff import diff
from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution, bundled_path, load_constitution
from scheduler.cli import render

if TYPE_CHECKING:
    import argparse

    from scheduler.cli import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "validate", help="check constitution files; every problem at once (exit 2 if invalid)"
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="constitution files (default: the bundled v1.3)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("show", help="the understood constitution as tables")
    p.add_argument(
        "file", nargs="?", metavar="FILE", help="constitution file (default: the bundled v1.3)"
    )
    p.add_argument("--rules", action="store_true", help="also list every rule with its condition")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="semantic diff of two constitutions")
    p.add_argument("old", metavar="A")
    p.add_argument("new", metavar="B")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=cmd_diff)


def cmd_validate(args: argparse.Namespace) -> int:
    files = args.files or [str(bundled_path())]
    problems: list[Problem] = []
    ok: list[LoadedConstitution] = []
    for f in files:
        try:
            loaded = load_constitution(f)
            ok.append(loaded)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    for p in sorted(problems):
        print(p.render(), file=sys.stderr)
    if not args.quiet:
        for c in ok:
            print(
                f"{c.source}: valid — {c.model.meta.name} {c.version}, {len(c.model.rules)} rules "
                f"in {c.rules.strata} strata, digest {c.digest}"
            )
    if problems:
        print(
            f"alluse: {len(problems)} problem(s) in {len(files) - len(ok)} file(s)", file=sys.stderr
        )
        return 2
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    loaded = load_constitution(args.file or bundled_path())
    render.constitution_tables(loaded, with_rules=args.rules)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = _load_both(args.old, args.new)
    d = diff(a.model, b.model)
    if args.json:
        out = d.to_json() | {
            "old": {"file": a.source, "digest": a.digest},
            "new": {"file": b.source, "digest": b.digest},
        }
        print(json.dumps(out, indent=2, sort_keys=True, default=str))
    else:
        render.diff_text(d, a, b)
    return 0


def _load_both(old: str, new: str) -> list[LoadedConstitution]:
    problems: list[Problem] = []
    loaded: list[LoadedConstitution] = []
    for f in (old, new):
        try:
            loaded.append(load_constitution(f))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems, what="constitution")
    return loaded
