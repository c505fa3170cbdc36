"""Arbitration: one intent per position per decision (docs/decisions.md D40).

Rules fire independently: on a Friday afternoon the L3 stop-loss and the pin-risk rule can
both ask to close the same short put, and an L2 roll can coincide with a pin-risk close. Of
the actions that act on one target - a position, or (for an entry, which has no position yet)
an account's symbol - and whose kind the constitution lists in ``arbitration.intents``,
exactly one survives. The winner is the action of the first class in
``arbitration.precedence``; within a class, and for rules no class lists (ranked after every
listed class), the lower salience, then the rule id, then the earlier action. A constitution
without the section (v1.3.0) ranks by salience alone.

The losers leave ``Decision.actions`` (so the risk guard, the planner and the report see one
intent per target) and are kept in ``Decision.superseded`` with the winning rule and why, so
the record still explains everything the rules asked for. Pure: a function of the decision
and the constitution, so a replay re-runs it and gets the same record; applying it twice
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from constitution.models import Arbitration, Constitution
from engine.records.decision import Action, Decision, Superseded

# Without an arbitration section the kinds that place orders on a position or a symbol compete.
_UNDECLARED_INTENTS = (
    "close_position",
    "roll_position",
    "release_hedge",
    "open_short_put",
    "open_covered_call",
)


@dataclass(frozen=True, slots=True)
class _Ranked:
    index: int
    action: Action
    rank: tuple[int, int, str, int]
    cls: str  # the precedence class's name ("" when no class lists the rule)


def target_of(action: Action) -> str | None:
    """What an action acts on: its position key, else ACCOUNT/SYMBOL; None for neither."""
    if action.position:
        return action.position
    if action.account and action.symbol:
        return f"{action.account}/{action.symbol}"
    return None


def arbitrate(c: Constitution, decision: Decision) -> Decision:
    """``decision`` with one intent per target; the others moved to ``superseded``."""
    intents = set(c.arbitration.intents if c.arbitration else _UNDECLARED_INTENTS)
    classes = _classes(c.arbitration)
    groups: dict[str, list[_Ranked]] = {}
    for i, a in enumerate(decision.actions):
        target = target_of(a)
        if a.kind in intents and target is not None:
            groups.setdefault(target, []).append(_rank(i, a, classes))
    losers: dict[int, tuple[str, _Ranked]] = {}
    for target, ranked in groups.items():
        winner, *rest = sorted(ranked, key=lambda r: r.rank)
        for r in rest:
            losers[r.index] = (target, winner)
    if not losers:
        return decision
    return _without(decision, losers, classes)


def _classes(arb: Arbitration | None) -> dict[str, tuple[int, str, str]]:
    """rule id -> (class position, class name, clause)."""
    if arb is None:
        return {}
    return {
        rule: (n, cls.name, cls.clause)
        for n, cls in enumerate(arb.precedence)
        for rule in cls.rules
    }


_UNLISTED = (1 << 31, "", "")  # after every listed class


def _rank(i: int, a: Action, classes: dict[str, tuple[int, str, str]]) -> _Ranked:
    position, name, _ = classes.get(a.rule, _UNLISTED)
    return _Ranked(i, a, (position, a.salience, a.rule, i), name)


def _without(decision: Decision, losers: dict[int, tuple[str, _Ranked]], classes: dict) -> Decision:
    kept = [i for i in range(len(decision.actions)) if i not in losers]
    new_index = {old: new for new, old in enumerate(kept)}
    superseded = tuple(
        Superseded(
            action=decision.actions[i],
            target=target,
            winner=new_index[winner.index],
            winner_rule=winner.action.rule,
            reason=_reason(winner, _rank(i, decision.actions[i], classes)),
        )
        for i, (target, winner) in sorted(losers.items())
    )
    return decision.model_copy(
        update={
            "actions": tuple(decision.actions[i] for i in kept),
            "superseded": decision.superseded + superseded,
        }
    )


def _reason(winner: _Ranked, loser: _Ranked) -> str:
    def who(r: _Ranked) -> str:
        named = f"{r.cls} " if r.cls else ""
        return f"{named}({r.action.rule}, {r.action.clause}, {r.action.kind})"

    if winner.rank[0] != loser.rank[0]:
        why = "an earlier class in arbitration.precedence"
    elif winner.rank[1] != loser.rank[1]:
        why = "lower salience"
    else:
        why = "same class and salience: rule id, then action order"
    return f"{who(winner)} takes precedence over {who(loser)}: {why}"
