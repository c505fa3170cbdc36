"""``alluse audit list|show|verify|export|replay``: reviewing the decision log.

Readers never create a database: pointing ``--db`` at a file that does not exist is an error
(exit 3), not an empty log that "verifies". ``verify`` and ``replay`` exit 1 when the log is
broken or the replay differs, so they can gate scripts and CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import import_module

from rich.console import Console
from rich.table import Table

from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.database import ENV_VAR
from constitution.canonical import canonical_json
from constitution.errors import OperationalError
from engine.audit import AuditRecord, Mode, ReplayResult, replay
from engine.clock import WallClock

EXIT_OK, EXIT_BAD, EXIT_NOT_FOUND = 0, 1, 2
CSV_COLUMNS = (
    "seq", "recorded_at", "mode", "record_type", "decision_id", "as_of", "constitution_version",
    "constitution_digest", "search", "prev_hash", "hash", "body",
)


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="review the decision log: list, show, verify, export, replay")
    verbs = audit.add_subparsers(dest="audit_verb", metavar="ACTION", parser_class=type(audit))
    verbs.required = True
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", metavar="URL", help=f"database URL or SQLite path (default: ${ENV_VAR} or the per-user data file)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--since", type=_when, help="decisions with as_of at or after (ISO date or datetime; UTC if no offset)")
    filters.add_argument("--until", type=_when, help="decisions with as_of before")
    filters.add_argument("--account", help="an action or firing concerns this account (GEN, REV, COM, MINI-1)")
    filters.add_argument("--rule", help="this rule fired")
    filters.add_argument("--kind", help="an action of this kind")
    filters.add_argument("--mode", choices=[m.value for m in Mode])

    p = verbs.add_parser("list", parents=[db, filters], help="decisions, newest last")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many (the most recent); default 50")
    p.add_argument("--json", action="store_true", help="records as a JSON array")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser("show", parents=[db], help="one decision with its explanation and execution links")
    p.add_argument("id", metavar="ID", help="decision id (d-...) or sequence number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser("verify", parents=[db], help="walk the hash chain; exit 1 at the first bad record")
    p.add_argument("--anchor", metavar="HASH",
                   help="a record hash noted earlier (e.g. head_hash of a past verify): fail if it is no longer in the chain (detects a cut tail)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = verbs.add_parser("export", parents=[db, filters], help="every record (decisions and links) as JSON lines or CSV")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser("replay", parents=[db], help="re-evaluate a decision's facts under its constitution; exit 1 if different")
    p.add_argument("id", metavar="ID", help="decision id (d-...) or sequence number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replay)


def _when(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date/datetime: {text!r}") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a positive integer, not {text!r}")
    return int(text)


def _open(args) -> AuditStore:
    return AuditStore.open(args.db, WallClock(), create=False)


def _console() -> Console:
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140, highlight=False)


def _query(args, **overrides) -> AuditQuery:
    values = {k: getattr(args, k, None) for k in ("since", "until", "account", "rule", "kind", "mode")}
    return AuditQuery(**{**values, **overrides})


def _print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- list


def cmd_list(args) -> int:
    store = _open(args)
    try:
        records = store.query(_query(args, limit=args.limit))
    finally:
        store.close()
    if args.json:
        _print_json([r.to_json_dict() for r in records])
        return EXIT_OK
    table = Table(title=f"{len(records)} decision(s)", title_justify="left")
    for name in ("seq", "as_of (UTC)", "mode", "decision", "constitution", "fired", "actions", "denied"):
        table.add_column(name, overflow="fold", no_wrap=name in ("as_of (UTC)", "decision"))
    for r in records:
        d = r.decision
        denied = sum(1 for v in d.verdicts if not v.approved)
        kinds = _action_summary(d.actions)
        table.add_row(
            str(r.seq), r.as_of or "", r.mode.value, r.decision_id, r.constitution_version or "",
            str(len(d.fired)), kinds, str(denied) if denied else "",
        )
    _console().print(table)
    return EXIT_OK


def _action_summary(actions) -> str:
    """``open_short_put@GEN x7, roll@REV``: kinds per account, counted, in first-seen order."""
    counts: dict[str, int] = {}
    for a in actions:
        key = a.kind + (f"@{a.account}" if a.account else "")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(k + (f" x{n}" if n > 1 else "") for k, n in counts.items()) or "-"


# --------------------------------------------------------------------------- show


def _find(store: AuditStore, ident: str) -> list[AuditRecord]:
    """Records for ``ident``: a sequence number (12 or #12) or a decision id."""
    number = ident.lstrip("#")
    if number.isdigit():
        record = store.get(int(number))
        if record is None:
            return []
        return store.for_decision(record.decision_id) if record.record_type.value == "decision" else [record]
    return store.for_decision(ident)


def _not_found(ident: str) -> int:
    print(f"alluse: no record {ident!r} in the audit log", file=sys.stderr)
    return EXIT_NOT_FOUND


def cmd_show(args) -> int:
    store = _open(args)
    try:
        records = _find(store, args.id)
    finally:
        store.close()
    if not records:
        return _not_found(args.id)
    if args.json:
        _print_json([r.to_json_dict() for r in records])
        return EXIT_OK
    console = _console()
    links = [r for r in records if r.link is not None]
    for record in records:
        if record.decision is not None:
            _show_decision(console, record, links)
    if all(r.decision is None for r in records):
        for record in records:
            _show_header(console, record)
            console.print_json(data=record.body["link"])
    return EXIT_OK


def _show_header(console: Console, r: AuditRecord) -> None:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    rows = [
        ("record", f"#{r.seq} {r.record_type.value} (record v{r.record_version})"),
        ("decision", r.decision_id),
        ("recorded at", r.recorded_at),
        ("mode", r.mode.value),
        ("as of", r.as_of or "-"),
        ("constitution", f"{r.constitution_version or '-'}  {r.constitution_digest or ''}"),
        ("hash", r.hash),
        ("prev hash", r.prev_hash),
        ("masked", ", ".join(r.masked) or "nothing"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.rule(f"[bold]{r.decision_id}[/bold] #{r.seq}")
    console.print(t)


def _show_decision(console: Console, r: AuditRecord, links: list[AuditRecord]) -> None:
    d = r.decision
    _show_header(console, r)
    console.print()
    console.print("[bold]Why[/bold]")
    for line in explain(r):
        console.print(f"  {line}", markup=False)
    if d.derived:
        console.print("\n[bold]Derived facts[/bold]")
        console.print_json(data=d.derived)
    console.print("\n[bold]Facts evaluated[/bold]")
    for line in summarise_facts(d.facts):
        console.print(f"  {line}", markup=False)
    console.print("\n[bold]Execution links[/bold]")
    mine = [x for x in links if x.decision_id == r.decision_id and x.mode == r.mode]
    for x in mine:
        link = x.link
        console.print(f"  #{x.seq} {x.recorded_at} {link.kind} {link.ref}: {canonical_json(link.data).decode()}", markup=False)
    if not mine:
        console.print("  none (nothing was sent for this decision)")


def explain(r: AuditRecord) -> list[str]:
    """Each action with its verdict and the firings (with bindings) that produced it."""
    d = r.decision
    verdicts = {v.action: v for v in d.verdicts}
    lines = []
    for i, a in enumerate(d.actions):
        v = verdicts.get(i)
        status = "no verdict" if v is None else "APPROVED" if v.approved else "DENIED"
        reasons = f" ({'; '.join(v.reasons)})" if v and v.reasons else ""
        scope = " ".join(x for x in (a.account, a.symbol, a.position) if x)
        params = f" {canonical_json(a.params).decode()}" if a.params else ""
        lines.append(f"[{i}] {a.kind} {scope}{params} -> {status}{reasons}")
        lines.append(f"    rule {a.rule} / {a.clause} (salience {a.salience}): {a.reason}")
        for f in d.fired:
            if f.rule == a.rule and f.clause == a.clause and (f.account, f.symbol, f.position) == (a.account, a.symbol, a.position):
                lines.extend(f"      because {b}" for b in f.bindings)
    acted = {(a.rule, a.clause) for a in d.actions}
    others = [f for f in d.fired if (f.rule, f.clause) not in acted]
    if others:
        lines.append("rules that fired without an action of their own (derived facts):")
        for f in others:
            scope = " ".join(x for x in (f.account, f.symbol, f.position) if x)
            lines.append(f"  {f.rule} / {f.clause} {scope}: " + "; ".join(f.bindings))
    if not d.actions and not d.fired:
        lines.append("no rule fired: nothing to do")
    return lines


def summarise_facts(facts: dict) -> list[str]:
    market = facts.get("market", {})
    scalars = {k: v for k, v in market.items() if not isinstance(v, dict | list)}
    lines = [f"as_of {facts.get('as_of', '?')}", "market " + " ".join(f"{k}={v}" for k, v in sorted(scalars.items()))]
    for symbol, u in sorted(market.get("underlyings", {}).items()):
        lines.append(f"  {symbol}: " + " ".join(f"{k}={v}" for k, v in sorted(u.items()) if not isinstance(v, dict | list)))
    for a in facts.get("accounts", []):
        scalars = " ".join(f"{k}={v}" for k, v in sorted(a.items()) if k not in ("positions", "id") and not isinstance(v, dict | list))
        lines.append(f"account {a.get('id', '?')}: {scalars}, {len(a.get('positions', []))} position(s)")
    for q in facts.get("quality", []):
        lines.append(f"data quality: {q}")
    return lines


# --------------------------------------------------------------------------- verify


def cmd_verify(args) -> int:
    store = _open(args)
    try:
        report = store.verify(args.anchor)
    finally:
        store.close()
    problem = report.problem.model_dump() if report.problem else None
    if problem is None and args.anchor and report.anchor_seq is None:
        problem = {"seq": report.head_seq + 1, "code": "anchor", "message": (
            f"the chain is intact up to seq {report.head_seq} but the noted record {args.anchor} is not in it: "
            "records were cut from the end (or the hash is from another log)")}
    if args.json:
        _print_json({"ok": problem is None, "count": report.count, "head_seq": report.head_seq,
                     "head_hash": report.head_hash, "anchor_seq": report.anchor_seq, "problem": problem})
    elif problem is None:
        anchored = f"; anchor found at #{report.anchor_seq}" if args.anchor else ""
        print(f"intact: {report.count} record(s); head #{report.head_seq} {report.head_hash}{anchored}")
    else:
        print(f"BROKEN at seq {problem['seq']}: {problem['code']}: {problem['message']}")
        print(f"({report.count} record(s) before it verify)")
    return EXIT_OK if problem is None else EXIT_BAD


# --------------------------------------------------------------------------- export


def cmd_export(args) -> int:
    store = _open(args)
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        records = store.iter_records(_query(args, record_type=None, limit=None))
        (_write_jsonl if args.format == "jsonl" else _write_csv)(records, out)
    finally:
        store.close()
        if args.output:
            out.close()
    return EXIT_OK


def _write_jsonl(records: Iterable[AuditRecord], out) -> None:
    # One record per line, canonical JSON: the line minus "hash" hashes to "hash".
    for r in records:
        out.write(canonical_json(r.to_json_dict()).decode("utf-8") + "\n")


def _write_csv(records: Iterable[AuditRecord], out) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        doc = r.to_json_dict()
        doc["body"] = canonical_json(doc["body"]).decode("utf-8")  # exactly the stored text
        writer.writerow(["" if doc[c] is None else doc[c] for c in CSV_COLUMNS])


# --------------------------------------------------------------------------- replay


def replay_functions() -> tuple[Callable, Callable, Callable]:
    """(load_constitution_text, Facts.model_validate, evaluate), imported only when needed."""
    try:
        load = import_module("constitution.load").load_constitution_text
        facts = import_module("engine.facts").Facts
        evaluate = import_module("engine.pipeline").evaluate
    except (ImportError, AttributeError) as exc:
        raise OperationalError(f"replay needs the evaluation pipeline, which is not available ({exc})") from exc
    return load, facts.model_validate, evaluate


def cmd_replay(args) -> int:
    store = _open(args)
    try:
        records = [r for r in _find(store, args.id) if r.decision is not None]
        text = store.constitution_text(records[0].constitution_digest) if records else None
    finally:
        store.close()
    if not records:
        return _not_found(args.id)
    record = records[0]
    if text is None:
        raise OperationalError(f"the text of constitution {record.constitution_digest} is not in the log: cannot replay")
    result = replay(record, text, *replay_functions())
    _print_replay(result, record, args.json)
    return EXIT_OK if result.identical else EXIT_BAD


def _print_replay(result: ReplayResult, record: AuditRecord, as_json: bool) -> None:
    if as_json:
        _print_json({"seq": record.seq, **result.model_dump()})
        return
    head = f"#{record.seq} {result.decision_id} under constitution {record.constitution_version} {record.constitution_digest}"
    print(f"{'identical' if result.identical else 'DIFFERENT'}: {head}")
    for line in result.differences:
        print(f"  {line}")
    for note in result.notes:
        print(f"  note: {note}")
