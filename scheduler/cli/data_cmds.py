"""``alluse data import|fetch|facts``: bring daily bars in, and show the facts the engine would see.

``data import FILE... --into DIR`` validates bar files in the layouts users have (Yahoo, Stooq,
IB exports, OHLC, close-only; ``adapters.market_data.formats``) and writes them to a bar store
with a manifest (``adapters.market_data.store``); ``--into`` defaults to ``$ALLUSE_BARS_DIR`` or
``./data/bars``. A file is named ``SYMBOL=FILE`` when its name does not say its symbol. Every
finding is printed; a file that cannot be used refuses the whole batch, nothing written.
``data facts --date D`` prints the facts document at D (10:00 New York unless ``--time``)
from the bar store or, with ``--synthetic SEED``, from the seeded synthetic market. Sleeve
tickers, delta bands, DTE, windows and the quote-age limit come from the constitution.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from adapters.market_data import store as store_mod
from adapters.market_data.files import BarMarketData, FileMarketData
from adapters.market_data.synthetic import EPOCH, synthetic_market
from constitution.errors import InvalidInput, Problem
from engine.facts.model import NEW_YORK, Account, Facts, Position
from engine.market import calendar
from engine.market.facts_builder import build_facts, candidates_for_day
from engine.market.params import market_params

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters.market_data.store import ImportResult
    from constitution.models import Constitution
    from engine.market.snapshot import MarketSnapshot
    from scheduler.cli import SubParsers

DEFAULT_STORE = "data/bars"
SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


def register(subparsers: SubParsers) -> None:
    data = subparsers.add_parser(
        "data", help="market data: import or fetch daily bars; show the facts for a date"
    )
    verbs = data.add_subparsers(dest="data_verb", metavar="ACTION", parser_class=type(data))
    verbs.required = True
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--into",
        "--store",
        dest="store",
        metavar="DIR",
        help=f"bar store (default: $ALLUSE_BARS_DIR or ./{DEFAULT_STORE})",
    )

    p = verbs.add_parser(
        "import",
        parents=[store],
        help="validate daily-bar files (Yahoo, Stooq, IB, OHLC, close-only) into a bar store",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="[SYMBOL=]FILE",
        help="a bar file; SYMBOL= when its name does not say it (vix-daily.csv is VIX)",
    )
    p.add_argument("--symbol", help="symbol of the (single) file")
    p.add_argument("--json", action="store_true", help="the import report as JSON")
    p.set_defaults(func=cmd_import)

    from scheduler.cli import fetch_cmds

    fetch_cmds.register(verbs, store)

    p = verbs.add_parser(
        "facts", parents=[store], help="print the facts document at a date (YAML or JSON)"
    )
    p.add_argument(
        "--date", required=True, type=_date, help="New York date, YYYY-MM-DD (an NYSE session)"
    )
    p.add_argument(
        "--time", type=_time, default=time(10, 0), help="New York time HH:MM (default 10:00)"
    )
    p.add_argument(
        "--synthetic",
        type=int,
        metavar="SEED",
        help="use the seeded synthetic market instead of the bar store",
    )
    p.add_argument(
        "--symbols",
        type=_symbols,
        help="comma-separated underlyings (default: the sleeves' tickers)",
    )
    p.add_argument(
        "--constitution", metavar="FILE", help="constitution file (default: the bundled one)"
    )
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.set_defaults(func=cmd_facts)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (HH:MM): {text!r}") from None


def _symbols(text: str) -> tuple[str, ...]:
    out = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    bad = [s for s in out if not SYMBOL.match(s)]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"not ticker symbols: {', '.join(bad) or text!r}")
    return out


def _bad_arg(option: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem("<arguments>", 1, 1, code, option, message)], what="arguments")


def _store(args: argparse.Namespace) -> Path:
    return Path(args.store or os.environ.get("ALLUSE_BARS_DIR") or DEFAULT_STORE)


# --- import ---------------------------------------------------------------------------------


def _jobs(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    if args.symbol and len(args.files) > 1:
        raise _bad_arg(
            "--symbol", "ambiguous", "--symbol names one file; name several as SYMBOL=FILE"
        )
    jobs: list[tuple[str, str | None]] = []
    for item in args.files:
        name, sep, path = item.partition("=")
        symbol = name.strip().upper() if sep else (args.symbol.upper() if args.symbol else None)
        if symbol is not None and not SYMBOL.match(symbol):
            raise _bad_arg("FILE", "bad-symbol", f"{symbol!r} (for {path or item}) is not a ticker")
        jobs.append((path if sep else item, symbol))
    return jobs


def cmd_import(args: argparse.Namespace) -> int:
    results = store_mod.import_files(_jobs(args), _store(args))
    print_results(results, args.json, _store(args))
    return 0


def print_results(results: Sequence[ImportResult], as_json: bool, into: Path) -> None:
    if as_json:
        print(json.dumps([_result_json(r) for r in results], indent=2))
        return
    for r in results:
        _print_result(r)
    print(f"manifest: {into / store_mod.MANIFEST}")


def _result_json(r: ImportResult) -> dict:
    return {
        "symbol": r.symbol,
        "rows_read": r.rows_read,
        "rows_stored": r.rows_stored,
        "first": r.first,
        "last": r.last,
        "close_only": r.close_only,
        "stored_at": str(r.stored_at) if r.stored_at else None,
        "findings": [
            {"code": str(f.code), "subject": f.subject, "detail": f.detail} for f in r.findings
        ],
    }


def _print_result(r: ImportResult) -> None:
    kind = "closes only" if r.close_only else "OHLC"
    print(
        f"{r.symbol}: {r.rows_stored} of {r.rows_read} rows stored ({kind}, {r.first}..{r.last})"
        f" -> {r.stored_at}"
    )
    for f in r.findings:
        print(f"  {f.code}: {f.detail}")


# --- facts ----------------------------------------------------------------------------------


def _constitution(path: str | None) -> Constitution:
    from constitution.load import bundled_path, load_constitution

    return load_constitution(path or bundled_path()).model


def _tickers(c: Constitution) -> dict[str, tuple[str, ...]]:
    return {k: tuple(getattr(c.sleeves, k).tickers) for k in ("gen", "rev", "com")}


def _as_of(args: argparse.Namespace) -> datetime:
    day = args.date
    try:
        session = calendar.is_session(day)
    except calendar.CalendarRangeError as exc:
        raise _bad_arg("--date", "out-of-range", str(exc)) from None
    if not session:
        before, after = calendar.previous_session(day), calendar.next_session(day)
        raise _bad_arg(
            "--date", "not-a-session", f"{day} is not an NYSE session (try {before} or {after})"
        )
    return datetime.combine(day, args.time, tzinfo=NEW_YORK)


def _market(args: argparse.Namespace, symbols: Sequence[str]) -> BarMarketData:
    if args.synthetic is None:
        return FileMarketData(_store(args))
    if args.date < EPOCH:
        raise _bad_arg("--date", "out-of-range", f"the synthetic market starts on {EPOCH}")
    return synthetic_market(args.synthetic, args.date, symbols)


def cmd_facts(args: argparse.Namespace) -> int:
    c = _constitution(args.constitution)
    at = _as_of(args)
    tickers = _tickers(c)
    symbols = args.symbols or tuple(sorted({s for ts in tickers.values() for s in ts}))
    market = _market(args, symbols)
    params = market_params(c)  # the very values a trading cycle under ``c`` builds its facts with
    snapshot = market.snapshot(at, symbols, params)
    facts = build_facts(
        snapshot,
        demo_accounts(at, snapshot),
        params=params,
        symbols=(),
        candidates=candidates_for_day(at.date(), params),
    )
    _print_facts(facts, args.format)
    return 0


def _print_facts(facts: Facts, fmt: str) -> None:
    if fmt == "json":
        print(facts.model_dump_json(indent=2))
    else:
        yaml.safe_dump(
            facts.model_dump(mode="json"), sys.stdout, sort_keys=False, allow_unicode=True
        )


def demo_accounts(at: datetime, snapshot: MarketSnapshot) -> tuple[Account, ...]:
    """Three $500K sleeves; Com holds shares. Positions only where a price is known."""
    day = at.astimezone(NEW_YORK).date()
    opened = date(day.year - 1, 1, 2) if day.year > 1990 else day
    gen = Account(
        id="GEN",
        kind="gen",
        equity=500_000,
        base_equity=500_000,
        high_water_mark=500_000,
        cash=500_000,
        opened=opened,
    )
    rev = gen.model_copy(update={"id": "REV", "kind": "rev"})
    price = snapshot.last_close.get("AAPL")
    holdings = (
        (Position(symbol="AAPL", right="stock", side="long", shares=300, cost_basis=price[1]),)
        if price
        else ()
    )
    com = gen.model_copy(
        update={
            "id": "COM",
            "kind": "com",
            "cash": 500_000 - (price[1] * 300 if price else 0),
            "positions": holdings,
        }
    )
    return gen, rev, com
