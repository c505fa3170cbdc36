"""Alerts: what a person is told, derived from recorded decisions, and the notifier port.

Pure: no I/O. The storage adapter writes a decision's alerts to the outbox in the same
transaction as the decision record (``adapters/storage/outbox.py``); notifier adapters
(``adapters/notify/``) deliver them afterwards, at least once, each under its ``key``.

Which actions alert (docs/operations.md):

* ``alert`` - the rule's own words (``severity``, ``message``); the kind is the rule's family,
  the first part of its id (``protocol.l3`` -> ``protocol``, ``data.broker_down`` -> ``data``);
* ``kill_switch`` - kind ``kill_switch``, critical;
* ``enter_safe_mode`` - kind ``safe_mode``, critical - unless its rule also emitted an
  ``alert`` for the same account in this decision (the rule's own words win).

An alert belongs to a *condition* (kind, rule, account, symbol, position). While a condition
holds, decision after decision, it is announced once: the outbox remembers the open
conditions and sends only those that are new (``new_episodes``); a condition that clears and
comes back is announced again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from constitution.errors import RetryError
from engine.records.decision import Action, Decision

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_MODE_ACTIONS = {"kill_switch": "kill_switch", "enter_safe_mode": "safe_mode"}


class Alert(BaseModel):
    """One thing to tell a person. ``key`` is the dedupe key: a resend carries the same key,
    so a receiver can drop what it already has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: str
    severity: Severity
    title: str
    message: str
    at: str  # ISO time of what it is about (a decision's as_of, an approval's event)
    mode: str  # the run mode that raised it (paper, live, ...)
    condition: str  # alerts of one condition are announced once per episode
    decision_id: str | None = None
    account: str | None = None
    symbol: str | None = None
    rule: str | None = None
    clause: str | None = None

    def text(self) -> str:
        """One line for chat and mail subjects."""
        where = " ".join(x for x in (self.account, self.symbol) if x)
        return f"[{self.severity.upper()}] {self.title}" + (f" ({where})" if where else "")


class DeliveryFailed(RetryError):
    """A notifier could not deliver (unreachable, timed out, refused): the outbox retries.
    The message never contains a secret."""


class Notifier(Protocol):
    """A destination alerts are delivered to (Slack, a JSON webhook, e-mail)."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise ``DeliveryFailed``. Returning means the receiver took it."""


def alerts_of(decision: Decision, mode: str) -> tuple[Alert, ...]:
    """The alerts ``decision`` raises, in action order (module docstring)."""
    worded = {(a.rule, a.account) for a in decision.actions if a.kind == "alert"}
    out = []
    for i, a in enumerate(decision.actions):
        if a.kind == "alert":
            out.append(_alert(decision, mode, i, a, _family(a.rule), _severity(a), _words(a)))
        elif a.kind in _MODE_ACTIONS and (a.rule, a.account) not in worded:
            title = f"{a.kind.replace('_', ' ')}: {a.params.get('why', a.reason)}"
            out.append(_alert(decision, mode, i, a, _MODE_ACTIONS[a.kind], "critical", title))
    return tuple(out)


def new_episodes(
    alerts: Sequence[Alert], open_conditions: Collection[str]
) -> tuple[tuple[Alert, ...], frozenset[str]]:
    """(alerts to send: those whose condition was not already open, the conditions open now).
    A decision that no longer raises a condition closes it."""
    now = frozenset(a.condition for a in alerts)
    fresh, seen = [], set()
    for a in alerts:
        if a.condition not in open_conditions and a.condition not in seen:
            fresh.append(a)
            seen.add(a.condition)
    return tuple(fresh), now


def _alert(
    d: Decision, mode: str, i: int, a: Action, kind: str, severity: Severity, title: str
) -> Alert:
    condition = ":".join((kind, a.rule, a.account or "", a.symbol or "", a.position or ""))
    return Alert(
        key=f"alluse:{d.decision_id}:{i}",
        kind=kind,
        severity=severity,
        title=title,
        message=f"{a.reason} [{a.rule} {a.clause}] at {d.as_of}, decision {d.decision_id}",
        at=d.as_of,
        mode=mode,
        condition=condition,
        decision_id=d.decision_id,
        account=a.account,
        symbol=a.symbol,
        rule=a.rule,
        clause=a.clause,
    )


def _family(rule: str) -> str:
    return rule.split(".", 1)[0]


def _severity(a: Action) -> Severity:
    value = str(a.params.get("severity", "warning"))
    return value if value in SEVERITIES else "warning"


def _words(a: Action) -> str:
    return str(a.params.get("message") or a.reason)
