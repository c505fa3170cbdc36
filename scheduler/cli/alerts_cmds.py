"""``alluse alerts list | test | deliver``: the alert outbox of a database and its destinations.

Secrets are never printed: destinations show their type and the names of the environment
variables they read; errors are stored and shown scrubbed (adapters.notify.secrets).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import argparse

    from adapters.deployment import DeploymentConfig
    from adapters.storage.outbox import Delivery, Listed
    from scheduler.cli import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser("alerts", help="the alert outbox: list, test destinations, deliver now")
    verbs = p.add_subparsers(dest="alerts_verb", metavar="VERB")
    verbs.required = True

    ls = verbs.add_parser("list", help="alerts and their deliveries, newest last")
    _common(ls)
    ls.add_argument("--unsent", action="store_true", help="only alerts a destination still owes")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="most recent N (50)")
    ls.add_argument("--json", action="store_true", help="one JSON document")
    ls.set_defaults(func=cmd_list)

    t = verbs.add_parser("test", help="send a test alert to every destination (or one) now")
    _common(t)
    t.add_argument("--to", metavar="NAME", help="only this destination")
    t.set_defaults(func=cmd_test)

    d = verbs.add_parser("deliver", help="deliver what the outbox holds that is due, now")
    _common(d)
    d.set_defaults(func=cmd_deliver)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL or SQLite path")
    p.add_argument(
        "--config", metavar="FILE", help="deployment config (default: alluse.yaml beside the db)"
    )


def _deployment(args: argparse.Namespace) -> tuple[str, DeploymentConfig]:
    from adapters.storage.database import resolve_url
    from scheduler.alerting import deployment_for

    url = resolve_url(args.db)
    return url, deployment_for(url, args.config)


def cmd_list(args: argparse.Namespace) -> int:
    from adapters.storage.database import sqlite_file_missing
    from adapters.storage.errors import StorageError
    from adapters.storage.outbox import SqlOutbox
    from engine.clock import WallClock

    url, config = _deployment(args)
    missing = sqlite_file_missing(url)
    if missing is not None:
        raise StorageError(f"no database at {missing} (use --db URL or set ALLUSE_DB)")
    outbox = SqlOutbox.open(url, WallClock(), config.alerts)
    try:
        listed = outbox.listed(args.limit, args.unsent)
    finally:
        outbox.close()
    if args.json:
        print(json.dumps([_as_json(x) for x in listed], indent=2, sort_keys=True))
        return 0
    table = Table("created (UTC)", "severity", "kind", "alert", "key", "deliveries")
    for x in listed:
        table.add_row(
            x.created_at[:19],
            x.alert.severity,
            x.alert.kind,
            x.alert.text(),
            x.alert.key,
            "\n".join(_delivery_text(d) for d in x.deliveries) or "no route",
        )
    Console(highlight=False).print(table)
    if not listed:
        print("no alerts")
    return 0


def _delivery_text(d: Delivery) -> str:
    if d.state == "sent":
        # state is "sent" only when sent_at is set (Delivery.state); mypy cannot see it
        return f"{d.destination}: sent {d.sent_at[:19]}"  # type: ignore[index]
    tail = f", last error: {d.last_error}" if d.last_error else ""
    return (
        f"{d.destination}: {d.state} (attempts {d.attempts}, next {d.next_attempt_at[:19]}{tail})"
    )


def _as_json(x: Listed) -> dict:
    return {
        "alert": x.alert.model_dump(mode="json"),
        "created_at": x.created_at,
        "deliveries": [
            {
                "destination": d.destination,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
                "sent_at": d.sent_at,
                "last_error": d.last_error,
            }
            for d in x.deliveries
        ],
    }


def cmd_test(args: argparse.Namespace) -> int:
    from adapters.notify.dispatch import build_notifiers
    from adapters.notify.secrets import Secrets
    from constitution.errors import InvalidInput, Problem
    from engine.clock import WallClock
    from engine.records.alerts import Alert, DeliveryFailed

    _, config = _deployment(args)
    names = sorted(config.alerts.destinations)
    if args.to:
        if args.to not in names:
            raise InvalidInput(
                [Problem("--to", 1, 1, "unknown-destination", "", f"no destination {args.to!r}")],
                what="arguments",
            )
        names = [args.to]
    if not names:
        print("no destinations configured (alerts.destinations in the deployment config)")
        return 0
    secrets = Secrets()
    notifiers = build_notifiers(config.alerts, secrets)
    now = WallClock().now().isoformat()
    alert = Alert(
        key=f"alluse:test:{now}",
        kind="test",
        severity="info",
        title="ALL-USE test alert",
        message=f"a test from alluse alerts test at {now}; nothing happened",
        at=now,
        mode="test",
        condition=f"test:{now}",
    )
    failed = 0
    for name in names:
        try:
            notifiers[name].send(alert)
            print(f"{name}: delivered")
        except DeliveryFailed as exc:
            failed += 1
            print(f"{name}: failed: {secrets.scrub(str(exc))}")
    return 3 if failed else 0


def cmd_deliver(args: argparse.Namespace) -> int:
    from engine.clock import WallClock
    from scheduler.alerting import deliverer_for, summary

    url, config = _deployment(args)
    deliverer = deliverer_for(url, WallClock(), config)
    if deliverer is None:
        print("no destinations configured: nothing to deliver to", file=sys.stderr)
        return 0
    try:
        report = deliverer.deliver()
    finally:
        deliverer.close()
    print(summary(report))
    for key, dest, error in report.failed:
        print(f"{dest}: {key}: {error}")
    return 0
