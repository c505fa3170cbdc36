"""Constitution v1.3's rules written by hand in plain Python: the benchmark baseline.

Same decisions as the YAML rules (a test checks the firings are identical), no engine, no
explanations, v1.3's numbers typed in. This is what the rules engine is measured against.
"""

from __future__ import annotations

from engine.rules.prepare import prepare
from tests.bundled_params import CADENCE

GEN_T = {"AAPL", "MSFT", "AMZN", "GOOG", "SPY", "QQQ", "IWM"}
REV_T = {"NVDA", "TSLA"}
COM_T = {"AAPL", "MSFT", "AMZN", "GOOGL", "NVDA", "TSLA", "META"}
MODES = ("active", "hedged", "safe", "kill")


def _up(d: dict, key: str, value) -> None:
    if key == "mode":
        if MODES.index(value) > MODES.index(d[key]):
            d[key] = value
    elif value > d[key]:
        d[key] = value


def evaluate(facts) -> set[tuple]:
    pre = prepare(facts, 120, CADENCE)
    m = pre.market
    fired: set[tuple] = set()
    mk = {"mode": "active", "data_stale": False, "hedge_trigger": False}
    vix = m["vix"]
    if vix > 80:
        fired.add(("vix.kill_switch",))
        _up(mk, "mode", "kill")  # noqa: E702
    if 65 < vix <= 80:
        fired.add(("vix.safe",))
        _up(mk, "mode", "safe")  # noqa: E702
    if 50 < vix <= 65:
        fired.add(("vix.hedged_week",))
        _up(mk, "mode", "hedged")  # noqa: E702
    if not m["broker_connected"]:
        fired.add(("data.broker_down",))
        _up(mk, "mode", "safe")  # noqa: E702
    if m["data_age_seconds"] > 30:
        fired.add(("data.stale",))
        mk["data_stale"] = True  # noqa: E702
    if (
        m["vix_closes_above_30"] >= 5
        or m["spx_drawdown"] >= 0.20
        or m["breadth_above_50dma"] < 0.20
    ):
        fired.add(("hedge.trigger",))
        mk["hedge_trigger"] = True  # noqa: E702
    accts = {a["acct"]: a for a in pre.accounts}
    ad = {
        k: {
            "level": 0,
            "mode": "active",
            "csp_suspended": False,
            "entries_frozen": False,
            "csp_window": False,
            "cc_window": False,
        }
        for k in accts
    }
    unds = {u["sym"]: u for u in pre.underlyings}
    day, minute, sched = m["clock_weekday"], m["clock_minutes_et"], m["clock_schedule_minutes"]
    levels = {}
    for p in pre.positions:
        a, d = accts[p["acct"]], ad[p["acct"]]
        key = ("", p["acct"], p["key"])
        short_inc = p["side"] == "short" and p["is_option"] and p["purpose"] == "income"
        short_put = short_inc and p["right"] == "put"  # covered calls: their own protocol
        b = p.get("breach_atr")
        if short_put and b is not None:
            if 1 <= b < 2:
                fired.add(("protocol.l1", *key[1:]))
                levels[p["key"]] = 1  # noqa: E702
            if 2 <= b < 3:
                fired.add(("protocol.l2", *key[1:]))
                levels[p["key"]] = 2
                d["entries_frozen"] = True  # noqa: E702
                ratio = p.get("roll_cost_ratio")
                if ratio is None or ratio <= 0.5:
                    fired.add(("roll.l2", *key[1:]))
                if ratio is not None and ratio > 0.5:
                    fired.add(("roll.uneconomic_exit", *key[1:]))
                    levels[p["key"]] = 3  # noqa: E702
                    _up(d, "mode", "safe")
            if b >= 3:
                fired.add(("protocol.l3", *key[1:]))
                levels[p["key"]] = 3  # noqa: E702
                _up(d, "mode", "safe")
                d["entries_frozen"] = True  # noqa: E702
            if b >= 2 and not a["hedged"]:
                fired.add(("hedge.tactical_l2", *key[1:]))
        if (
            p["right"] == "put"
            and p["side"] == "short"
            and p["purpose"] == "income"
            and b is not None
            and b < 2
        ):
            if a["kind"] in ("gen", "mini") and b >= 1.0:
                fired.add(("roll.prepare.gen", *key[1:]))
            if a["kind"] == "rev" and b >= 1.5:
                fired.add(("roll.prepare.rev", *key[1:]))
        if p["purpose"] == "hedge" and p["side"] == "long":
            if p.get("profit_multiple") is not None and p["profit_multiple"] >= 2.0:
                fired.add(("hedge.release_profit", *key[1:]))
            if p["right"] == "put" and vix < 20:
                fired.add(("hedge.release_calm", *key[1:]))
        if (
            p["right"] == "call"
            and p["side"] == "short"
            and p["purpose"] == "income"
            and p.get("decay", -1) >= 0.65
        ):
            fired.add(("cc.profit_take", *key[1:]))
        if (
            p["right"] == "call"
            and p["side"] == "short"
            and p["purpose"] == "income"
            and p.get("abs_delta", -1) > 0.80
            and p.get("decay", -1) >= 0.30
        ):
            fired.add(("cc.early_assignment", *key[1:]))
        if (
            short_inc
            and m["clock_last_session_of_week"]
            and 870 <= sched < 945
            and p["dte"] <= 0
            and p["otm_atr"] < 0.5
        ):
            fired.add(("friday.pin_risk", *key[1:]))
        if (
            p["side"] == "short"
            and p["is_option"]
            and m["clock_expiry_session"]
            and sched >= 900
            and p["dte"] <= 0
            and p.get("abs_delta", -1) >= 0.95
        ):
            fired.add(("assignment.prepare", *key[1:]))
    for pkey, level in levels.items():
        acct = pkey.split("/")[0]
        fired.add(("protocol.account_level", acct, pkey))
        _up(ad[acct], "level", level)
    for k, a in accts.items():
        d = ad[k]
        fired.add(("mode.account_inherits_market", k))
        _up(d, "mode", mk["mode"])  # noqa: E702
        if mk["hedge_trigger"] and not a["hedged"] and a["kind"] in ("gen", "rev", "com"):
            fired.add(("hedge.strategic", k))
        if a["kind"] in ("rev", "com", "mini") and a["drawdown"] >= 0.15 and vix < 30:
            fired.add(("pivot.drawdown", k))
            d["csp_suspended"] = True  # noqa: E702
        if a["kind"] == "gen" and a["drawdown"] >= 0.15:
            fired.add(("pivot.drawdown_gen", k))
            d["csp_suspended"] = True  # noqa: E702
        if a["pivot_latched"] and a["drawdown"] > 0.05:
            fired.add(("pivot.hold", k))
            d["csp_suspended"] = True  # noqa: E702
        if a["pivot_latched"] and a["drawdown"] <= 0.05:
            fired.add(("pivot.recovered", k))
        if a["kind"] in ("gen", "rev", "mini") and a["holds_shares"] and a["drawdown"] > 0.05:
            fired.add(("pivot.assignment_recovery", k))
            d["csp_suspended"] = True  # noqa: E702
        window = 585 <= minute < 660
        if (
            not m["clock_session"]
            and window
            and (
                (a["kind"] in ("gen", "mini") and day == "thu")
                or (a["kind"] == "rev" and day == "wed")
                or (a["kind"] in ("com", "mini") and day == "mon")
            )
        ):
            fired.add(("skip.market_closed", k))
        if a["kind"] in ("gen", "mini") and day == "thu" and window and m["clock_session"]:
            fired.add(("window.csp.gen", k))
            d["csp_window"] = True  # noqa: E702
        if a["kind"] == "rev" and day == "wed" and window and m["clock_session"]:
            fired.add(("window.csp.rev", k))
            d["csp_window"] = True  # noqa: E702
        if (
            a["kind"] == "com"
            and not a["holds_shares"]
            and day == "mon"
            and window
            and m["clock_session"]
        ):
            fired.add(("window.csp.com", k))
            d["csp_window"] = True  # noqa: E702
        if day == "mon" and window and m["clock_session"]:
            fired.add(("window.cc", k))
            d["cc_window"] = True  # noqa: E702
        if a["kind"] == "gen" and a["gain_over_base"] >= 100000 and not a["fork_deferred"]:
            fired.add(("fork.gen", k))
        if a["kind"] == "rev" and a["gain_over_base"] >= 500000 and not a["fork_deferred"]:
            fired.add(("fork.rev", k))
        if a["kind"] == "mini" and (a["age_years"] >= 3 or a["growth_multiple"] >= 3.0):
            fired.add(("merge.mini", k))
        if (
            a["kind"] in ("rev", "com")
            and m["clock_quarter_last_session"]
            and sched >= 990
            and a["quarter_gains"] > 0
        ):
            fired.add(("reinvest.quarterly", k))
    for p in pre.positions:
        if (
            p["purpose"] == "hedge"
            and p["side"] == "long"
            and not mk["hedge_trigger"]
            and m.get("hedge_trigger_off_closes", -1) >= 5
            and ad[p["acct"]]["level"] < 2
            and mk["mode"] == "active"
            and vix >= 20
        ):
            fired.add(("hedge.release_reverted", p["acct"], p["key"]))
    _entries(fired, pre, accts, ad, unds, mk)
    return fired


def _liquid(u) -> bool:
    if not u["liquidity_known"]:
        return True
    return (
        u["option_open_interest"] >= 500
        and u["option_volume"] >= 100
        and u["option_spread_pct"] <= 0.05
    )


def _entries(fired, pre, accts, ad, unds, mk) -> None:
    for k, a in accts.items():
        d = ad[k]
        if d["csp_window"]:
            for rule, hit in (
                ("skip.mode", d["mode"] in ("safe", "kill")),
                ("skip.frozen", d["entries_frozen"]),
                ("skip.csp_suspended", d["csp_suspended"]),
                ("skip.stale_data", mk["data_stale"]),
            ):
                if hit:
                    fired.add((rule, k))
            tickers = {"gen": GEN_T, "mini": GEN_T, "rev": REV_T, "com": COM_T}[a["kind"]]
            for sym, u in unds.items():
                if sym not in tickers:
                    continue
                ok = (
                    d["mode"] in ("active", "hedged")
                    and not d["entries_frozen"]
                    and not d["csp_suspended"]
                    and not mk["data_stale"]
                    and u["quote_ok"]
                    and u["chain_available"]
                    and not u["earnings_this_week"]
                    and _liquid(u)
                )
                if ok:
                    fired.add((f"entry.csp.{a['kind']}", k, sym))
                if u["earnings_this_week"]:
                    fired.add(("skip.earnings", k, sym))
                if not u["quote_ok"] or not u["chain_available"]:
                    fired.add(("skip.symbol_data", k, sym))
                if not _liquid(u):
                    fired.add(("skip.liquidity", k, sym))
    for p in pre.positions:
        a, d, u = accts[p["acct"]], ad[p["acct"]], unds[p["sym"]]
        if not (
            d["cc_window"]
            and p["right"] == "stock"
            and p["uncovered_contracts"] > 0
            and d["mode"] in ("active", "hedged")
            and not d["entries_frozen"]
            and not mk["data_stale"]
            and u["quote_ok"]
            and u["chain_available"]
        ):
            continue
        if a["kind"] in ("com", "mini"):
            rule = "entry.cc.com_earnings" if u["earnings_this_week"] else "entry.cc.com"
            fired.add((rule, p["acct"], p["key"]))
        if a["kind"] in ("gen", "rev"):
            fired.add(("entry.cc.assigned", p["acct"], p["key"]))


def engine_firings(decision) -> set[tuple]:
    """The engine's firings in the baseline's shape, for the equality check."""
    out = set()
    for f in decision.fired:
        if f.position:
            out.add((f.rule, f.account, f.position))
        elif f.account and f.symbol:
            out.add((f.rule, f.account, f.symbol))
        elif f.account:
            out.add((f.rule, f.account))
        else:
            out.add((f.rule,))
    return out
