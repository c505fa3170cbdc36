"""Arbitration (D40): one intent per position per decision, by the constitution's precedence;
the losers kept in the record as superseded, naming the winner. And the double-close Friday
of issue 13 through ``alluse paper step``, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.brokers.paper import PaperBroker
from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
from constitution.errors import ConstitutionInvalid
from constitution.load import load_constitution, load_constitution_text
from constitution.versions import LOCK_PATH
from engine.clock import WallClock
from engine.execution.arbitration import arbitrate
from engine.execution.broker import OrderSide
from engine.facts.load import load_facts_text
from engine.records.audit import RunMode
from engine.records.decision import Action, ConstitutionRef, Decision
from engine.rules.evaluate import evaluate
from scheduler.cli import main
from tests.execution.helpers import EXAMPLE_FACTS, facts_file

PUT = "GEN/AAPL/put/225/2026-11-20/short"


def _action(kind: str, rule: str, salience: int, position: str | None = PUT, **params) -> Action:
    return Action(
        kind=kind,
        account="GEN",
        symbol="AAPL",
        position=position,
        rule=rule,
        clause="§6",
        salience=salience,
        params=params,
        reason=f"{rule} fired",
    )


def _decision(*actions: Action) -> Decision:
    return Decision(
        decision_id="d-arb",
        as_of="2026-11-20T15:00:00-05:00",
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts={},
        derived={},
        fired=(),
        actions=actions,
    )


L3 = ("close_position", "protocol.l3", 10)
PIN = ("close_position", "friday.pin_risk", 41)
ROLL = ("roll_position", "roll.l2", 21)


def test_a_stop_loss_and_a_pin_risk_close_of_one_put_leave_one_intent_the_stop_loss(bundled):
    pin, l3 = _action(*PIN, why="pin_risk"), _action(*L3, why="l3_stop_loss")
    alert = _action("alert", "protocol.l3", 10)
    out = arbitrate(bundled.model, _decision(alert, pin, l3))

    assert out.actions == (alert, l3)
    [s] = out.superseded
    assert s.action == pin and s.target == PUT
    assert s.winner_rule == "protocol.l3" and out.actions[s.winner] == l3
    assert s.reason.startswith("stop_loss (protocol.l3, §6, close_position) takes precedence")
    assert "pin_risk (friday.pin_risk" in s.reason


def test_the_declared_class_order_beats_salience_a_pin_risk_close_wins_over_an_l2_roll(bundled):
    roll, pin = _action(*ROLL), _action(*PIN)
    out = arbitrate(bundled.model, _decision(roll, pin))
    assert out.actions == (pin,)  # roll.l2 has the lower salience (21 < 41), pin_risk the class
    assert out.superseded[0].action == roll and out.superseded[0].winner_rule == "friday.pin_risk"


def test_without_an_arbitration_section_the_lower_salience_wins():
    released = load_constitution(LOCK_PATH.parent / "released" / "v1.3.0.yaml")
    assert released.model.arbitration is None
    roll, pin = _action(*ROLL), _action(*PIN)
    out = arbitrate(released.model, _decision(pin, roll))
    assert out.actions == (roll,) and out.superseded[0].action == pin
    assert out.superseded[0].reason.endswith("lower salience")


def test_different_positions_and_non_intents_are_not_arbitrated(bundled):
    other = "GEN/AAPL/put/220/2026-11-20/short"
    actions = (
        _action(*L3),
        _action(*PIN, position=other),
        _action("set_protocol_level", "protocol.l3", 10),
        _action("alert", "protocol.l3", 10),
    )
    out = arbitrate(bundled.model, _decision(*actions))
    assert out.actions == actions and out.superseded == ()


ASSIGN = ("prepare_assignment", "assignment.prepare", 42)


def test_the_assignment_check_holds_an_expiring_option_over_a_pin_risk_close_and_a_roll(bundled):
    # §7 "ITM > 95 %: prepare for assignment" keeps the option to expiry (D13): v1.3.1 lists
    # prepare_assignment as an intent and the assignment class before pin risk and the roll
    pin, roll, assign = _action(*PIN), _action(*ROLL), _action(*ASSIGN)
    out = arbitrate(bundled.model, _decision(pin, roll, assign))
    assert out.actions == (assign,)
    assert {s.action.rule for s in out.superseded} == {"friday.pin_risk", "roll.l2"}
    assert all(s.winner_rule == "assignment.prepare" for s in out.superseded)


def test_the_stop_loss_still_wins_over_the_assignment_check(bundled):
    l3, assign = _action(*L3), _action(*ASSIGN)
    out = arbitrate(bundled.model, _decision(assign, l3))
    assert out.actions == (l3,) and out.superseded[0].action == assign


def test_two_entries_on_one_account_symbol_leave_one(bundled):
    gen = _action("open_short_put", "entry.csp.gen", 70, position=None)
    extra = _action("open_short_put", "entry.csp.extra", 69, position=None)
    out = arbitrate(bundled.model, _decision(extra, gen))
    # entry.csp.gen is in the entry class; a rule no class lists ranks after every class,
    # whatever its salience
    assert out.actions == (gen,) and out.superseded[0].target == "GEN/AAPL"


def test_arbitration_is_idempotent_and_its_record_canonical(bundled):
    d = _decision(_action(*PIN), _action(*L3))
    once = arbitrate(bundled.model, d)
    assert arbitrate(bundled.model, once) == once
    assert once.to_json() == arbitrate(bundled.model, d).to_json()
    assert b'"superseded"' in once.to_json()
    # a decision nothing was superseded in serialises as it did before the field existed
    assert b"superseded" not in _decision(_action(*L3)).to_json()
    assert Decision.model_validate_json(once.to_json()) == once


FRIDAY_FACTS = """
as_of: 2026-11-20T15:00:00-05:00
market:
  vix: 18.4
  underlyings:
    AAPL: {price: 200.0, atr5: 3.1}
accounts:
  - id: GEN
    kind: gen
    equity: 400000
    base_equity: 400000
    high_water_mark: 400000
    cash: 400000
    opened: 2026-01-02
    positions:
      - {symbol: AAPL, right: put, side: short, strike: 225, expiry: 2026-11-20, contracts: 2,
         entry_credit: 1.85, mark: 25.0, delta: -0.99}
"""


def test_the_rules_ask_twice_on_the_friday_and_arbitration_keeps_the_stop_loss(bundled):
    raw = evaluate(bundled, load_facts_text(FRIDAY_FACTS))
    # a put 8 ATR through its strike is no pin risk (D13): the stop-loss and §7's assignment
    # check both act on it
    asks = [
        a
        for a in raw.actions
        if a.kind in ("close_position", "prepare_assignment") and a.position == PUT
    ]
    assert {a.rule for a in asks} == {"protocol.l3", "assignment.prepare"}

    out = arbitrate(bundled.model, raw)
    [kept] = [a for a in out.actions if a.kind == "close_position"]
    assert kept.rule == "protocol.l3" and kept.params["urgency"] == "market"
    assert [(s.action.rule, s.winner_rule) for s in out.superseded] == [
        ("assignment.prepare", "protocol.l3")
    ]
    assert out.fired == raw.fired  # every firing stays in the explanation


@pytest.mark.parametrize(
    "edit, code, where",
    [
        ("rules: [cc.profit_take]", "unknown-rule", "arbitration.precedence[5].rules[1]"),
        ("rules: [cc.profit_take]", "duplicate", "arbitration.precedence[5].rules[1]"),
        ("intents: [close_position,", "bad-value", "arbitration.intents[0]"),
    ],
)
def test_an_arbitration_section_naming_what_does_not_exist_is_refused_located(
    bundled_text, edit, code, where
):
    new = {
        "unknown-rule": "rules: [cc.profit_take, cc.profit_takes]",
        "duplicate": "rules: [cc.profit_take, protocol.l3]",
        "bad-value": "intents: [alert, close_position,",
    }[code]
    with pytest.raises(ConstitutionInvalid) as exc:
        load_constitution_text(bundled_text.replace(edit, new), "c.yaml")
    [problem] = exc.value.problems
    assert (problem.code, problem.path) == (code, where) and problem.line > 1


# --------------------------------------------------------------------------- the Friday


def _step(capsys, url: str, facts) -> None:
    code = main(["paper", "step", "--facts", str(facts), "--db", url])
    _, err = capsys.readouterr()
    assert code == 0, err


def test_the_double_close_friday_places_one_close_and_leaves_the_put_flat(
    backend_url, tmp_path, capsys
):
    thursday = EXAMPLE_FACTS  # Gen sells 0-1 DTE AAPL puts expiring Friday 2026-11-20
    friday = facts_file(
        tmp_path,
        "fri.yaml",
        ("2026-11-19T10:15:00", "2026-11-20T15:00:00"),
        ("AAPL: {price: 228.5", "AAPL: {price: 200.0"),  # > 3 ATR through the strike: L3
    )
    later = facts_file(
        tmp_path,
        "fri2.yaml",
        ("2026-11-19T10:15:00", "2026-11-20T15:30:00"),
        ("AAPL: {price: 228.5", "AAPL: {price: 200.0"),
    )
    _step(capsys, backend_url, thursday)
    store = SqlLedgerStore.open(backend_url)
    [put] = [
        h for h in store.state.holdings.values() if h.account == "GEN" and h.key.startswith("AAPL ")
    ]
    store.close()
    assert put.quantity < 0 and put.contract.right == "P"

    _step(capsys, backend_url, friday)
    _step(capsys, backend_url, later)

    store = SqlLedgerStore.open(backend_url)
    venue = PaperBroker(store=SqlVenueStore(store.engine))
    closes = [
        r
        for r in venue.requests()
        if r.contract.key == put.key and r.side is OrderSide.BUY and r.account == "GEN"
    ]
    assert len(closes) == 1 and closes[0].quantity == -put.quantity  # one close, of all of it
    assert (("GEN", put.key) not in store.state.holdings) and not any(
        p.account == "GEN" and p.contract.key == put.key and p.quantity for p in venue.positions()
    )
    audit = AuditStore(store.engine, WallClock())
    decision = next(
        r.decision
        for r in audit.query(AuditQuery(mode=RunMode.PAPER, limit=None))
        if r.decision.decision_id == closes[0].decision_id
    )
    [superseded] = [s for s in decision.superseded if s.action.position.startswith("GEN/AAPL/put")]
    assert (
        superseded.action.rule == "assignment.prepare" and superseded.winner_rule == "protocol.l3"
    )
    assert decision.actions[superseded.winner].rule == "protocol.l3"
    store.close()
    # replay re-runs the pipeline, arbitration included: the record is reproduced exactly
    capsys.readouterr()
    assert main(["audit", "replay", decision.decision_id, "--db", backend_url]) == 0
    assert capsys.readouterr().out.startswith("identical")
