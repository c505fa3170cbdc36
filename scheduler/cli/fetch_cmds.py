"""``alluse data fetch --ib SYMBOL... --from D --to D``: daily bars from Interactive Brokers.

Connects read-only (nothing can be sent), downloads daily bars through IB's historical-data
service within its pacing limits, in chunks of at most a year, and writes them to the same bar
store ``data import`` writes (validated the same way, with a manifest entry per symbol). An
interrupted download is resumed by running the same command again (``adapters.ib.history``).
Exit 3 when the gateway is unreachable or goes away mid-download.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_STORE = "data/bars"


def register(verbs: Any, store_parent: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "fetch",
        parents=[store_parent],
        help="download daily bars from Interactive Brokers into the bar store (resumable)",
    )
    p.add_argument(
        "--ib", dest="symbols", nargs="+", required=True, metavar="SYMBOL", help="symbols to fetch"
    )
    p.add_argument("--from", dest="first", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="last", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7497, help="7497 TWS paper (default), 4002 Gateway")
    p.add_argument("--client-id", type=int, default=98, help="an id no other API client uses")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_fetch)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_fetch(args: argparse.Namespace) -> int:
    from adapters.ib.broker import IBConfig, IBSession
    from adapters.ib.history import HistoryFetcher
    from engine.clock import WallClock
    from scheduler.cli.data_cmds import SYMBOL, _bad_arg, print_results

    symbols = [s.strip().upper() for s in args.symbols]
    bad = [s for s in symbols if not SYMBOL.match(s)]
    if bad:
        raise _bad_arg("--ib", "bad-symbol", f"not ticker symbols: {', '.join(bad)}")
    into = Path(args.store or os.environ.get("ALLUSE_BARS_DIR") or DEFAULT_STORE)
    # read-only and live-tolerant: history sends no order, whichever accounts the gateway has
    config = IBConfig(
        host=args.host, port=args.port, client_id=args.client_id, readonly=True, live=True
    )
    clock = WallClock()
    session = IBSession(config, clock)
    try:
        session.connect()
        fetcher = HistoryFetcher(session, into, clock=clock)
        reports = fetcher.fetch(symbols, args.first, args.last)
    finally:
        session.close()
    print_results([r.result for r in reports], args.json, into)
    if not args.json:
        for r in reports:
            print(f"{r.symbol}: {r.chunks} chunk(s), {r.requested} requested, {r.resumed} resumed")
    return 0
