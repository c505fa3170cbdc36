"""The composition root: the one place that picks concrete adapters for the engine's ports.

Paper is the default everywhere; nothing here reaches a real broker without an explicit,
separate choice (``--live`` in ``alluse run``).
"""

from __future__ import annotations

from adapters.storage.audit_store import open_decision_log
from constitution.load import LoadedConstitution
from engine.audit import Mode, Receipt
from engine.clock import WallClock
from engine.decision import Decision


def record_decision(decision: Decision, constitution: LoadedConstitution, mode: str, db_url: str | None) -> Receipt:
    """Append ``decision`` to the audit log (with the constitution's text, stored once per digest)."""
    log = open_decision_log(db_url, Mode(mode), WallClock())
    return log.record(decision, constitution.text)
