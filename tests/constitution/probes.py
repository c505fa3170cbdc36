"""Mutation probes: does changing one constitution key change what the system does?

A probe takes a copy of the bundled constitution with one value changed and compares a
*behaviour signature* with the bundled one's:

* ``decision`` - a scenario's facts (``tests/scenarios``) through the compiled evaluator and
  arbitration: the actions, derived values and superseded intents;
* ``cadence``  - the scheduler's fire times (``scheduler.cadence``) over three weeks (an
  ordinary one, Thanksgiving's early close, Good Friday's) and the monitor intervals;
* ``market``   - facts built by ``engine.market.facts_builder`` from a replay market over
  synthetic bars (fresh, stale and missing ATRs, one old quote) on each sleeve's entry day;
* ``plan``     - that scenario's decision planned (``engine.execution.planner``);
* ``cycle``    - a week of the paper pipeline: orders, cancel-replace pauses, balances;
* ``approvals``, ``proposal``, ``tax``, ``weeks``, ``leaps`` - the governance, tax-ledger,
  week-label and LEAP-ladder code on fixed inputs;
* ``refused``  - the changed constitution does not load, with a problem naming the key (a value
  the schema allows only one way, or one the code would not act on: D160).

``key_probes.yaml`` is the table: key -> probe kind, the changed value and (for ``decision``
and ``plan``) the scenario. ``python -m tests.constitution.probes KEY...`` suggests a probe for a new key.
"""

from __future__ import annotations

import copy
import re
import sys
import typing
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from constitution.errors import InvalidInput
from constitution.load import bundled_path, load_constitution_text
from constitution.models import Constitution

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
TABLE = Path(__file__).with_name("key_probes.yaml")
NY = "America/New_York"

# --- keys -----------------------------------------------------------------------------------


def _submodel(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        for inner in typing.get_args(arg):  # tuple[Model, ...]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _is_list(annotation: Any) -> bool:
    options = (annotation, *typing.get_args(annotation))  # tuple[...] or tuple[...] | None
    return any(typing.get_origin(a) is tuple for a in options)


def leaf_keys(model: type[BaseModel] = Constitution, prefix: str = "") -> dict[str, Any]:
    """Every leaf key of the schema -> its pydantic field; list items are ``key[]``."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        sub = _submodel(field.annotation)
        if sub is None:
            out[path] = field
            continue
        path += "[]" if _is_list(field.annotation) else ""
        out.update(leaf_keys(sub, path + "."))
    return out


def doc_only_reason(model: type[BaseModel], key: str) -> str | None:
    """The schema's ``doc_only`` mark on the field of ``key`` (or on a section above it)."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields[part.removesuffix("[]")]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "doc_only" in extra:
            return str(extra["doc_only"])
        if i < len(parts) - 1:
            model = _submodel(field.annotation)
    return None


# --- mutation -------------------------------------------------------------------------------


@cache
def bundled_data() -> dict:
    return yaml.safe_load(bundled_path().read_text("utf-8"))


_STEP = re.compile(r"([A-Za-z0-9_]+)(?:\[(\d+)\])?")


def mutated(path: str, value: Any, also: dict | None = None):
    """The bundled constitution with ``path`` (``a.b[0].c``) set to ``value`` (and each path of
    ``also`` to its value: a share whose siblings must still sum to 100 %): the loaded
    constitution, or the ``InvalidInput`` it is refused with."""
    data = copy.deepcopy(bundled_data())
    for p, v in {path: value, **(also or {})}.items():
        _set(data, p, v)
    try:
        return load_constitution_text(yaml.safe_dump(data, sort_keys=False), f"<{path}>")
    except InvalidInput as exc:
        return exc


def _set(data: dict, path: str, value: Any) -> None:
    steps = [_STEP.fullmatch(s).groups() for s in path.split(".")]
    node = data
    for i, (name, index) in enumerate(steps):
        last = i == len(steps) - 1
        if index is None:
            if last:
                node[name] = value
            else:
                node = node[name]
        elif last:
            node[name][int(index)] = value
        else:
            node = node[name][int(index)]


def value_at(path: str) -> Any:
    node: Any = bundled_data()
    for name, index in (_STEP.fullmatch(s).groups() for s in path.split(".")):
        node = node.get(name) if isinstance(node, dict) else None
        if index is not None and node is not None:
            node = node[int(index)]
    return node


# --- signatures -----------------------------------------------------------------------------


@cache
def scenario_cases() -> dict[str, dict]:
    from scheduler.scenarios import load_cases, scenario_files

    return {
        name: facts
        for path in scenario_files([str(SCENARIOS)])
        for name, facts, _ in load_cases(path)
    }


def decision_signature(constitution, case: str, accounts: int | None = None) -> Any:
    """``accounts``: review the decision with the risk guard, as a cycle would, for a user
    with this many accounts (``engine.execution.risk``)."""
    from engine.cycle.pipeline import after_evaluation
    from engine.execution.risk import GuardState
    from engine.facts.load import facts_from_data
    from engine.rules.evaluate import evaluate

    facts = facts_from_data(scenario_cases()[case], source=case)
    guard = None if accounts is None else GuardState(accounts=accounts)
    d = after_evaluation(constitution, evaluate(constitution, facts), guard)
    return (
        [a.model_dump() for a in d.actions],
        d.derived,
        [x.model_dump() for x in d.superseded],
        [v.model_dump() for v in d.verdicts],
    )


def plan_signature(constitution, case: str) -> Any:
    """A scenario's decision planned (``engine.execution.planner``) on an empty ledger with no
    quotes: the ledger operations, orders and refusals it gives, without their ids."""
    from dataclasses import asdict, is_dataclass

    from engine.cycle.pipeline import after_evaluation, limits_of
    from engine.execution import planner, risk
    from engine.execution.ledger import LedgerState
    from engine.facts.load import facts_from_data
    from engine.market.quotes import MarketView
    from engine.market.snapshot import MarketSnapshot
    from engine.rules.evaluate import evaluate

    facts = facts_from_data(scenario_cases()[case], source=case)
    d = after_evaluation(constitution, evaluate(constitution, facts), risk.GuardState())
    view = MarketView(MarketSnapshot(as_of=facts.as_of))
    plan = planner.plan(constitution.model, d, LedgerState(), view, limits_of(d), {})

    def plain(x):
        data = asdict(x) if is_dataclass(x) else dict(vars(x))
        return {k: v for k, v in data.items() if k != "op_id"}

    return (
        [(type(op).__name__, plain(op)) for op in plan.ops],
        [
            str(o.request.model_dump(exclude={"client_order_id", "decision_id"}))
            for o in plan.orders
        ],
        [str(r) for r in plan.rejections],
    )


CADENCE_WEEKS = (date(2024, 11, 18), date(2024, 11, 25), date(2024, 3, 25))


def cadence_signature(constitution) -> Any:
    from scheduler.cadence import day_plan, spec_from

    spec = spec_from(constitution.model)
    days = [w + timedelta(days=i) for w in CADENCE_WEEKS for i in range(5)]
    plans = [day_plan(d, spec) for d in days]
    return (
        [(p.events, p.weekly_report) for p in plans],
        [spec.level_interval(level) for level in range(4)],
    )


MARKET_LAST = date(2024, 11, 22)
# Mon (Com enters), Wed (Rev), Thu (Gen) at 10:00, and Thursday 15:00 (5.5 h past the refresh)
MARKET_AT = ((2024, 11, 18, 10), (2024, 11, 20, 10), (2024, 11, 21, 10), (2024, 11, 21, 15))
OLD_QUOTE = timedelta(seconds=20)


@cache
def _bars() -> dict:
    from adapters.market_data.synthetic import generate

    symbols = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "AMZN", "GOOG", "GOOGL", "NVDA", "TSLA")
    bars = dict(generate(1, MARKET_LAST, (*symbols, "META", "VIX")).bars)
    bars["TSLA"] = bars["TSLA"].until(MARKET_LAST - timedelta(days=10))  # a stale ATR
    meta = bars["META"]
    bars["META"] = meta.slice(len(meta) - 3, len(meta))  # too few bars for any ATR
    return bars


def market_signature(constitution) -> Any:
    from zoneinfo import ZoneInfo

    from adapters.market_data.files import BarMarketData
    from engine.market.facts_builder import build_facts, candidates_for_day
    from engine.market.params import market_params

    params = market_params(constitution.model)
    market = BarMarketData(_bars(), vix_symbol="VIX", index_symbol="SPY")
    symbols = sorted({s for ts in params.sleeve_tickers.values() for s in ts})
    out = []
    for y, m, d, h in MARKET_AT:
        at = datetime.combine(date(y, m, d), time(h), tzinfo=ZoneInfo(NY))
        snap = market.snapshot(at, symbols, params)
        quotes = dict(snap.quotes)
        q = quotes["AAPL"]
        quotes["AAPL"] = replace(q, at=q.at - OLD_QUOTE)  # 20 s old
        facts = build_facts(
            replace(snap, quotes=quotes),
            [],
            params=params,
            candidates=candidates_for_day(at.date(), params),
        )
        out.append(facts.model_dump(mode="json"))
    return out


CYCLE_WEEK = date(2024, 1, 8)  # tests.execution.helpers' scripted week (a Friday assignment)


def cycle_signature(constitution, stress: bool = False) -> Any:
    """A week of the paper pipeline (``engine.cycle.trading``) on a fresh SQLite database
    (``stress``: in §2's stress-test mode): every order it placed, every pause it made between
    a limit and its replacement, and every account's closing balance."""
    import tempfile

    from engine.cycle.bootstrap import Portfolio, open_portfolio
    from engine.execution.ledger import SetFlag
    from scheduler.compose import open_paper_cycle
    from tests.execution import helpers

    with tempfile.TemporaryDirectory() as tmp:
        m = helpers.market()
        url = f"sqlite:///{tmp}/probe.db"
        cycle, broker, store = open_paper_cycle(url, m, constitution=constitution)
        waits: list[float] = []
        cycle.executor.wait = waits.append
        t0 = helpers.at(CYCLE_WEEK, 9, 40)
        broker.sync(t0, m.snapshot(t0, cycle.symbols, cycle.params))
        open_portfolio(cycle, Portfolio(helpers.CAPITAL, CYCLE_WEEK), t0, broker.seed_position)
        if stress:
            store.apply([SetFlag("probe:stress", "stress_test", "on", "probe", CYCLE_WEEK)], t0)
        for at in helpers.week_times(CYCLE_WEEK):
            cycle.run(at)
        orders = sorted(  # not the client order ids: they name the constitution's digest
            (r.account, str(r.contract), str(r.side), r.quantity, r.limit_price)
            for r in broker.requests()
        )
        balances = sorted(store.state.balances.items())
        store.engine.dispose()
        return orders, waits, balances


def approvals_signature(constitution) -> Any:
    """Which actions wait for a person, the live notional limit, and what a request becomes
    when its time is up (``engine.execution.approvals``)."""
    from engine.execution import approvals
    from engine.records.decision import Action

    c = constitution.model
    kinds = ("fork_account", "merge_account", "open_short_put", "reinvest", "buy_leap")
    actions = [Action(kind=k, rule="r", clause="§0", salience=1, reason="") for k in kinds]
    at = datetime(2024, 1, 8, 10, tzinfo=_ny())
    asked = approvals.request(
        c.governance.approvals, "d-1", (1, "h"), 0, actions[0], "paper", "k", at
    )
    later = approvals.expiry(c.governance.approvals, asked, asked.expires_at)
    return (
        [approvals.needs_person(c, a) for a in actions],
        approvals.notional_limit(c, "live"),
        asked.expires_at,
        later.state if later else None,
    )


def proposal_signature(constitution) -> Any:
    """The proposal gate's verdicts on a fixed pair of backtests (``scheduler.proposal_gate``):
    the proposal is 1.5 points deeper in drawdown, 1.5 points of CAGR lower and spends one more
    day under the kill switch."""
    from scheduler.proposal_gate import Figures, gate_checks

    def figures(cagr, dd, kill):
        return Figures(
            cagr=cagr,
            worst_drawdown=dd,
            drawdowns={"GEN": dd},
            kill_days=kill,
            safe_days=0,
            end_equity=1.0,
            trades=1,
            forks=0,
        )

    checks = gate_checks(
        constitution.model.governance.proposals, figures(0.10, 0.10, 3), figures(0.085, 0.115, 4)
    )
    return [(c.name, c.passed) for c in checks]


def tax_signature(constitution) -> Any:
    """Terms and wash sales of three share lots (``engine.execution.books.tax_lines``): one held
    200 days at a gain, one sold at a loss 20 days before the same shares were bought again."""
    from engine.execution.books import tax_lines
    from engine.execution.ledger import LedgerState, Realised
    from engine.market.instruments import ContractSpec, SecType

    msft = ContractSpec(sec_type=SecType.STOCK, symbol="MSFT")
    d0 = date(2024, 1, 2)

    def lot(n, opened, closed, open_price, close_price):
        gain = round((close_price - open_price) * 100 * 100)
        return Realised(
            f"op{n}",
            0,
            "COM",
            msft,
            "stock",
            100,
            opened,
            closed,
            open_price,
            close_price,
            gain,
            "order",
        )

    realised = [
        lot(1, d0, d0 + timedelta(days=200), 100.0, 120.0),
        lot(2, d0, d0 + timedelta(days=30), 100.0, 90.0),
        lot(3, d0 + timedelta(days=50), d0 + timedelta(days=60), 91.0, 95.0),
    ]
    return [(t.term, t.wash_sale) for t in tax_lines(constitution.model, LedgerState(), realised)]


def _ny():
    from zoneinfo import ZoneInfo

    return ZoneInfo(NY)


def weeks_signature(constitution) -> Any:
    """The label of a week with each pair of labelling events (``scheduler.weekly``)."""
    from itertools import combinations

    from scheduler.weekly import EVENT_LABEL, label_week

    events = sorted(EVENT_LABEL)
    return [label_week(pair, constitution.model.week_types) for pair in combinations(events, 2)]


def leaps_signature(constitution) -> Any:
    """The hedge-put rungs ``engine.execution.protect`` would buy for a ladder holding 0-3
    rungs (SPY at 500 on 2024-01-08): their strikes and expiries."""
    from types import SimpleNamespace

    from engine.execution import protect

    ctx = SimpleNamespace(
        c=constitution.model, market=SimpleNamespace(spot=lambda s: 500.0), today=date(2024, 1, 8)
    )
    return [protect._hedge_contract(ctx, n) for n in range(4)]


UNITS = {
    "leaps": leaps_signature,
    "weeks": weeks_signature,
    "approvals": approvals_signature,
    "proposal": proposal_signature,
    "tax": tax_signature,
}


def signature(kind: str, constitution, probe: dict) -> Any:
    if kind == "decision":
        return decision_signature(constitution, probe["case"], probe.get("accounts"))
    if kind == "plan":
        return plan_signature(constitution, probe["case"])
    if kind == "cadence":
        return cadence_signature(constitution)
    if kind == "market":
        return market_signature(constitution)
    if kind == "cycle":
        return cycle_signature(constitution, probe.get("stress", False))
    if kind in UNITS:
        return UNITS[kind](constitution)
    raise ValueError(f"unknown probe kind {kind!r}")


@cache
def bundled():
    from constitution.load import load_constitution

    return load_constitution(bundled_path())


@cache
def bundled_signature(kind: str, case: str | None = None, stress: bool = False, accounts=None):
    return signature(kind, bundled(), {"case": case, "stress": stress, "accounts": accounts})


def changes_behaviour(key: str, probe: dict) -> tuple[bool, str]:
    """(whether the probe shows a change, what it saw)."""
    path = probe.get("path", key)
    on = probe.get("given")  # settings both sides share: the base the change is measured from
    edited = mutated(path, probe["set"], {**(on or {}), **(probe.get("also") or {})})
    kind = probe["probe"]
    if kind == "refused":  # refused, and for this key: the problem names it or its section
        if not isinstance(edited, InvalidInput):
            return False, f"{path} = {probe['set']!r} was accepted"
        seen = edited.problems[0].render()
        names = [p.split("[")[0] for p in path.split(".")]
        return any(n in seen.split(": ", 2)[-1] for n in names[1:] or names), seen
    if isinstance(edited, InvalidInput):
        return False, f"{path} = {probe['set']!r} is refused: {edited.problems[0].render()}"
    if on:
        start = next(iter(on))
        base = signature(kind, mutated(start, on[start], on), probe)
    else:
        base = bundled_signature(
            kind, probe.get("case"), probe.get("stress", False), probe.get("accounts")
        )
    same = signature(kind, edited, probe) == base
    return (not same), ("no change" if same else "changed")


# --- suggesting probes (python -m tests.constitution.probes KEY...) ---------------------------


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def candidates(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, max(value - 1, 0), value + 10, value // 2, max(value // 4, 1)]
    if isinstance(value, float):
        return [round(value * f, 6) for f in (1.5, 0.5, 0.9, 1.1, 0.25)] + [round(value + 0.05, 6)]
    if isinstance(value, str) and re.fullmatch(r"\d\d:\d\d", value):
        hh, mm = map(int, value.split(":"))
        return [
            f"{hh:02d}:{mm + 10:02d}" if mm < 40 else f"{hh + 1:02d}:{mm - 40:02d}",
            f"{hh:02d}:{max(mm - 10, 0):02d}",
            f"{hh + 1:02d}:{mm:02d}",
        ]
    if value in WEEKDAYS:
        return [d for d in WEEKDAYS if d != value]
    if isinstance(value, str):
        return [value + "x"]
    if isinstance(value, list):
        return [value[:-1], [*value, "XOM"]] if value else [["XOM"]]
    return []


def _literals(key: str) -> list[Any]:
    field = leaf_keys().get(key)
    options = (field.annotation, *typing.get_args(field.annotation)) if field else ()
    return [
        v for a in options if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)
    ]


def suggest(key: str, also: dict | None = None, kinds=("cadence", "market")) -> dict | None:
    path = key.replace("[]", "[0]")
    value = value_at(path)
    extra = {"path": path} if path != key else {}
    extra |= {"also": also} if also else {}
    for v in [x for x in _literals(key) if x != value] or candidates(value):
        edited = mutated(path, v, also)
        if isinstance(edited, InvalidInput):
            continue
        for kind in kinds:
            if signature(kind, edited, {}) != bundled_signature(kind):
                return {"probe": kind, "set": v} | extra
        for case in scenario_cases():
            if decision_signature(edited, case) != bundled_signature("decision", case):
                return {"probe": "decision", "set": v, "case": case} | extra
    return None


if __name__ == "__main__":
    for k in sys.argv[1:]:
        print(k, suggest(k))
