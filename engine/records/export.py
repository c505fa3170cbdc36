"""Tables a reviewer can use, built from audit records: actions, trades (orders) and fills.

``alluse audit export --table actions|trades|fills`` writes them as CSV, JSON lines or
Parquet; ``--table records`` (the default) keeps the verifiable record export. Every row names
its decision and the sequence number of the record it comes from, so a row can be traced back
into the hash chain. Order ids are the client order ids ``DECISION:ACTION:LEG`` the planner
gives (``engine.execution.plan``), so an action's orders are found by that prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.records.audit import AuditRecord, RecordType

ACTION_COLUMNS = (
    "seq",
    "decision_id",
    "as_of",
    "recorded_at",
    "mode",
    "constitution_version",
    "action_index",
    "rule",
    "clause",
    "action",
    "account",
    "symbol",
    "position",
    "verdict",
    "reasons",
    "order_ids",
)
_CONTRACT = ("symbol", "sec_type", "expiry", "strike", "right")
TRADE_COLUMNS = (
    "seq",
    "decision_id",
    "action_index",
    "client_order_id",
    "recorded_at",
    "mode",
    "account",
    *_CONTRACT,
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "state",
    "filled",
    "avg_fill_price",
    "reason",
)
FILL_COLUMNS = (
    "seq",
    "decision_id",
    "client_order_id",
    "execution_id",
    "at",
    "mode",
    "account",
    *_CONTRACT,
    "side",
    "quantity",
    "price",
    "commission",
    "origin",
)
TABLES = {"actions": ACTION_COLUMNS, "trades": TRADE_COLUMNS, "fills": FILL_COLUMNS}


def _action_index(client_order_id: str) -> int | None:
    parts = client_order_id.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _contract(data: dict[str, Any]) -> dict[str, Any]:
    c = data.get("contract", {})
    return {k: c.get(k) for k in _CONTRACT}


def _verdict(verdicts: dict[int, Any], i: int) -> tuple[str, str]:
    v = verdicts.get(i)
    if v is None:
        return "", ""
    return ("approved" if v.approved else "denied"), "; ".join(v.reasons)


class _Tables:
    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []
        self.trades: dict[str, dict[str, Any]] = {}  # client order id -> row (status merged in)
        self.fills: list[dict[str, Any]] = []
        self.orders_of: dict[tuple[str, str, int], list[str]] = {}  # (mode, decision, action)

    def decision(self, r: AuditRecord) -> None:
        d = r.decision
        if d is None:
            return
        verdicts = {v.action: v for v in d.verdicts}
        for i, a in enumerate(d.actions):
            verdict, reasons = _verdict(verdicts, i)
            self.actions.append(
                {
                    "seq": r.seq,
                    "decision_id": r.decision_id,
                    "as_of": r.as_of,
                    "recorded_at": r.recorded_at,
                    "mode": r.mode.value,
                    "constitution_version": r.constitution_version,
                    "action_index": i,
                    "rule": a.rule,
                    "clause": a.clause,
                    "action": a.kind,
                    "account": a.account,
                    "symbol": a.symbol,
                    "position": a.position,
                    "verdict": verdict,
                    "reasons": reasons,
                    "order_ids": "",
                }
            )

    def link(self, r: AuditRecord) -> None:
        link = r.link
        if link is None:
            return
        data = link.data
        if link.kind == "order":
            self._order(r, data)
        elif link.kind == "status" and data.get("client_order_id") in self.trades:
            row = self.trades[data["client_order_id"]]
            row.update({k: data.get(k) for k in ("state", "filled", "avg_fill_price", "reason")})
        elif link.kind == "fill":
            self.fills.append(
                {
                    "seq": r.seq,
                    "decision_id": r.decision_id,
                    "client_order_id": data.get("client_order_id"),
                    "execution_id": data.get("execution_id"),
                    "at": data.get("at"),
                    "mode": r.mode.value,
                    "account": data.get("account"),
                    **_contract(data),
                    **{k: data.get(k) for k in ("side", "quantity", "price", "commission")},
                    "origin": data.get("origin", "order"),
                }
            )

    def _order(self, r: AuditRecord, data: dict[str, Any]) -> None:
        coid = data.get("client_order_id", "")
        index = _action_index(coid)
        self.trades[coid] = {
            "seq": r.seq,
            "decision_id": r.decision_id,
            "action_index": index,
            "client_order_id": coid,
            "recorded_at": r.recorded_at,
            "mode": r.mode.value,
            "account": data.get("account"),
            **_contract(data),
            **{k: data.get(k) for k in ("side", "quantity", "order_type", "limit_price")},
            "state": "",
            "filled": 0,
            "avg_fill_price": None,
            "reason": "",
        }
        if index is not None:
            self.orders_of.setdefault((r.mode.value, r.decision_id, index), []).append(coid)

    def finish(self) -> None:
        for row in self.actions:
            key = (row["mode"], row["decision_id"], row["action_index"])
            row["order_ids"] = "; ".join(self.orders_of.get(key, ()))


def tables(records: Iterable[AuditRecord]) -> dict[str, list[dict[str, Any]]]:
    """The actions, trades and fills tables of ``records`` (in log order)."""
    t = _Tables()
    for r in records:
        if r.record_type is RecordType.DECISION:
            t.decision(r)
        else:
            t.link(r)
    t.finish()
    return {"actions": t.actions, "trades": list(t.trades.values()), "fills": t.fills}
