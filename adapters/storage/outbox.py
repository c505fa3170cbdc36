"""The alert outbox: alerts written in the same transaction as what raised them, delivered
afterwards, at least once, until each destination has taken them.

Tables (component ``outbox``):

``alert``           one row per alert (its dedupe ``key``, kind, severity, JSON body);
``alert_delivery``  one row per (alert, destination): attempts, when to try next, when the
                    destination took it (``sent_at``; NULL until then), the last error (no
                    secret ever: notifiers never put one in a message, and ``Secrets.scrub``
                    runs over it before it is stored);
``alert_condition`` the conditions announced and still open, so a condition that holds
                    decision after decision is announced once (engine.records.alerts).

A crash anywhere loses nothing: an alert is in the database with its decision or not at all,
and a delivery is marked sent only after the destination answered. A crash between the
answer and the mark resends the alert under the same key (the receiver drops the repeat).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from adapters.notify.config import NO_ALERTS, AlertsConfig
from adapters.storage.audit_store import SqlDecisionLog
from adapters.storage.database import create_db_engine, read_connection, resolve_url
from adapters.storage.database import write_transaction as _write
from adapters.storage.migrations import Migration, migrate, register
from engine.clock import Clock
from engine.records.alerts import Alert, alerts_of, new_episodes
from engine.records.audit import ExecutionLink, utc_stamp
from engine.records.decision import Decision
from engine.records.log import Receipt

COMPONENT = "outbox"
_DDL = (
    "CREATE TABLE alert (key TEXT PRIMARY KEY, created_at TEXT NOT NULL, kind TEXT NOT NULL,"
    " severity TEXT NOT NULL, mode TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE alert_delivery (key TEXT NOT NULL REFERENCES alert (key),"
    " destination TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at TEXT NOT NULL, sent_at TEXT, last_error TEXT,"
    " PRIMARY KEY (key, destination))",
    "CREATE INDEX ix_alert_delivery_due ON alert_delivery (sent_at, next_attempt_at)",
    "CREATE TABLE alert_condition (condition TEXT PRIMARY KEY, key TEXT NOT NULL,"
    " since TEXT NOT NULL)",
)
register(Migration(COMPONENT, 1, "alert outbox: alerts, deliveries, open conditions", _DDL, _DDL))


@dataclass(frozen=True)
class Delivery:
    """One alert for one destination, as the outbox holds it."""

    alert: Alert
    destination: str
    attempts: int
    next_attempt_at: str
    sent_at: str | None
    last_error: str | None

    @property
    def state(self) -> str:
        if self.sent_at:
            return "sent"
        return "retrying" if self.attempts else "waiting"


@dataclass(frozen=True)
class Listed:
    """An alert and its deliveries (none: no route matched it)."""

    alert: Alert
    created_at: str
    deliveries: tuple[Delivery, ...]


class SqlOutbox:
    def __init__(self, engine: Engine, clock: Clock, routing: AlertsConfig = NO_ALERTS):
        self.engine = engine
        self.clock = clock
        self.routing = routing

    @classmethod
    def open(cls, url: str | None, clock: Clock, routing: AlertsConfig = NO_ALERTS) -> SqlOutbox:
        engine = create_db_engine(resolve_url(url))
        migrate(engine, [COMPONENT])
        return cls(engine, clock, routing)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writing (in a transaction)

    def enqueue(self, conn: Connection, alerts: Iterable[Alert]) -> None:
        """Inside the caller's transaction: each alert once (by key), one delivery per routed
        destination, first attempt now or after quiet hours."""
        now = self.clock.now()
        for a in alerts:
            found = conn.execute(text("SELECT 1 FROM alert WHERE key = :k"), {"k": a.key}).first()
            if found is not None:
                continue
            conn.execute(
                text(
                    "INSERT INTO alert (key, created_at, kind, severity, mode, body)"
                    " VALUES (:k, :c, :kind, :s, :m, :b)"
                ),
                {
                    "k": a.key,
                    "c": utc_stamp(now),
                    "kind": a.kind,
                    "s": a.severity,
                    "m": a.mode,
                    "b": a.model_dump_json(),
                },
            )
            first = utc_stamp(self.routing.first_attempt(a, now))
            for dest in self.routing.destinations_for(a):
                conn.execute(
                    text(
                        "INSERT INTO alert_delivery (key, destination, next_attempt_at)"
                        " VALUES (:k, :d, :n)"
                    ),
                    {"k": a.key, "d": dest, "n": first},
                )

    def enqueue_decision(self, conn: Connection, decision: Decision, mode: str) -> None:
        """The alerts of ``decision`` whose conditions are new; conditions it no longer
        raises are closed (announced again if they come back)."""
        alerts = alerts_of(decision, mode)
        rows = conn.execute(text("SELECT condition FROM alert_condition")).all()
        open_now = {r[0] for r in rows}
        fresh, still = new_episodes(alerts, open_now)
        for gone in sorted(open_now - still):
            conn.execute(text("DELETE FROM alert_condition WHERE condition = :c"), {"c": gone})
        for a in fresh:
            conn.execute(
                text("INSERT INTO alert_condition (condition, key, since) VALUES (:c, :k, :s)"),
                {"c": a.condition, "k": a.key, "s": utc_stamp(self.clock.now())},
            )
        self.enqueue(conn, fresh)

    def put(self, alerts: Sequence[Alert]) -> None:
        """In a transaction of its own (alerts not tied to a record: ``alluse alerts test``)."""
        with _write(self.engine, None, "queueing alerts") as conn:
            self.enqueue(conn, alerts)

    # ------------------------------------------------------------------ delivering

    def due(self, limit: int = 100) -> list[Delivery]:
        """Deliveries not yet taken whose next attempt is due, oldest first."""
        now = utc_stamp(self.clock.now())
        with read_connection(self.engine, "reading the alert outbox") as conn:
            rows = conn.execute(
                text(
                    f"{_SELECT} WHERE d.sent_at IS NULL AND d.next_attempt_at <= :n"
                    " ORDER BY d.next_attempt_at, a.created_at, d.key, d.destination LIMIT :l"
                ),
                {"n": now, "l": limit},
            ).all()
        return [_delivery(r) for r in rows]

    def acknowledge(self, key: str, destination: str) -> None:
        with _write(self.engine, None, "acknowledging an alert") as conn:
            conn.execute(
                text(
                    "UPDATE alert_delivery SET sent_at = :s, attempts = attempts + 1,"
                    " last_error = NULL WHERE key = :k AND destination = :d AND sent_at IS NULL"
                ),
                {"s": utc_stamp(self.clock.now()), "k": key, "d": destination},
            )

    def failed(self, key: str, destination: str, error: str, attempts: int) -> None:
        """Attempt ``attempts`` failed: try again after the backoff."""
        retry_at = self.clock.now() + self.routing.retry.delay(attempts)
        with _write(self.engine, None, "recording a failed alert delivery") as conn:
            conn.execute(
                text(
                    "UPDATE alert_delivery SET attempts = :a, next_attempt_at = :n,"
                    " last_error = :e WHERE key = :k AND destination = :d AND sent_at IS NULL"
                ),
                {"a": attempts, "n": utc_stamp(retry_at), "e": error, "k": key, "d": destination},
            )

    # ------------------------------------------------------------------ reading

    def listed(self, limit: int = 50, unsent_only: bool = False) -> list[Listed]:
        """The most recent ``limit`` alerts (newest last) with their deliveries."""
        where = (
            " WHERE key IN (SELECT key FROM alert_delivery WHERE sent_at IS NULL)"
            if unsent_only
            else ""
        )
        with read_connection(self.engine, "listing alerts") as conn:
            alerts = conn.execute(
                text(
                    f"SELECT key, created_at, body FROM alert{where}"
                    " ORDER BY created_at DESC, key DESC LIMIT :l"
                ),
                {"l": limit},
            ).all()
            keys = [r[0] for r in alerts]
            deliveries = conn.execute(text(f"{_SELECT} ORDER BY d.destination")).all()
        by_key: dict[str, list[Delivery]] = {}
        for r in deliveries:
            if r[0] in keys:
                by_key.setdefault(r[0], []).append(_delivery(r))
        return [
            Listed(Alert.model_validate_json(r[2]), r[1], tuple(by_key.get(r[0], ())))
            for r in reversed(alerts)
        ]


_SELECT = (
    "SELECT d.key, d.destination, d.attempts, d.next_attempt_at, d.sent_at, d.last_error, a.body"
    " FROM alert_delivery d JOIN alert a ON a.key = d.key"
)


def _delivery(r: Sequence) -> Delivery:
    return Delivery(Alert.model_validate_json(r[6]), r[1], int(r[2]), r[3], r[4], r[5])


class AlertingDecisionLog:
    """The decision-log port with the alert outbox: a decision's alerts are written in the
    same transaction as its record (``AuditStore.append_decision(alongside=...)``)."""

    def __init__(self, log: SqlDecisionLog, outbox: SqlOutbox):
        self.inner = log
        self.store = log.store  # the executor reads links back through ``store``
        self.mode = log.mode
        self.outbox = outbox

    def record(self, decision: Decision, constitution_text: str) -> Receipt:
        return self.store.append_decision(
            decision,
            self.mode,
            constitution_text,
            alongside=lambda conn: self.outbox.enqueue_decision(conn, decision, self.mode.value),
        )

    def link(self, link: ExecutionLink) -> Receipt:
        return self.inner.link(link)

    def checkpoint(self, constitution_digest: str) -> None:
        self.inner.checkpoint(constitution_digest)

    def close(self) -> None:
        self.inner.close()
