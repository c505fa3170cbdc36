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
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.database import ENV_VAR
from constitution.canonical import canonical_json
from constitution.errors import OperationalError
from engine.clock import WallClock
from engine.records.audit import AuditRecord, RunMode
from engine.records.decision import Decision
from engine.records.replay import ReplayResult, replay

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType
    from typing import Any, TextIO

    import pyarrow

    from adapters.storage.audit_verify import CheckpointOutcome, FullReport
    from constitution.load import LoadedConstitution
    from engine.records.decision import Action
    from scheduler.cli import SubParsers

EXIT_OK, EXIT_BAD, EXIT_NOT_FOUND = 0, 1, 2
EXIT_DIFFERENT = 4  # replay: the pipeline today decides otherwise than the record says
CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "mode",
    "record_type",
    "decision_id",
    "as_of",
    "constitution_version",
    "constitution_digest",
    "search",
    "prev_hash",
    "hash",
    "body",
)


def register(subparsers: SubParsers) -> None:
    audit = subparsers.add_parser(
        "audit", help="review the decision log: list, show, verify, export, replay"
    )
    verbs = audit.add_subparsers(dest="audit_verb", metavar="ACTION", parser_class=type(audit))
    verbs.required = True
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="URL",
        help=f"database URL or SQLite path (default: ${ENV_VAR} or the per-user data file)",
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--since",
        type=_when,
        help="decisions with as_of at or after (ISO date or datetime; UTC if no offset)",
    )
    filters.add_argument("--until", type=_when, help="decisions with as_of before")
    filters.add_argument(
        "--account", help="an action or firing concerns this account (GEN, REV, COM, MINI-1)"
    )
    filters.add_argument("--rule", help="this rule fired")
    filters.add_argument("--kind", help="an action of this kind")
    filters.add_argument("--mode", choices=[m.value for m in RunMode])

    p = verbs.add_parser("list", parents=[db, filters], help="decisions, newest last")
    p.add_argument(
        "--limit",
        type=_positive,
        default=50,
        help="at most this many (the most recent); default 50",
    )
    p.add_argument("--json", action="store_true", help="records as a JSON array")
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser(
        "show", parents=[db], help="one decision with its explanation and execution links"
    )
    p.add_argument("id", metavar="ID", help="decision id (d-...) or sequence number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser(
        "verify", parents=[db], help="walk the hash chain; exit 1 at the first bad record"
    )
    p.add_argument(
        "--anchor",
        metavar="HASH",
        help="a record hash noted earlier (e.g. head_hash of a past verify): fail if it is no longer in the chain (detects a cut tail)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=Path,
        help="check against this signed checkpoint (e.g. one exported earlier) instead of the latest kept beside the database",
    )
    p.add_argument(
        "--key",
        metavar="FILE",
        type=Path,
        help="verifier key(s) to trust, one a line (alluse audit key show), besides this machine's own",
    )
    p.add_argument(
        "--require-checkpoint",
        action="store_true",
        help="fail (exit 1) when there is no checkpoint to check against",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    checkpoint = verbs.add_parser("checkpoint", help="the signed checkpoints of the log")
    cverbs = checkpoint.add_subparsers(dest="checkpoint_verb", metavar="ACTION")
    cverbs.required = True
    p = cverbs.add_parser(
        "export",
        parents=[db],
        help="print the latest signed checkpoint, for a second party to keep",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_checkpoint_export)

    key = verbs.add_parser("key", help="the checkpoint signing key (never in the database)")
    kverbs = key.add_subparsers(dest="key_verb", metavar="ACTION")
    kverbs.required = True
    p = kverbs.add_parser("show", help="where the key is and its verifier key (public)")
    p.add_argument("--create", action="store_true", help="create the key if there is none")
    p.set_defaults(func=cmd_key_show)
    p = kverbs.add_parser(
        "rotate", help="a new signing key; the old public key is kept so old checkpoints verify"
    )
    p.set_defaults(func=cmd_key_rotate)

    p = verbs.add_parser(
        "export",
        parents=[db, filters],
        help="records (verifiable), or actions, trades or fills tables, as JSON lines, CSV or Parquet",
    )
    p.add_argument(
        "--table",
        choices=("records", "actions", "trades", "fills"),
        default="records",
        help="records: every record as stored (default); actions: one row per action with its "
        "rule, verdict and order ids; trades: one row per order with its last status; fills",
    )
    p.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write here instead of standard output (Parquet: required)",
    )
    p.set_defaults(func=cmd_export)

    p = verbs.add_parser(
        "replay",
        parents=[db],
        help="re-run rules and risk review on a decision's recorded inputs; exit 4 if different",
    )
    p.add_argument("id", metavar="ID", nargs="?", help="decision id (d-...) or sequence number")
    p.add_argument("--all", action="store_true", help="replay every decision in the log")
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


def _open(args: argparse.Namespace) -> AuditStore:
    return AuditStore.open(args.db, WallClock(), create=False)


def _console() -> Console:
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140, highlight=False)


def _query(args: argparse.Namespace, **overrides: Any) -> AuditQuery:  # AuditQuery's fields
    values = {
        k: getattr(args, k, None) for k in ("since", "until", "account", "rule", "kind", "mode")
    }
    return AuditQuery(**{**values, **overrides})


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        records = store.query(_query(args, limit=args.limit))
    finally:
        store.close()
    if args.json:
        _print_json([r.to_json_dict() for r in records])
        return EXIT_OK
    table = Table(title=f"{len(records)} decision(s)", title_justify="left")
    for name in (
        "seq",
        "as_of (UTC)",
        "mode",
        "decision",
        "constitution",
        "fired",
        "actions",
        "denied",
    ):
        table.add_column(name, overflow="fold", no_wrap=name in ("as_of (UTC)", "decision"))
    for r in records:
        d = _decision_of(r)
        denied = sum(1 for v in d.verdicts if not v.approved)
        kinds = _action_summary(d.actions)
        table.add_row(
            str(r.seq),
            r.as_of or "",
            r.mode.value,
            r.decision_id,
            r.constitution_version or "",
            str(len(d.fired)),
            kinds,
            str(denied) if denied else "",
        )
    _console().print(table)
    return EXIT_OK


def _action_summary(actions: Iterable[Action]) -> str:
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
        return (
            store.for_decision(record.decision_id)
            if record.record_type.value == "decision"
            else [record]
        )
    return store.for_decision(ident)


def _not_found(ident: str) -> int:
    print(f"alluse: no record {ident!r} in the audit log", file=sys.stderr)
    return EXIT_NOT_FOUND


def cmd_show(args: argparse.Namespace) -> int:
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
    d = _decision_of(r)
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
        if link is None:  # a link record always carries its link
            continue
        console.print(
            f"  #{x.seq} {x.recorded_at} {link.kind} {link.ref}: {canonical_json(link.data).decode()}",
            markup=False,
        )
    if not mine:
        console.print("  none (nothing was sent for this decision)")


def _decision_of(r: AuditRecord) -> Decision:
    if r.decision is None:
        raise ValueError(f"record #{r.seq} is a {r.record_type}, not a decision")
    return r.decision


def explain(r: AuditRecord) -> list[str]:
    """Each action with its verdict and the firings (with bindings) that produced it."""
    d = _decision_of(r)
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
            if (
                f.rule == a.rule
                and f.clause == a.clause
                and (f.account, f.symbol, f.position) == (a.account, a.symbol, a.position)
            ):
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
    lines = [
        f"as_of {facts.get('as_of', '?')}",
        "market " + " ".join(f"{k}={v}" for k, v in sorted(scalars.items())),
    ]
    for symbol, u in sorted(market.get("underlyings", {}).items()):
        lines.append(
            f"  {symbol}: "
            + " ".join(f"{k}={v}" for k, v in sorted(u.items()) if not isinstance(v, dict | list))
        )
    for a in facts.get("accounts", []):
        values = " ".join(
            f"{k}={v}"
            for k, v in sorted(a.items())
            if k not in ("positions", "id") and not isinstance(v, dict | list)
        )
        lines.append(
            f"account {a.get('id', '?')}: {values}, {len(a.get('positions', []))} position(s)"
        )
    for q in facts.get("quality", []):
        lines.append(f"data quality: {q}")
    return lines


# --------------------------------------------------------------------------- verify


def cmd_verify(args: argparse.Namespace) -> int:
    from adapters.storage.audit_verify import verify_all

    keys = _verifier_keys(args.key)
    store = _open(args)
    try:
        full = verify_all(store, args.anchor, args.checkpoint, keys)
    finally:
        store.close()
    problems = _verify_problems(full, args)
    if args.json:
        _print_json(_verify_json(full, problems))
    else:
        _print_verify(full, problems)
    return EXIT_OK if not problems else EXIT_BAD


def _verifier_keys(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OperationalError(f"cannot read the verifier keys {path}: {exc}") from exc


def _verify_problems(full: FullReport, args: argparse.Namespace) -> list[dict]:
    """Every problem found, most fundamental first (chain, ledger, checkpoint)."""
    report, out = full.chain, []
    if report.problem is not None:
        out.append(report.problem.model_dump())
    elif args.anchor and report.anchor_seq is None:
        out.append(
            {
                "seq": report.head_seq + 1,
                "code": "anchor",
                "message": (
                    f"the chain is intact up to seq {report.head_seq} but the noted record {args.anchor} is not in it: "
                    "records were cut from the end (or the hash is from another log)"
                ),
            }
        )
    if full.ledger is not None and full.ledger.problem is not None:
        out.append(
            {
                "seq": None,
                **full.ledger.problem.model_dump(),
                "code": f"ledger-{full.ledger.problem.code}",
            }
        )
    cp = full.checkpoint
    if cp.status == "failed":
        out.append({"seq": None, "code": f"checkpoint-{cp.code}", "message": cp.message})
    elif cp.status == "none" and (args.require_checkpoint or args.checkpoint):
        out.append({"seq": None, "code": "checkpoint-none", "message": _no_checkpoint(cp)})
    return out


def _no_checkpoint(cp: CheckpointOutcome) -> str:
    where = cp.path or "(an in-memory database keeps none)"
    return (
        f"no checkpoint at {where}: records cut from the end or a re-chained history "
        "cannot be detected (a checkpoint is written at the end of every cycle)"
    )


def _verify_json(full: FullReport, problems: list[dict]) -> dict:
    r = full.chain
    return {
        "ok": not problems,
        "count": r.count,
        "head_seq": r.head_seq,
        "head_hash": r.head_hash,
        "anchor_seq": r.anchor_seq,
        "problem": problems[0] if problems else None,
        "problems": problems,
        "ledger": full.ledger.model_dump() if full.ledger else None,
        "checkpoint": full.checkpoint.as_dict(),
    }


def _print_verify(full: FullReport, problems: list[dict]) -> None:
    r = full.chain
    head = f"{r.count} record(s); head #{r.head_seq} {r.head_hash}"
    if not problems:
        print(f"intact: {head}")
    elif r.problem is None:
        print(f"chain intact: {head}")
    if full.ledger is not None and full.ledger.problem is None:
        print(
            f"ledger intact: {full.ledger.operations} operation(s), {full.ledger.entries} journal line(s), "
            "all chained; its tables match them"
        )
    cp = full.checkpoint
    if cp.status == "matches":  # a matching outcome carries its checkpoint; mypy cannot see it
        since = r.head_seq - cp.checkpoint.size  # type: ignore[union-attr]
        print(
            f"checkpoint matches: #{cp.checkpoint.size} of {cp.checkpoint.time}, signed by {cp.signer} "  # type: ignore[union-attr]
            f"({cp.path}); {since} record(s) since"
        )
    elif cp.status == "none" and not problems:
        print(f"UNCHECKED: {_no_checkpoint(cp)}")
    for p in problems:
        at = f" at seq {p['seq']}" if p.get("seq") else ""
        print(f"BROKEN{at}: {p['code']}: {p['message']}")
    if r.problem is not None:
        print(f"({r.count} record(s) before it verify)")


# --------------------------------------------------------------------------- checkpoints and keys


def cmd_checkpoint_export(args: argparse.Namespace) -> int:
    from adapters.storage.checkpoints import checkpoint_path, read_note

    store = _open(args)
    try:
        path = checkpoint_path(store.engine.url.render_as_string(hide_password=False))
    finally:
        store.close()
    note = read_note(path) if path else None
    if note is None:
        print(f"alluse: no checkpoint at {path or '(in-memory database)'}", file=sys.stderr)
        return EXIT_BAD
    if args.output:
        Path(args.output).write_text(note, "utf-8")
    else:
        sys.stdout.write(note)
    return EXIT_OK


def cmd_key_show(args: argparse.Namespace) -> int:
    from adapters.storage.checkpoints import KEY_NAME, key_path, load_key
    from engine.records.checkpoint import verifier_key

    path = key_path()
    key = load_key(path, create=args.create)
    if key is None:
        print(
            f"alluse: no checkpoint key at {path} (alluse audit key show --create)", file=sys.stderr
        )
        return EXIT_BAD
    print(f"key {path}")
    print(verifier_key(KEY_NAME, key.public_key()))
    return EXIT_OK


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from adapters.storage.checkpoints import key_path, rotate_key

    path = key_path()
    old, new = rotate_key(path)
    print(f"key {path}")
    if old:
        print(f"retired {old}")
    print(f"new     {new}")
    return EXIT_OK


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.output:
        print("alluse: Parquet is binary: give --output FILE", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.format == "parquet" and args.table == "records":
        print(
            "alluse: the records export is JSON lines or CSV (choose --table actions, trades or fills for Parquet)",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    store = _open(args)
    try:
        records = store.iter_records(_query(args, record_type=None, limit=None))
        if args.table == "records":
            with _output(args.output) as out:
                (_write_jsonl if args.format == "jsonl" else _write_csv)(records, out)
            return EXIT_OK
        from engine.records.export import TABLES, tables

        rows = tables(records)[args.table]
    finally:
        store.close()
    columns = TABLES[args.table]
    if args.format == "parquet":
        _write_parquet(rows, columns, args.output)
        return EXIT_OK
    with _output(args.output) as out:
        _write_rows(rows, columns, args.format, out)
    return EXIT_OK


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


def _write_rows(rows: list[dict], columns: tuple[str, ...], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(canonical_json({c: row.get(c) for c in columns}).decode("utf-8") + "\n")
        return
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])


def _write_parquet(rows: list[dict], columns: tuple[str, ...], path: str) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise OperationalError(
            f"Parquet needs pyarrow ({exc}): pip install 'alluse[parquet]'"
        ) from exc
    table = pa.Table.from_pylist(
        [{c: r.get(c) for c in columns} for r in rows], schema=_schema(pa, rows, columns)
    )
    pq.write_table(table, path)


def _schema(pa: ModuleType, rows: list[dict], columns: tuple[str, ...]) -> pyarrow.Schema:
    """Column types from the values (strings where a column is empty), so an empty table and
    a table of NULLs still have every column."""
    fields = []
    for c in columns:
        kinds = {type(r.get(c)) for r in rows if r.get(c) is not None}
        kind = pa.float64() if kinds & {float} else pa.int64() if kinds == {int} else pa.string()
        fields.append(pa.field(c, kind))
    return pa.schema(fields)


def _write_jsonl(records: Iterable[AuditRecord], out: TextIO) -> None:
    # One record per line, canonical JSON: the line minus "hash" hashes to "hash".
    for r in records:
        out.write(canonical_json(r.to_json_dict()).decode("utf-8") + "\n")


def _write_csv(records: Iterable[AuditRecord], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        doc = r.to_json_dict()
        doc["body"] = canonical_json(doc["body"]).decode("utf-8")  # exactly the stored text
        writer.writerow(["" if doc[c] is None else doc[c] for c in CSV_COLUMNS])


# --------------------------------------------------------------------------- replay


def replay_functions() -> tuple[Callable, Callable]:
    """(load a logged constitution text, the pipeline's ``redecide``), imported only when
    needed. A logged text is history: it is loaded even if its version was later released
    with other content (the digest comparison says whether it is the one that decided)."""
    try:
        load_text = import_module("constitution.load").load_constitution_text
        redecide = import_module("engine.cycle.pipeline").redecide
    except (ImportError, AttributeError) as exc:
        raise OperationalError(
            f"replay needs the evaluation pipeline, which is not available ({exc})"
        ) from exc

    def load(text: str, source: str) -> LoadedConstitution:
        return load_text(text, source, released_check=False)

    return load, redecide


def cmd_replay(args: argparse.Namespace) -> int:
    if bool(args.all) == bool(args.id):
        print("alluse: audit replay needs a decision ID or --all (not both)", file=sys.stderr)
        return EXIT_NOT_FOUND
    store = _open(args)
    try:
        if args.all:
            return _replay_all(store, args.json)
        records = [r for r in _find(store, args.id) if r.decision is not None]
        digest = records[0].constitution_digest if records else None
        text = store.constitution_text(digest) if digest else None
    finally:
        store.close()
    if not records:
        return _not_found(args.id)
    record = records[0]
    if text is None:
        raise OperationalError(
            f"the text of constitution {record.constitution_digest} is not in the log: cannot replay"
        )
    result = replay(record, text, *replay_functions())
    _print_replay(result, record, args.json)
    return EXIT_OK if result.identical else EXIT_DIFFERENT


class _Texts:
    """Constitution texts by digest, read once; each text loaded once (replay --all)."""

    def __init__(self, store: AuditStore):
        self.store = store
        self.texts: dict[str, str | None] = {}
        self.loaded: dict[str, LoadedConstitution] = {}
        self.load, self.redecide = replay_functions()

    def text(self, digest: str) -> str:
        if digest not in self.texts:
            self.texts[digest] = self.store.constitution_text(digest)
        found = self.texts[digest]
        if found is None:
            raise OperationalError(
                f"the text of constitution {digest} is not in the log: cannot replay"
            )
        return found

    def load_once(self, text: str, source: str) -> LoadedConstitution:
        if source not in self.loaded:
            self.loaded[source] = self.load(text, source)
        return self.loaded[source]


def _replay_all(store: AuditStore, as_json: bool) -> int:
    texts = _Texts(store)
    different: list[tuple[AuditRecord, ReplayResult]] = []
    count = 0
    for record in list(store.iter_records(AuditQuery(record_type="decision", limit=None))):
        text = texts.text(record.constitution_digest or "")
        result = replay(record, text, texts.load_once, texts.redecide)
        count += 1
        if not result.identical:
            different.append((record, result))
    if as_json:
        _print_json(
            {
                "replayed": count,
                "identical": count - len(different),
                "different": [{"seq": r.seq, **x.model_dump()} for r, x in different],
            }
        )
    else:
        for record, result in different:
            print(f"DIFFERENT: #{record.seq} {result.decision_id}: {result.differences[0]}")
        print(
            f"replayed {count} decision(s): {count - len(different)} identical, {len(different)} different"
        )
    return EXIT_OK if not different else EXIT_DIFFERENT


def _print_replay(result: ReplayResult, record: AuditRecord, as_json: bool) -> None:
    if as_json:
        _print_json({"seq": record.seq, **result.model_dump()})
        return
    head = f"#{record.seq} {result.decision_id} under constitution {record.constitution_version} {record.constitution_digest}"
    print(f"{'identical' if result.identical else 'DIFFERENT'}: {head}")
    if result.first_difference:
        print(f"  first difference: {result.first_difference}")
    for line in result.differences:
        print(f"  {line}")
    for note in result.notes:
        print(f"  note: {note}")
