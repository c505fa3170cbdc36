"""The side-by-side report of a proposal: one self-contained HTML file (no script, no CDN).

The figures come from the two backtests' summaries (``scheduler.governance.Figures``); this
module only renders them; the full side-by-side of the two runs is ``alluse report compare``'s
(issue 19, ``scheduler.reports.compare.compare_report``), written beside it as compare.html.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from constitution.diff import Diff

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scheduler.backtest import BacktestSummary

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }
.pass { color: #0a6b2d; font-weight: bold; } .fail { color: #a8071a; font-weight: bold; }
code { background: #f4f4f4; padding: 0 .2rem; }
"""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _cell(x: Any) -> str:
    return f"<td>{escape(str(x))}</td>"


def _rows(pairs: Iterable[tuple[str, str | int, str | int]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th>{_cell(a)}{_cell(b)}</tr>" for k, a, b in pairs)


def render(
    draft: dict,
    d: Diff,
    current: BacktestSummary,
    new: BacktestSummary,
    compared: tuple[str, str] | None = None,
) -> str:
    """``draft``: the proposal's fields (governance.propose); ``current``/``new``: summaries;
    ``compared``: (file, sha256) of the full side-by-side comparison, when written."""
    verdict = draft["verdict"]
    more = (
        f'<p>The two runs in full: <a href="{escape(compared[0])}">{escape(compared[0])}</a> '
        f"({escape(compared[1])}).</p>"
        if compared
        else "<p>(The full comparison needs the reports extra: pip install 'alluse[reports]'.)</p>"
    )
    checks = "".join(
        f"<tr><td>{escape(c.name)}</td><td><code>{escape(c.key)}</code></td>"
        f'{_cell(c.detail)}<td class="{"pass" if c.passed else "fail"}">'
        f"{'pass' if c.passed else 'fail'}</td></tr>"
        for c in draft["checks"]
    )
    accounts = sorted(set(current.max_drawdown) | set(new.max_drawdown))
    figures = _rows(
        [
            ("CAGR", _pct(current.cagr), _pct(new.cagr)),
            ("equity at the end", f"{current.end_equity:,.2f}", f"{new.end_equity:,.2f}"),
            *(
                (
                    f"max drawdown {a}",
                    _pct(current.max_drawdown.get(a)),
                    _pct(new.max_drawdown.get(a)),
                )
                for a in accounts
            ),
            ("kill-switch days", len(current.mode_days["kill"]), len(new.mode_days["kill"])),
            ("SAFE days", len(current.mode_days["safe"]), len(new.mode_days["safe"])),
            ("hedged days", len(current.mode_days["hedged"]), len(new.mode_days["hedged"])),
            (
                "forks / merges",
                f"{current.forks} / {current.merges}",
                f"{new.forks} / {new.merges}",
            ),
            (
                "orders / fills",
                f"{current.trades} / {current.fills}",
                f"{new.trades} / {new.fills}",
            ),
            ("decided cycles", current.decided, new.decided),
        ]
    )
    changes = "".join(
        f"<tr><td><code>{escape(c.path)}</code></td>{_cell(c.old)}{_cell(c.new)}</tr>"
        for c in d.parameters
    )
    rules = "".join(
        f"<li>{escape(label)} <code>{escape(r)}</code></li>"
        for label, ids in (("added", d.rules_added), ("removed", d.rules_removed))
        for r in ids
    ) + "".join(f"<li>changed <code>{escape(r.id)}</code></li>" for r in d.rules_changed)
    title = f"Proposal {draft['id']}: {draft['against_version']} -> {draft['version']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p>Verdict: <span class="{verdict}">{verdict}</span>. History {escape(draft["data"])},
{draft["first"]} .. {draft["last"]}; proposed by {escape(draft["proposed_by"])} at
{escape(draft["created_at"].isoformat())}.</p>
<p>Current <code>{escape(draft["against_source"])}</code> ({escape(draft["against_digest"])});
new <code>{escape(draft["source"])}</code> ({escape(draft["digest"])}).</p>
<h2>Governance gate (thresholds of the current version)</h2>
<table><tr><th>check</th><th>key</th><th>result</th><th></th></tr>{checks}</table>
<h2>Side by side</h2>
<table><tr><th></th><th>current {escape(draft["against_version"])}</th>
<th>new {escape(draft["version"])}</th></tr>{figures}</table>
{more}
<h2>What changed</h2>
<table><tr><th>parameter</th><th>current</th><th>new</th></tr>{changes}</table>
<ul>{rules}</ul>
</body></html>
"""
