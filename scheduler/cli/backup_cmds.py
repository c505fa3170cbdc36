"""``alluse backup --db X --to DIR`` (a copy that verifies, with its manifest) and ``alluse
restore --from COPY --db X`` (refuses a copy that does not verify)."""

from __future__ import annotations

import argparse
from pathlib import Path

from adapters.storage.database import ENV_VAR
from engine.clock import WallClock


def register(subparsers: argparse._SubParsersAction) -> None:
    b = subparsers.add_parser(
        "backup", help="copy the database (SQLite online backup / pg_dump); the copy is verified"
    )
    b.add_argument("--db", metavar="URL", help=f"database URL or SQLite path (default: ${ENV_VAR})")
    b.add_argument(
        "--to", required=True, type=Path, metavar="DIR", help="folder for the copy and its manifest"
    )
    b.set_defaults(func=cmd_backup)

    r = subparsers.add_parser(
        "restore", help="put a verified SQLite copy back; refuses one that does not verify"
    )
    r.add_argument(
        "--from",
        dest="copy",
        required=True,
        type=Path,
        metavar="COPY",
        help="a copy made by alluse backup",
    )
    r.add_argument("--db", metavar="URL", help="the SQLite database to restore into")
    r.add_argument("--force", action="store_true", help="replace an existing database")
    r.set_defaults(func=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    from adapters.storage.backup import backup

    result = backup(args.db, args.to, WallClock())
    print(
        f"backup {result.path}: {result.records} records verified, head #{result.head_seq} {result.head_hash}"
    )
    print(
        f"manifest {result.manifest} (check again: alluse audit verify --db {result.path} --anchor {result.head_hash})"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from adapters.storage.backup import restore

    report = restore(args.copy, args.db, WallClock(), force=args.force)
    print(
        f"restored {args.copy}: {report.count} records verified, head #{report.head_seq} {report.head_hash}"
    )
    return 0
