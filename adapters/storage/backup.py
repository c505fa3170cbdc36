"""Backups that prove themselves, and a restore that refuses one that does not.

SQLite: the online backup API copies the live file page by page under SQLite's own locking
(a running daemon keeps writing; the copy is one consistent state), into ``DIR/NAME.partial``,
then the copy's hash chain is verified and only then renamed to ``NAME.db``; a manifest
``NAME.json`` beside it records the verified head (sequence and hash). ``alluse audit verify
--db NAME.db`` checks it again at any time.

PostgreSQL: ``pg_dump --format=custom`` from a snapshot the chain was verified in (an exported
REPEATABLE READ snapshot), so the dump holds exactly the verified log; the manifest says so.
Restoring a PostgreSQL dump is ``pg_restore``'s job (not done here: a restored chain can only
be verified after the restore, which ``alluse audit verify`` then does).

Restore (SQLite): the copy is verified first, read-only; a copy that does not verify is
refused and nothing is touched. The target is written through the same backup API, so a
reader of the target sees the old database or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.storage.database import create_db_engine, display_url, resolve_url
from adapters.storage.errors import StorageError
from adapters.storage.readers import ReadOnlyDatabase
from constitution.errors import InvalidInput, Problem, StopError
from engine.clock import Clock
from engine.records.chain import VerifyReport, verify_chain


class BackupRefused(StopError):
    """The copy does not verify: nothing was kept or restored (exit 1, as audit verify)."""


@dataclass(frozen=True)
class BackupResult:
    path: str
    manifest: str
    source: str
    records: int
    head_seq: int
    head_hash: str
    at: str


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise StorageError(f"cannot back up {display_url(url)}: name a SQLite file")
    return Path(database)


def verify_file(path: Path, clock: Clock) -> VerifyReport:
    """Verify the hash chain of a SQLite file, read-only."""
    db = ReadOnlyDatabase.open(str(path))
    try:
        return db.audit(clock).verify()
    finally:
        db.close()


def _refuse_unless_intact(report: VerifyReport, what: str) -> None:
    if not report.ok:
        p = report.problem
        detail = f"seq {p.seq}: {p.code}: {p.message}" if p else "not intact"
        raise BackupRefused(f"{what} does not verify ({detail})")
    if report.count == 0:
        raise BackupRefused(f"{what} holds no audit record: nothing to prove")


def _copy_sqlite(source: Path, target: Path, single_file: bool = True) -> None:
    """Copy with the online backup API. ``single_file``: the copy leaves WAL mode, so it is
    one self-contained file (a daemon opening it switches back to WAL itself)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        if single_file:
            dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _name(clock: Clock) -> str:
    return "alluse-" + clock.now().strftime("%Y%m%dT%H%M%SZ")


def backup(url: str | None, to_dir: Path, clock: Clock) -> BackupResult:
    resolved = resolve_url(url)
    to_dir.mkdir(parents=True, exist_ok=True)
    source = _sqlite_path(resolved)
    if source is None:
        return _backup_postgres(resolved, to_dir, clock)
    if not source.exists():
        raise StorageError(f"no ALL-USE database at {source}")
    name = _name(clock)
    partial, final = to_dir / f"{name}.partial", to_dir / f"{name}.db"
    _copy_sqlite(source, partial)
    try:
        report = verify_file(partial, clock)
        _refuse_unless_intact(report, f"the copy of {source}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(final)
    return _manifest(final, display_url(resolved), report, clock)


def _manifest(path: Path, source: str, report: VerifyReport, clock: Clock) -> BackupResult:
    result = BackupResult(
        path=str(path),
        manifest=str(path.with_suffix(".json")),
        source=source,
        records=report.count,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        at=clock.now().isoformat(),
    )
    path.with_suffix(".json").write_text(json.dumps(asdict(result), indent=2) + "\n", "utf-8")
    return result


def _pg_dump_args(url: str) -> list[str]:
    """pg_dump's connection arguments: the URL without the SQLAlchemy driver suffix, the
    password (it goes through PGPASSWORD, never the command line) and the search_path option,
    which becomes ``--schema`` (the log's schema only, not the whole database)."""
    parsed = make_url(url)
    options = str(parsed.query.get("options", ""))
    schema = options.split("search_path=", 1)[1].split()[0] if "search_path=" in options else None
    query = {k: v for k, v in parsed.query.items() if k != "options"}
    plain = parsed.set(drivername="postgresql", password=None, query=query)
    return [
        plain.render_as_string(hide_password=False),
        *([f"--schema={schema}"] if schema else []),
    ]


def _backup_postgres(url: str, to_dir: Path, clock: Clock) -> BackupResult:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise StorageError("pg_dump is not installed: it makes PostgreSQL backups")
    name = _name(clock)
    partial, final = to_dir / f"{name}.partial", to_dir / f"{name}.dump"
    engine = create_db_engine(url)
    env = {**os.environ}
    password = make_url(url).password
    if password:
        env["PGPASSWORD"] = str(password)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            rows = conn.exec_driver_sql(
                "SELECT seq, prev_hash, record_type, record_version, recorded_at, mode, decision_id,"
                " as_of, constitution_version, constitution_digest, search, body, hash"
                " FROM audit_record ORDER BY seq"
            )
            report = verify_chain(rows)
            _refuse_unless_intact(report, display_url(url))
            done = subprocess.run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    *_pg_dump_args(url),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
    finally:
        engine.dispose()
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise StorageError(
            f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    partial.replace(final)
    return _manifest(final, display_url(url), report, clock)


def restore(copy: Path, url: str | None, clock: Clock, force: bool = False) -> VerifyReport:
    """Put a verified SQLite copy in place of the database at ``url`` (SQLite)."""
    resolved = resolve_url(url)
    target = _sqlite_path(resolved)
    if target is None:
        raise StorageError(
            "alluse restore puts back SQLite copies; restore a PostgreSQL dump with pg_restore"
        )
    if not copy.exists():
        raise StorageError(f"no copy at {copy}")
    report = verify_file(copy, clock)
    _refuse_unless_intact(report, f"the copy {copy}")
    if target.exists() and not force:
        message = f"{target} exists: pass --force to replace it with the copy"
        raise InvalidInput([Problem("--db", 1, 1, "exists", "", message)], what="arguments")
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_sqlite(copy, target, single_file=False)  # the target keeps its journal mode
    return verify_file(target, clock)
