"""Operations: liveness, readiness and Prometheus metrics, all read from the database.

* ``/healthz`` - the process answers.
* ``/readyz``  - the database is reachable, the hash chain verified when the server started,
  the scheduler is running (when a daemon has ever run on this database: its journal's last
  event is a start, not a stop) and, when that daemon trades live, the broker was connected
  at its latest decision. A review-only database (a backtest's) has no scheduler to check.
* ``/metrics`` - a collector that reads the database at each scrape (short read
  transactions): cycles, decisions, decision latency, orders by state, alerts by severity,
  chain status and the last checkpoint's age.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict

from adapters.storage.readers import ReadOnlyDatabase
from adapters.web import audit_glue
from adapters.web.audit_glue import ChainStatus
from engine.clock import Clock

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SchedulerStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state: str  # running | stopped | none (no daemon ever ran on this database)
    mode: str | None
    since: str | None
    last_cycle_at: str | None


class Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ok: bool
    detail: str


class Readiness(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ready: bool
    checks: list[Check]


def scheduler_status(db: ReadOnlyDatabase) -> SchedulerStatus:
    events = [e for e in db.scheduler_events(50) if e[1] in ("start", "stop")]
    if not events:
        return SchedulerStatus(state="none", mode=None, since=None, last_cycle_at=None)
    at, kind, detail = events[0]  # newest first
    return SchedulerStatus(
        state="running" if kind == "start" else "stopped",
        mode=detail.get("mode") if kind == "start" else None,
        since=at,
        last_cycle_at=db.last_cycle_at(),
    )


def _broker_check(db: ReadOnlyDatabase) -> Check:
    latest = db.latest_decision("live")
    connected = bool(
        latest and latest.decision.get("facts", {}).get("market", {}).get("broker_connected")
    )
    detail = f"at decision {latest.decision_id}" if latest else "no live decision yet"
    return Check(
        name="broker",
        ok=connected,
        detail=("connected " if connected else "not connected ") + detail,
    )


def readiness(db: ReadOnlyDatabase, chain: ChainStatus | None) -> Readiness:
    checks: list[Check] = []
    try:
        db.ping()
        checks.append(Check(name="database", ok=True, detail=db.display_url))
    except Exception as exc:  # noqa: BLE001 - any failure to read is "not ready", said
        checks.append(Check(name="database", ok=False, detail=str(exc)))
        return Readiness(ready=False, checks=checks)
    if chain is None:
        checks.append(Check(name="chain", ok=False, detail="verifying the hash chain"))
    else:
        checks.append(
            Check(
                name="chain", ok=chain.ok, detail=chain.problem or f"intact: {chain.count} records"
            )
        )
    sched = scheduler_status(db)
    if sched.state != "none":
        checks.append(
            Check(
                name="scheduler",
                ok=sched.state == "running",
                detail=f"{sched.state} since {sched.since}",
            )
        )
        if sched.state == "running" and sched.mode == "live":
            checks.append(_broker_check(db))
    return Readiness(ready=all(c.ok for c in checks), checks=checks)


@dataclass
class _AlertTally:
    """Alerts by severity, counted incrementally (each scrape reads only new decisions)."""

    after: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    lock: Lock = field(default_factory=Lock)

    def update(self, db: ReadOnlyDatabase) -> dict[str, int]:
        with self.lock:
            while True:
                batch = db.alert_decisions(self.after)
                for d in batch:
                    for a in d.decision.get("actions", ()):
                        if a["kind"] == "alert":
                            self.counts[str(a.get("params", {}).get("severity", "info"))] += 1
                    self.after = d.seq
                if len(batch) < 500:
                    return dict(self.counts)


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class DatabaseCollector(Collector):
    """Prometheus metrics read from the database at each scrape."""

    def __init__(self, db: ReadOnlyDatabase, clock: Clock, chain: ChainHolder):
        self.db, self.clock, self.chain = db, clock, chain
        self.alerts = _AlertTally()

    def collect(self) -> Iterator:
        db = self.db
        cycles = CounterMetricFamily(
            "alluse_cycles", "Cycles the scheduler ran, by reason", labels=["reason"]
        )
        for reason, n in sorted(db.cycle_counts().items()):
            cycles.add_metric([reason], n)
        yield cycles
        decisions = CounterMetricFamily(
            "alluse_decisions", "Decisions in the audit log, by mode", labels=["mode"]
        )
        for mode, n in sorted(db.decision_count().items()):
            decisions.add_metric([mode], n)
        yield decisions
        yield self._latency()
        orders = GaugeMetricFamily(
            "alluse_orders", "Orders in the ledger, by state", labels=["state"]
        )
        for state, n in sorted(db.order_states().items()):
            orders.add_metric([state], n)
        yield orders
        alerts = CounterMetricFamily(
            "alluse_alerts", "Alert actions in the audit log, by severity", labels=["severity"]
        )
        for severity, n in sorted(self.alerts.update(db).items()):
            alerts.add_metric([severity], n)
        yield alerts
        yield from self._chain()

    def _latency(self) -> HistogramMetricFamily:
        """Seconds from a decision's as_of to its record's commit (paper and live only: a
        backtest's records are stamped on the replay clock)."""
        family = HistogramMetricFamily(
            "alluse_decision_latency_seconds",
            "Seconds from a decision's as_of to the commit of its audit record (latest 10,000)",
            labels=["mode"],
        )
        by_mode: dict[str, list[float]] = {}
        for mode, as_of, recorded in self.db.decision_stamps():
            if mode in ("paper", "live"):
                by_mode.setdefault(mode, []).append(
                    max((_stamp(recorded) - _stamp(as_of)).total_seconds(), 0.0)
                )
        for mode, values in sorted(by_mode.items()):
            buckets = [(str(b), sum(v <= b for v in values)) for b in LATENCY_BUCKETS]
            family.add_metric([mode], [*buckets, ("+Inf", len(values))], sum(values))
        return family

    def _chain(self) -> Iterator[GaugeMetricFamily]:
        status = self.chain.status
        ok = GaugeMetricFamily(
            "alluse_chain_ok",
            "1 when the hash chain verified at start (0 broken or not yet verified)",
        )
        ok.add_metric([], 1.0 if status is not None and status.ok else 0.0)
        yield ok
        if status is not None:
            count = GaugeMetricFamily(
                "alluse_chain_records", "Records in the chain when it was verified"
            )
            count.add_metric([], status.count)
            yield count
        age = audit_glue.checkpoint_age(self.db, self.clock)
        if age is not None:  # no sample at all while the log has no checkpoint
            gauge = GaugeMetricFamily(
                "alluse_last_checkpoint_age_seconds", "Age of the latest signed checkpoint"
            )
            gauge.add_metric([], age)
            yield gauge


class ChainHolder:
    """The chain status, set once the start-up verification finishes (None until then)."""

    def __init__(self) -> None:
        self.status: ChainStatus | None = None
