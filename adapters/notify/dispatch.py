"""Delivering the outbox: each due (alert, destination) is sent, then acknowledged; a failure
is recorded (secrets scrubbed) and retried after the backoff. At least once: nothing is
marked sent before its destination answered.

A destination that fails is not tried again in the same pass (one timeout per pass, not one
per queued alert), so an unreachable endpoint delays nothing else.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.notify.config import (
    AlertsConfig,
    SlackDestination,
    SmtpDestination,
    WebhookDestination,
)
from adapters.notify.secrets import Secrets
from adapters.notify.slack import SlackNotifier
from adapters.notify.smtp import SmtpNotifier
from adapters.notify.webhook import WebhookNotifier
from adapters.storage.outbox import SqlOutbox
from constitution.errors import InvalidInput, Problem
from engine.records.alerts import DeliveryFailed, Notifier


def build_notifiers(config: AlertsConfig, secrets: Secrets) -> dict[str, Notifier]:
    """One notifier per configured destination; ``InvalidInput`` if a secret is unset."""
    out: dict[str, Notifier] = {}
    for name, d in config.destinations.items():
        where = f"alerts.destinations.{name}"
        if isinstance(d, SlackDestination | WebhookDestination):
            _needs_httpx(where)
        if isinstance(d, SlackDestination):
            out[name] = SlackNotifier(name, secrets.get(d.url_env, where), d.timeout_seconds)
        elif isinstance(d, WebhookDestination):
            url = d.url or secrets.get(str(d.url_env), where)
            secret = secrets.get(d.secret_env, where)
            out[name] = WebhookNotifier(name, url, secret, d.timeout_seconds)
        elif isinstance(d, SmtpDestination):
            login = None
            if d.username_env and d.password_env:
                login = (secrets.get(d.username_env, where), secrets.get(d.password_env, where))
            out[name] = SmtpNotifier(name, d, login)
    return out


def _needs_httpx(where: str) -> None:
    """Slack and webhook destinations post with httpx (the 'alerts' extra): say so up front."""
    if importlib.util.find_spec("httpx") is None:
        raise InvalidInput(
            [
                Problem(
                    where,
                    1,
                    1,
                    "extra-not-installed",
                    "",
                    "posting alerts needs httpx: pip install 'alluse[alerts]'",
                )
            ],
            what="config",
        )


@dataclass
class DeliveryReport:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (key, destination)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (key, destination, error)
    deferred: int = 0  # due but not tried: their destination failed earlier in this pass


def deliver_due(
    outbox: SqlOutbox, notifiers: Mapping[str, Notifier], secrets: Secrets, limit: int = 100
) -> DeliveryReport:
    report = DeliveryReport()
    down: set[str] = set()
    for d in outbox.due(limit):
        if d.destination in down:
            report.deferred += 1
            continue
        notifier = notifiers.get(d.destination)
        try:
            if notifier is None:
                raise DeliveryFailed(f"{d.destination}: destination not configured")
            notifier.send(d.alert)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            error = secrets.scrub(
                str(exc) if isinstance(exc, DeliveryFailed) else f"{d.destination}: {exc!r}"
            )
            outbox.failed(d.alert.key, d.destination, error, d.attempts + 1)
            report.failed.append((d.alert.key, d.destination, error))
            down.add(d.destination)
            continue
        outbox.acknowledge(d.alert.key, d.destination)
        report.sent.append((d.alert.key, d.destination))
    return report
