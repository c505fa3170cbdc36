"""Readable terminal output (rich tables). Machine output is always ``--json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from constitution import expr as E

if TYPE_CHECKING:
    from datetime import time

    from constitution.diff import Diff
    from constitution.load import LoadedConstitution
    from constitution.models import Constitution, Range


def console() -> Console:
    # A fixed width when piped keeps output stable for logs and tests.
    return Console(width=None if Console().is_terminal else 140, highlight=False, soft_wrap=False)


def _pct(x: float) -> str:
    return f"{x * 100:g} %"


def _band(r: Range) -> str:
    return f"{r.min:g}–{r.max:g}"


def _hm(t: time) -> str:
    return t.strftime("%H:%M")


def constitution_tables(loaded: LoadedConstitution, with_rules: bool = False) -> None:
    c, out = loaded.model, console()
    out.print(
        f"[bold]{c.meta.name} {c.meta.version}[/bold]  effective {c.meta.effective}  "
        f"schema {c.schema_version}\n{loaded.source}  {loaded.digest}"
    )
    cap = c.capital
    out.print(
        f"Capital: split Gen/Rev/Com {_pct(cap.split.gen)}/{_pct(cap.split.rev)}/{_pct(cap.split.com)}, "
        f"deploy {_pct(cap.deployment.min)}–{_pct(cap.deployment.max)}, ≤ {_pct(cap.per_symbol_max)} per symbol, "
        f"margin ≤ {_pct(cap.margin_max)}, drawdown pivot {_pct(cap.drawdown_pivot.drawdown)} while VIX < "
        f"{cap.drawdown_pivot.vix_below:g}"
    )
    out.print(_sleeves(c))
    out.print(_levels(c))
    out.print(_vix(c))
    out.print(_schedule(c))
    out.print(_limits(c))
    if with_rules:
        out.print(_rules(loaded))
    else:
        out.print(
            f"{len(c.rules)} rules in {loaded.rules.strata} strata (alluse show --rules lists them)"
        )


def _sleeves(c: Constitution) -> Table:
    t = Table(title="Sleeves", title_justify="left")
    for col in (
        "sleeve",
        "sells",
        "delta",
        "DTE",
        "entry (ET)",
        "tickers",
        "profit take",
        "fork",
        "reinvest",
    ):
        t.add_column(col)
    for name in ("gen", "rev", "com"):
        s = getattr(c.sleeves, name)
        fork = f"every ${s.fork.every:,.0f} → {s.fork.creates}" if s.fork else "never"
        t.add_row(
            name.capitalize(),
            s.instrument,
            _band(s.delta),
            f"{s.dte.min}–{s.dte.max}",
            f"{s.entry.day} {_hm(s.entry.start)}–{_hm(s.entry.end)}",
            " ".join(s.tickers),
            _pct(s.profit_take) if s.profit_take is not None else "—",
            fork,
            s.reinvest,
        )
    m = c.sleeves.mini
    t.add_row(
        "Mini",
        f"{_pct(m.gen_style)} Gen-style + {_pct(m.com_style)} Com-style",
        "",
        "",
        "",
        "",
        "",
        f"merge after {m.merge.after_years:g} y or {m.merge.multiple:g}×",
        m.reinvest,
    )
    return t


def _levels(c: Constitution) -> Table:
    t = Table(title="Protocol levels (breach in ATR(5) multiples)", title_justify="left")
    for col in ("level", "name", "from", "monitor", "does"):
        t.add_column(col)
    for key in ("L0", "L1", "L2", "L3"):
        lv = getattr(c.protocol.levels, key)
        monitor = "real time" if lv.monitor_seconds == 0 else f"{lv.monitor_seconds} s"
        t.add_row(key, lv.name, f"{lv.atr_multiple:g}× ATR", monitor, lv.does)
    r = c.protocol.roll
    t.caption = f"Roll: +{r.dte_extension.min}–{r.dte_extension.max} DTE; a roll costing > {_pct(r.max_cost_of_credit)} of the credit becomes an L3 exit"
    return t


def _vix(c: Constitution) -> Table:
    t = Table(title="VIX tiers (strict >)", title_justify="left")
    t.add_column("VIX above")
    t.add_column("mode")
    t.add_row(
        f"{c.vix.hedged_week:g}", f"Hedged Week (deployment × {c.vix.hedged_week_deployment:g})"
    )
    t.add_row(f"{c.vix.safe:g}", "SAFE: no new entries")
    t.add_row(f"{c.vix.kill_switch:g}", "kill switch: full halt")
    return t


def _schedule(c: Constitution) -> Table:
    cad = c.cadence
    t = Table(title=f"Schedule ({cad.timezone})", title_justify="left")
    t.add_column("when")
    t.add_column("what")
    for name in ("gen", "rev", "com"):
        e = getattr(c.sleeves, name).entry
        t.add_row(f"{e.day} {_hm(e.start)}–{_hm(e.end)}", f"{name.capitalize()} entries")
    fm = cad.friday_management
    t.add_row(f"{fm.day} {_hm(fm.start)}–{_hm(fm.end)}", "manage/close for pin risk")
    t.add_row(
        f"{cad.assignment_check.day} {_hm(cad.assignment_check.at)}", "prepare likely assignments"
    )
    t.add_row(f"{cad.weekly_report.day} {_hm(cad.weekly_report.at)}", "weekly report")
    t.add_row(f"daily {_hm(c.protocol.atr.refresh)}", f"ATR({c.protocol.atr.period}) refresh")
    t.caption = (
        f"Early-close days: close-anchored events {cad.early_close_shift_minutes} min earlier"
    )
    return t


def _limits(c: Constitution) -> Table:
    lq, o = c.liquidity, c.orders
    t = Table(title="Liquidity and orders", title_justify="left")
    t.add_column("rule")
    t.add_column("value")
    t.add_row("open interest", f"≥ {lq.min_open_interest}")
    t.add_row("volume", f"≥ {lq.min_volume}/day")
    t.add_row("spread", f"≤ {_pct(lq.max_spread_pct_of_mid)} of mid")
    t.add_row(
        "order size", f"≤ {_pct(lq.max_pct_of_adv)} of ADV; sliced above {o.slice_above} contracts"
    )
    t.add_row(
        "price",
        f"limit at {o.limit}, ≤ {_pct(o.max_worse_pct)} worse, cancel-replace after {o.cancel_replace_seconds:g} s",
    )
    return t


def _rules(loaded: LoadedConstitution) -> Table:
    t = Table(title="Rules (lower salience acts first)", title_justify="left")
    for col in ("id", "clause", "sal.", "stratum", "when", "then"):
        t.add_column(col, overflow="fold")
    by_id = {r.id: r for r in loaded.rules.rules}
    for rule in sorted(loaded.model.rules, key=lambda r: (r.salience, r.id)):
        # Effect._one_kind: an effect without an action has its set (mypy cannot see it).
        then = ", ".join(e.action or "set " + ", ".join(e.set) for e in rule.then)  # type: ignore[arg-type]
        t.add_row(
            rule.id,
            rule.clause,
            str(rule.salience),
            str(by_id[rule.id].stratum),
            E.render(E.parse(rule.when)),
            then,
        )
    return t


def diff_text(d: Diff, a: LoadedConstitution, b: LoadedConstitution) -> None:
    out = console()
    out.print(f"{a.source} ({d.old_version}) → {b.source} ({d.new_version})")
    if d.empty:
        out.print("no semantic differences")
        return
    for ch in d.parameters:
        out.print(f"  changed  {ch.path}: {ch.old!r} → {ch.new!r}")
    for rid in d.rules_added:
        out.print(f"  added    rule {rid}")
    for rid in d.rules_removed:
        out.print(f"  removed  rule {rid}")
    for rc in d.rules_changed:
        for ch in rc.changes:
            out.print(f"  changed  rule {rc.id}: {ch.path}: {ch.old!r} → {ch.new!r}")
