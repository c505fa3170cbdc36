"""Which decisions alert, and once per episode: alerts derived from recorded decisions
(engine.records.alerts) and the outbox's memory of open conditions."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.notify.config import AlertsConfig
from adapters.storage.database import write_transaction
from adapters.storage.outbox import SqlOutbox
from engine.clock import FixedClock
from engine.records.alerts import alerts_of, new_episodes
from engine.records.decision import Action, ConstitutionRef, Decision


def _action(kind: str, rule: str, account=None, **params) -> Action:
    return Action(
        kind=kind, account=account, rule=rule, clause="§6", salience=1, params=params, reason=rule
    )


def _decision(n: int, *actions: Action) -> Decision:
    return Decision(
        decision_id=f"d-{n}",
        as_of=f"2026-03-0{n}T15:00:00+00:00",
        constitution=ConstitutionRef(version="1.3.1", digest="sha256:x"),
        facts_digest="sha256:f",
        facts={},
        derived={},
        fired=(),
        actions=actions,
    )


KILL = _action("kill_switch", "vix.kill_switch", why="vix_kill")
L3 = (
    _action("enter_safe_mode", "protocol.l3", "GEN", why="l3_breach"),
    _action("alert", "protocol.l3", "GEN", severity="critical", message="L3 Preservation"),
)


def test_a_kill_switch_alerts_critical_and_a_rule_s_own_alert_replaces_its_mode_alert():
    [kill] = alerts_of(_decision(1, KILL), "paper")
    assert (kill.kind, kill.severity, kill.key) == ("kill_switch", "critical", "alluse:d-1:0")
    [l3] = alerts_of(_decision(1, *L3), "paper")  # SAFE mode and the rule's alert: one alert
    assert (l3.kind, l3.severity, l3.title, l3.account) == (
        "protocol",
        "critical",
        "L3 Preservation",
        "GEN",
    )
    safe = _action("enter_safe_mode", "vix.safe", why="vix_safe")
    assert [a.kind for a in alerts_of(_decision(1, safe), "paper")] == ["safe_mode"]
    assert alerts_of(_decision(1, _action("skip_entry", "skip.mode", "GEN")), "paper") == ()


def test_an_open_condition_is_announced_once_and_again_after_it_cleared():
    first = alerts_of(_decision(1, KILL), "paper")
    fresh, open_now = new_episodes(first, frozenset())
    assert [a.key for a in fresh] == ["alluse:d-1:0"]
    again, open_now = new_episodes(alerts_of(_decision(2, KILL), "paper"), open_now)
    assert again == ()  # still the same episode
    cleared, open_now = new_episodes((), open_now)
    assert cleared == () and open_now == frozenset()
    back, _ = new_episodes(alerts_of(_decision(4, KILL), "paper"), open_now)
    assert [a.key for a in back] == ["alluse:d-4:0"]


def test_the_outbox_keeps_episodes_across_decisions(tmp_path):
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    outbox = SqlOutbox.open(f"sqlite:///{tmp_path / 'a.db'}", clock, AlertsConfig())
    for n, actions in ((1, (KILL,)), (2, (KILL,)), (3, ()), (4, (KILL,))):
        with write_transaction(outbox.engine, None, "test") as conn:
            outbox.enqueue_decision(conn, _decision(n, *actions), "paper")
    assert [x.alert.key for x in outbox.listed()] == ["alluse:d-1:0", "alluse:d-4:0"]
