"""``alluse serve``: the read-only dashboard and JSON API over one database.

Bound to 127.0.0.1 by default. Any other address needs a token (``--token`` or the
``ALLUSE_SERVE_TOKEN`` environment variable, which keeps it out of the process list); the
token is never printed. ``--allow-writes`` (for routes that change something, such as
approvals) needs a token too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adapters.storage.database import ENV_VAR, display_url, resolve_url
from constitution.errors import InvalidInput, Problem

TOKEN_ENV = "ALLUSE_SERVE_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="the dashboard and JSON API (read-only; 127.0.0.1 unless a token is set)"
    )
    p.add_argument("--db", metavar="URL", help=f"database URL or SQLite path (default: ${ENV_VAR})")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (8765)")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"required to bind beyond loopback (or set {TOKEN_ENV}); clients send Authorization: Bearer TOKEN",
    )
    p.add_argument(
        "--reports",
        type=Path,
        metavar="DIR",
        help="HTML reports to list (default: the database's folder)",
    )
    p.add_argument(
        "--allow-writes",
        action="store_true",
        help="enable routes that change something (needs a token)",
    )
    p.set_defaults(func=cmd_serve)


def _problems(args: argparse.Namespace, token: str | None) -> list[Problem]:
    from adapters.web.security import is_loopback

    out = []
    if not is_loopback(args.host) and not token:
        out.append(
            Problem(
                "--host",
                1,
                1,
                "token-required",
                "",
                f"binding to {args.host} exposes the dashboard beyond this machine: set --token or {TOKEN_ENV}",
            )
        )
    if args.allow_writes and not token:
        out.append(
            Problem(
                "--allow-writes",
                1,
                1,
                "token-required",
                "",
                "writes need a token (--token or " + TOKEN_ENV + ")",
            )
        )
    if not 0 < args.port < 65536:
        out.append(Problem("--port", 1, 1, "range", "", f"{args.port} is not a TCP port"))
    if args.reports is not None and not args.reports.is_dir():
        out.append(
            Problem("--reports", 1, 1, "not-a-folder", "", f"{args.reports} is not a folder")
        )
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    problems = _problems(args, token)
    if problems:
        raise InvalidInput(problems, what="arguments")
    import uvicorn

    from adapters.web.app import ServeConfig, create_app

    url = resolve_url(args.db)
    app = create_app(
        ServeConfig(
            db_url=url, token=token, reports_dir=args.reports, writes_allowed=args.allow_writes
        )
    )
    access = "token required" if token else "no token (loopback only)"
    print(
        f"alluse serve: {display_url(url)} on http://{args.host}:{args.port}/ "
        f"({'writes allowed' if args.allow_writes else 'read-only'}; {access})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    sys.stdout.flush()
    return 0
