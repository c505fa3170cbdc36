"""Builders for the planner's money and protection tests: a ledger from operations, a market
view from spot prices (options are modelled from them), an action, and a plan run the way a
cycle runs it - the risk guard's verdicts first, then the planner."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from engine.execution.broker import OrderRequest, OrderSide
from engine.execution.ledger import (
    Deposit,
    LedgerOp,
    LedgerState,
    OpenAccount,
    OrderRecord,
    RecordIntent,
    apply_all,
)
from engine.execution.plan import Context, Plan, PlannedOrder
from engine.execution.planner import plan
from engine.execution.risk import GuardState, Limits, review
from engine.market.instruments import ContractSpec
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, Quote
from engine.records.decision import Action, ConstitutionRef, Decision

NY = ZoneInfo("America/New_York")
DAY = date(2024, 6, 27)  # a Thursday, the quarter's last session but one
AT = datetime(2024, 6, 27, 16, 30, tzinfo=NY)
SPOTS = {"AAPL": 210.0, "AMZN": 185.0, "MSFT": 450.0, "NVDA": 125.0, "SPY": 545.0}
Kind = Literal["gen", "rev", "com", "mini"]
KINDS: dict[str, Kind] = {"GEN": "gen", "REV": "rev", "COM": "com"}


def view(spots: dict[str, float] | None = None, vix: float | None = 15.0) -> MarketView:
    quotes = {s: Quote(s, p, AT) for s, p in (SPOTS if spots is None else spots).items()}
    vix_quote = Quote("VIX", vix, AT) if vix is not None else None
    return MarketView(MarketSnapshot(as_of=AT, quotes=quotes, vix=vix_quote))


def ledger(*ops: LedgerOp, base: LedgerState | None = None) -> LedgerState:
    state, _ = apply_all(base or LedgerState(), list(ops))
    return state


def family(cash: dict[str, float], name: str = "F1") -> LedgerState:
    """GEN/REV/COM of family ``name`` with ``cash`` dollars each (their base)."""
    ops: list[LedgerOp] = []
    for account, dollars in cash.items():
        kind = KINDS.get(account.split("-")[0], "mini")
        ops.append(OpenAccount(f"o:{account}", account, kind, date(2024, 1, 2), family=name))
        ops.append(Deposit(f"d:{account}", account, round(dollars * 100)))
    return ledger(*ops)


def working(
    state: LedgerState, account: str, contract: ContractSpec, side: OrderSide
) -> LedgerState:
    """``state`` with one working (submitted, unfilled) order of ``account``."""
    request = OrderRequest(
        client_order_id=f"w:{account}:{contract.key}",
        decision_id="earlier",
        account=account,
        contract=contract,
        side=side,
        quantity=1,
        limit_price=1.0,
    )
    record = OrderRecord(request, 0, "open_short_put", "income", "cash")
    return ledger(RecordIntent(f"intent:{account}", record), base=state)


def action(kind: str, account: str | None, /, position: str | None = None, **params: Any) -> Action:
    return Action(
        kind=kind,
        account=account,
        position=position,
        rule=f"test.{kind}",
        clause="§0",
        salience=50,
        params=params,
        reason="test",
    )


def decision(*actions: Action, mode: str = "active", accounts: dict | None = None) -> Decision:
    facts = {"accounts": [{"id": k, **v} for k, v in (accounts or {}).items()], "market": {}}
    return Decision(
        decision_id="d-9",
        as_of=AT.isoformat(),
        constitution=ConstitutionRef(version="1.3.1", digest="x"),
        facts_digest="f",
        facts=facts,
        derived={"market": {"mode": mode}, "accounts": {}},
        fired=(),
        actions=actions,
    )


def context(
    bundled,
    state: LedgerState,
    *actions: Action,
    accounts: dict | None = None,
    market: MarketView | None = None,
    mode: str = "active",
    by_key: dict | None = None,
) -> Context:
    """The planner's context for ``actions`` (``accounts``: the facts' per-account values)."""
    return Context(
        bundled.model,
        decision(*actions, mode=mode, accounts=accounts),
        state,
        market or view(),
        Limits(mode, 1.0),
        accounts or {},
        by_key or {},
    )


def cycle_plan(
    bundled,
    state: LedgerState,
    *actions: Action,
    accounts: dict | None = None,
    market: MarketView | None = None,
    mode: str = "active",
    guard: GuardState | None = None,
    by_key: dict | None = None,
) -> tuple[Decision, Plan]:
    """The guard's verdicts, then the plan, as a cycle makes them."""
    reviewed, limits = review(
        bundled.model, decision(*actions, mode=mode, accounts=accounts), guard or GuardState()
    )
    return reviewed, plan(bundled.model, reviewed, state, market or view(), limits, by_key or {})


def worst_cost(o: PlannedOrder) -> float:
    """What an order may pay at most: its quantity at the ladder's last price."""
    r = o.request
    return r.quantity * o.ladder[-1] * r.contract.multiplier
