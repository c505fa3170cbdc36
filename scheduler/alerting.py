"""Delivering the alert outbox of a database: after a ``paper step``, on the daemon's own
delivery job (every ``DELIVER_EVERY_SECONDS``, beside the cycles, never in their way), and by
``alluse alerts deliver``. A restart delivers whatever was not acknowledged before it.
"""

from __future__ import annotations

from adapters.deployment import (
    DeploymentConfig,
    config_path,
    load_deployment,
    missing_secrets,
)
from adapters.notify.dispatch import DeliveryReport, build_notifiers, deliver_due
from adapters.notify.secrets import Secrets
from adapters.storage.outbox import SqlOutbox
from constitution.errors import InvalidInput
from engine.clock import Clock

DELIVER_EVERY_SECONDS = 15.0


class Deliverer:
    """The notifiers of a deployment over the outbox of one database. Building it checks that
    every secret is set (``InvalidInput`` naming the variable, never its value)."""

    def __init__(self, db_url: str, clock: Clock, deployment: DeploymentConfig):
        self.secrets = Secrets()
        self.notifiers = build_notifiers(deployment.alerts, self.secrets)
        self.outbox = SqlOutbox.open(db_url, clock, deployment.alerts)

    def deliver(self) -> DeliveryReport:
        return deliver_due(self.outbox, self.notifiers, self.secrets)

    def close(self) -> None:
        self.outbox.close()


def deployment_for(db_url: str, explicit: str | None = None) -> DeploymentConfig:
    return load_deployment(config_path(db_url, explicit))


def deliverer_for(
    db_url: str, clock: Clock, deployment: DeploymentConfig | None = None
) -> Deliverer | None:
    """A deliverer when the deployment routes alerts anywhere; None otherwise."""
    config = deployment or deployment_for(db_url)
    if not config.alerts.destinations:
        return None
    unset = missing_secrets(config)
    if unset:
        raise InvalidInput(unset, what="config")
    return Deliverer(db_url, clock, config)


def summary(report: DeliveryReport) -> str:
    waiting = len(report.failed) + report.deferred
    text = f"alerts: {len(report.sent)} delivered"
    return text + (f", {waiting} to retry (alluse alerts list)" if waiting else "")
