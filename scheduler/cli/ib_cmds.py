"""``alluse ib check``: is the IB gateway ready for ALL-USE? Run it before any order is sent.

Connects read-only (nothing can be sent), then reports the managed accounts against the
configured sub-accounts, the positions, and the market-data permissions ALL-USE needs: stock
quotes, the SPX and VIX indexes, and option quotes with model greeks. Exit 0 when everything is
there, 3 when the gateway is unreachable or something is missing (with what, and why).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from constitution.errors import InvalidInput, OperationalError, Problem
from engine.records.masking import mask_code

if TYPE_CHECKING:
    from adapters.ib.broker import IBBroker
    from adapters.ib.market_data import IBMarketData
    from scheduler.cli import SubParsers

PROBES = ("SPY", "SPX", "VIX")  # a stock/ETF, the hedge index, the volatility index
OPTION_PROBE = "SPY"
EPOCH, ANY_EXPIRY_DAYS = date(2000, 1, 1), 365 * 100


def register(subparsers: SubParsers) -> None:
    ib = subparsers.add_parser("ib", help="Interactive Brokers: check the gateway before trading")
    sub = ib.add_subparsers(dest="ib_verb", metavar="IB_VERB")
    sub.required = True
    check = sub.add_parser(
        "check", help="connect read-only; list accounts, positions, data permissions"
    )
    check.add_argument("--host", default="127.0.0.1")
    check.add_argument(
        "--port", type=int, default=7497, help="7497 TWS paper (default), 4002 Gateway paper"
    )
    check.add_argument("--client-id", type=int, default=99, help="an id no other API client uses")
    check.add_argument("--timeout", type=float, default=4.0)
    check.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SUB=CODE",
        help="sub-account mapping, e.g. GEN=DU1234567 (repeatable)",
    )
    check.add_argument("--live", action="store_true", help="allow live (non-paper) accounts")
    check.set_defaults(func=run_check)


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok       {text}")

    def miss(self, text: str) -> None:
        self.lines.append(f"  MISSING  {text}")
        self.missing.append(text)


def _accounts(pairs: list[str]) -> dict[str, str]:
    out, problems = {}, []
    for i, pair in enumerate(pairs):
        sub, sep, code = pair.partition("=")
        if not sep or not sub or not code:
            problems.append(
                Problem(
                    "<args>",
                    0,
                    0,
                    "bad-account",
                    f"--account[{i}]",
                    f"expected SUB=CODE, got {pair!r}",
                )
            )
        out[sub.strip().upper()] = code.strip()
    if problems:
        raise InvalidInput(problems, what="arguments")
    return out


def run_check(args: argparse.Namespace) -> int:
    from adapters.ib.broker import IBBroker, IBConfig, IBSession
    from adapters.ib.market_data import IBMarketData, IBMarketDataSettings

    for name in ("ib_async", "ib_insync"):  # the report below says it all, once, plainly
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = IBConfig(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        readonly=True,
        live=args.live,
        accounts=_accounts(args.account),
        connect_timeout=args.timeout,
        reconnect_attempts=1,
    )
    session = IBSession(config)
    try:
        session.connect()  # IBUnavailable (exit 3) when the gateway is not there
        report = Report()
        broker = IBBroker(config, session=session)
        data = IBMarketData(
            config,
            session=session,
            settings=IBMarketDataSettings(
                max_dte=ANY_EXPIRY_DAYS, chain_expiries=1, strike_window=0.03
            ),
        )
        data.connect()
        _check_accounts(report, broker, session.accounts)
        _check_positions(report, broker)
        _check_data(report, data)
    finally:
        session.close()
    print(
        f"IB gateway {args.host}:{args.port} (server version {session.server_version}, "
        f"{'live' if args.live else 'paper'} mode)"
    )
    print("\n".join(report.lines))
    if report.missing:
        raise OperationalError("not ready for ALL-USE; missing: " + "; ".join(report.missing))
    print("ready: nothing missing")
    return 0


def _check_accounts(report: Report, broker: IBBroker, managed: list[str]) -> None:
    # account codes are secrets: shown masked (docs/ib.md), enough to tell them apart
    report.ok(f"managed accounts: {', '.join(mask_code(m) for m in managed)}")
    amap = broker.accounts
    for sub, code in sorted(amap.codes.items()):
        report.ok(f"sub-account {sub} -> {mask_code(code)}")
    if not amap.codes:
        report.miss("sub-account mapping (pass --account GEN=<code> ... for GEN, REV, COM, MINI-n)")
    for code in amap.unmapped(managed):
        report.lines.append(
            f"  note     account {mask_code(code)} is not mapped to an ALL-USE sub-account"
        )


def _check_positions(report: Report, broker: IBBroker) -> None:
    amap = broker.accounts
    positions = broker.positions()
    report.ok(f"positions: {len(positions)}")
    for p in positions:
        account = p.account if p.account in amap.codes else mask_code(p.account)
        report.lines.append(f"           {account:8} {p.contract.key:28} {p.quantity:>8}")


def _check_data(report: Report, data: IBMarketData) -> None:
    quotes, findings = data.quotes(list(PROBES))
    for f in findings:
        report.miss(f"market data for {f.subject}: {f.detail}")
    for sym in PROBES:
        if sym in quotes:
            report.ok(f"market data for {sym}")
    probe = quotes.get(OPTION_PROBE)
    spot = probe.mid if probe is not None else None
    if spot is None or spot != spot or spot <= 0:
        report.miss(f"option data check skipped: no usable {OPTION_PROBE} quote")
        return
    # any listed expiry will do: the question is the subscription, not the date
    chain, findings = data.option_chain(OPTION_PROBE, spot, EPOCH)
    for f in findings:
        report.miss(f"options data for {f.subject}: {f.detail}")
    if chain is not None and not findings:
        report.ok(f"options data with model greeks ({OPTION_PROBE}, {len(chain)} contracts)")
