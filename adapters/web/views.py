"""What the dashboard shows, as typed values: the JSON API returns them (their schemas are
the OpenAPI document's) and the pages render the same values. Built from one
``ReadOnlyDatabase``; nothing here writes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from adapters.storage.readers import (
    DecisionBody,
    DecisionFilter,
    FillRow,
    MarkedPosition,
    ReadOnlyDatabase,
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionSummary(_View):
    seq: int
    decision_id: str
    as_of: str
    mode: str
    constitution_version: str
    market_mode: str
    fired: int
    actions: str  # "open_short_put@REV x2, alert"
    denied: int


class Firing(_View):
    rule: str
    clause: str
    salience: int
    scope: str
    bindings: list[str]


class ActionView(_View):
    index: int
    kind: str
    scope: str
    rule: str
    clause: str
    reason: str
    params: dict[str, Any]
    verdict: str  # approved | denied | no verdict
    reasons: list[str]
    because: list[str]  # the bindings of the firing that produced it


class OrderView(_View):
    client_order_id: str
    account: str
    side: str
    quantity: int
    contract: str
    limit_price: float | None
    state: str
    filled: int
    avg_fill_price: float | None
    reason: str


class FillView(_View):
    execution_id: str
    at: str
    account: str
    contract: str
    side: str
    quantity: int
    price: float
    commission: float
    origin: str


class LinkView(_View):
    seq: int
    kind: str
    ref: str
    data: dict[str, Any]


class DecisionDetail(_View):
    summary: DecisionSummary
    constitution_digest: str
    recorded_at: str
    hash: str
    prev_hash: str
    previous_seq: int | None
    next_seq: int | None
    facts: dict[str, Any]
    derived: dict[str, Any]
    firings: list[Firing]
    actions: list[ActionView]
    quiet_firings: list[Firing]  # fired without an action of their own (derived facts)
    orders: list[OrderView]
    fills: list[FillView]
    links: list[LinkView]


class PositionView(_View):
    account: str
    contract: str
    symbol: str
    instrument: str  # stock | put | call
    side: str  # long | short
    quantity: int
    avg_price: float
    mark: float | None
    marked_at: str | None
    mark_source: str  # facts (the latest decision's) | fill (the holding's last fill) | "" (none)
    market_value: float | None
    pnl: float | None
    purpose: str
    opened: str
    lots: list[FillView]


class AccountView(_View):
    id: str
    kind: str
    status: str
    equity: float | None
    cash: float
    base_equity: float
    high_water_mark: float
    forks: int
    level: int | None  # protocol level in the latest decision
    mode: str | None  # the account's mode in the latest decision


class AlertView(_View):
    seq: int
    decision_id: str
    as_of: str
    severity: str
    message: str
    scope: str
    rule: str


# --------------------------------------------------------------------------- decisions


def _scope(x: dict[str, Any]) -> str:
    return " ".join(v for v in (x.get("account"), x.get("symbol"), x.get("position")) if v)


def _action_summary(actions: list[dict[str, Any]]) -> str:
    counts: Counter[str] = Counter()
    for a in actions:
        counts[a["kind"] + (f"@{a['account']}" if a.get("account") else "")] += 1
    return ", ".join(k + (f" x{n}" if n > 1 else "") for k, n in counts.items()) or "-"


def summary(d: DecisionBody) -> DecisionSummary:
    dec = d.decision
    return DecisionSummary(
        seq=d.seq,
        decision_id=d.decision_id,
        as_of=dec.get("as_of", d.as_of),
        mode=d.mode,
        constitution_version=dec.get("constitution", {}).get("version", ""),
        market_mode=dec.get("derived", {}).get("market", {}).get("mode", "active"),
        fired=len(dec.get("fired", ())),
        actions=_action_summary(list(dec.get("actions", ()))),
        denied=sum(1 for v in dec.get("verdicts", ()) if not v.get("approved", True)),
    )


def decisions(db: ReadOnlyDatabase, f: DecisionFilter) -> list[DecisionSummary]:
    return [summary(d) for d in db.search_decisions(f)]


def _firing(f: dict[str, Any]) -> Firing:
    return Firing(
        rule=f["rule"],
        clause=f["clause"],
        salience=int(f["salience"]),
        scope=_scope(f),
        bindings=list(f.get("bindings", ())),
    )


def _same_scope(f: dict[str, Any], a: dict[str, Any]) -> bool:
    keys = ("rule", "clause", "account", "symbol", "position")
    return all(f.get(k) == a.get(k) for k in keys)


def _actions(dec: dict[str, Any]) -> list[ActionView]:
    verdicts = {v["action"]: v for v in dec.get("verdicts", ())}
    out = []
    for i, a in enumerate(dec.get("actions", ())):
        v = verdicts.get(i)
        verdict = "no verdict" if v is None else "approved" if v["approved"] else "denied"
        because = [
            b for f in dec.get("fired", ()) if _same_scope(f, a) for b in f.get("bindings", ())
        ]
        out.append(
            ActionView(
                index=i,
                kind=a["kind"],
                scope=_scope(a),
                rule=a["rule"],
                clause=a["clause"],
                reason=a.get("reason", ""),
                params=a.get("params", {}),
                verdict=verdict,
                reasons=list(v.get("reasons", ())) if v else [],
                because=because,
            )
        )
    return out


def fill_view(f: FillRow) -> FillView:
    return FillView(
        execution_id=f.execution_id,
        at=f.at.isoformat(),
        account=f.account,
        contract=f.contract_key,
        side=f.side,
        quantity=f.quantity,
        price=f.price,
        commission=f.commission,
        origin=f.origin,
    )


def decision_detail(db: ReadOnlyDatabase, ident: str) -> DecisionDetail | None:
    d = db.decision_by(ident)
    if d is None:
        return None
    dec = d.decision
    hashes = db.record_hashes(d.seq) or ("", "")
    before, after = db.neighbours(d.seq)
    orders = [o for o in db.orders() if o.decision_id == d.decision_id]
    ids = {o.client_order_id for o in orders}
    acted = {(a["rule"], a["clause"]) for a in dec.get("actions", ())}
    return DecisionDetail(
        summary=summary(d),
        constitution_digest=dec.get("constitution", {}).get("digest", ""),
        recorded_at=d.recorded_at,
        hash=hashes[0],
        prev_hash=hashes[1],
        previous_seq=before,
        next_seq=after,
        facts=dec.get("facts", {}),
        derived=dec.get("derived", {}),
        firings=[_firing(f) for f in dec.get("fired", ())],
        actions=_actions(dec),
        quiet_firings=[
            _firing(f) for f in dec.get("fired", ()) if (f["rule"], f["clause"]) not in acted
        ],
        orders=[
            OrderView(
                client_order_id=o.client_order_id,
                account=o.account,
                side=o.side,
                quantity=o.quantity,
                contract=o.contract_key,
                limit_price=o.limit_price,
                state=o.state,
                filled=o.filled,
                avg_fill_price=o.avg_fill_price,
                reason=o.reason,
            )
            for o in orders
        ],
        fills=[fill_view(f) for f in db.fills() if f.client_order_id in ids],
        links=[
            LinkView(seq=s, kind=k, ref=r, data=data) for s, k, r, data in db.links(d.decision_id)
        ],
    )


# --------------------------------------------------------------------------- book


def _instrument(sec_type: str, right: str | None) -> str:
    return "stock" if sec_type == "STK" else "put" if right == "P" else "call"


def positions(db: ReadOnlyDatabase) -> list[PositionView]:
    fills = db.fills()
    return [_position(m, fills) for m in db.marked_positions()]


def _position(m: MarkedPosition, fills: list[FillRow]) -> PositionView:
    p = m.position
    opening = "SELL" if p.quantity < 0 else "BUY"
    lots = [
        fill_view(f)
        for f in fills
        if f.account == p.account
        and f.contract_key == p.contract_key
        and f.side == opening
        and f.at.date().isoformat() >= p.opened
    ]
    return PositionView(
        account=p.account,
        contract=p.contract_key,
        symbol=p.symbol,
        instrument=_instrument(p.sec_type, p.right),
        side=m.side,
        quantity=p.quantity,
        avg_price=p.avg_price,
        mark=m.mark,
        marked_at=m.marked_at,
        mark_source=m.source,
        market_value=_round(m.market_value),
        pnl=_round(m.pnl),
        purpose=p.purpose,
        opened=p.opened,
        lots=lots,
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def accounts(db: ReadOnlyDatabase, latest: DecisionBody | None) -> list[AccountView]:
    equity: dict[str, float] = {}
    for m in db.equity():
        equity[m.account] = m.equity
    derived = latest.decision.get("derived", {}).get("accounts", {}) if latest else {}
    return [
        AccountView(
            id=a.id,
            kind=a.kind,
            status=a.status,
            equity=equity.get(a.id),
            cash=a.cash,
            base_equity=a.base_equity,
            high_water_mark=a.high_water_mark,
            forks=a.forks,
            level=derived.get(a.id, {}).get("level"),
            mode=derived.get(a.id, {}).get("mode"),
        )
        for a in db.accounts()
    ]


def alerts(db: ReadOnlyDatabase, limit: int = 200) -> list[AlertView]:
    """The latest ``alert`` actions of the decision log, newest first."""
    found: list[AlertView] = []
    for d in db.search_decisions(DecisionFilter(kind="alert", limit=limit)):
        for a in d.decision.get("actions", ()):
            if a["kind"] == "alert":
                found.append(
                    AlertView(
                        seq=d.seq,
                        decision_id=d.decision_id,
                        as_of=d.decision.get("as_of", d.as_of),
                        severity=str(a.get("params", {}).get("severity", "info")),
                        message=str(a.get("params", {}).get("message", a.get("reason", ""))),
                        scope=_scope(a),
                        rule=a["rule"],
                    )
                )
    return found[:limit]
