"""One writer per database: the single-writer lease (issue 13).

Every command that writes a database (``alluse run``, ``paper step``, ``paper resume``,
``backtest``) takes the lease before it opens anything; a second writer exits 3 at once with
"database held by pid N since T" and writes nothing. Readers (``audit``, ``paper status``,
the dashboard) never take it: SQLite's WAL and PostgreSQL's snapshots let them read while
the writer writes.

* **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``) on a key made from the
  database and schema, held by one connection kept open for the whole run. The server drops
  it when the session ends, so a crashed holder never keeps it. The holder names itself in
  ``application_name`` (``alluse pid=N host=H``), which a refused writer reads back, with the
  session's start, from ``pg_stat_activity``.
* **SQLite**: an exclusive ``flock`` on the file ``DB-writer`` beside the database, held for
  the run, holding the holder's pid, host and start. The kernel drops the lock when the
  process dies (``kill -9`` included), so a crashed holder cannot keep it; a lease file still
  naming a holder when the lock is free was left by a crash: the new writer takes it over
  and says so (``WriterLease.taken_over``, recorded in the audit log by the caller). A clean
  release empties the file. (``flock`` needs a local filesystem; use PostgreSQL for a
  database shared between machines.) An in-memory database needs no lease.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

from adapters.storage.database import create_db_engine, display_url
from adapters.storage.errors import translated
from constitution.errors import OperationalError
from engine.clock import Clock, WallClock

_PG_CLASS = 0x414C55  # "ALU": the advisory-lock namespace of ALL-USE writers
_APP = "alluse pid="


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int | None  # None: a PostgreSQL session that is not an ALL-USE writer's
    host: str
    since: str  # ISO time the holder took the lease

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "a session"
        return f"{who} since {self.since} (host {self.host})"


class DatabaseHeld(OperationalError):
    """Another process holds the database's writer lease (exit 3; nothing was written)."""

    def __init__(self, url: str, holder: Holder | None):
        self.holder = holder
        who = holder.describe() if holder else "another writer (it has not said who yet)"
        super().__init__(
            f"database held by {who}: {display_url(url)} has one writer at a time; "
            "wait for it to finish or stop it (readers such as `alluse audit` need no lease)"
        )


class WriterLease:
    """The lease, held until ``release`` (or the end of a ``with`` block)."""

    def __init__(
        self,
        url: str,
        holder: Holder,
        taken_over: Holder | None = None,
        release: Callable[[], None] | None = None,
    ):
        self.url = url
        self.holder = holder
        self.taken_over = taken_over  # a crashed holder's lease this one replaced (SQLite)
        self._release = release

    def release(self) -> None:
        """Give the lease up (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> WriterLease:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def takeover_note(self) -> dict[str, object] | None:
        """What the audit log records about a stale lease taken over (None: there was none)."""
        if self.taken_over is None:
            return None
        return {
            "event": "writer_lease_taken_over",
            "previous": asdict(self.taken_over),
            "holder": asdict(self.holder),
            "why": "the previous holder ended without releasing the lease (a crash)",
        }


def acquire(url: str, clock: Clock | None = None) -> WriterLease:
    """Take the writer lease of the database at ``url`` or raise ``DatabaseHeld``."""
    me = Holder(os.getpid(), socket.gethostname(), (clock or WallClock()).now().isoformat())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed.database or "")
        return WriterLease(url, me) if path is None else _sqlite_lease(url, path, me)
    return _pg_lease(url, create_db_engine(url), me)


# --------------------------------------------------------------------------- SQLite


def _sqlite_path(database: str) -> Path | None:
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?")[0]
    return Path(database).expanduser().resolve()


def _sqlite_lease(url: str, db: Path, me: Holder) -> WriterLease:
    path = db.with_name(db.name + "-writer")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise DatabaseHeld(url, holder) from None
    previous = _read_holder(fd)
    _write_holder(fd, me)
    return WriterLease(url, me, taken_over=previous, release=lambda: _release_file(fd))


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        data = json.loads(raw)
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return None  # empty (released cleanly) or not ours


def _write_holder(fd: int, me: Holder) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(asdict(me)).encode())
    os.fsync(fd)


def _release_file(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # released cleanly: the next holder takes over nothing
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_lease(url: str, engine: Engine, me: Holder) -> WriterLease:
    with translated("taking the writer lease"):
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = _pg_key(conn)
            name = f"{_APP}{me.pid} host={me.host}"[:63]
            conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": _PG_CLASS, "k": key}
            )
            if not got.scalar_one():
                holder = _pg_holder(conn, key)
                raise DatabaseHeld(url, holder)
        except BaseException:
            conn.close()
            engine.dispose()
            raise
    return WriterLease(url, me, release=lambda: _pg_release(engine, conn, key))


def _pg_key(conn: Connection) -> int:
    """The lock key of this database and schema: tests (and tenants) that share a server in
    separate schemas never hold each other's lease."""
    db, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    return zlib.crc32(f"{db}/{schema}".encode()) & 0x7FFFFFFF


def _pg_holder(conn: Connection, key: int) -> Holder | None:
    row = conn.execute(
        text(
            "SELECT a.application_name, a.backend_start, a.pid FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = CAST(:c AS oid)"
            " AND l.objid = CAST(:k AS oid) AND l.objsubid = 2"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"c": _PG_CLASS, "k": key},
    ).first()
    if row is None:
        return None
    app, started, backend = row
    if not str(app).startswith(_APP):
        return Holder(None, f"PostgreSQL backend {backend}", started.isoformat())
    pid, _, host = str(app)[len(_APP) :].partition(" host=")
    return Holder(int(pid), host, started.isoformat())


def _pg_release(engine: Engine, conn: Connection, key: int) -> None:
    try:
        with translated("releasing the writer lease"):
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": _PG_CLASS, "k": key})
    finally:
        conn.close()
        engine.dispose()
