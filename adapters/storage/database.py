"""Which database, how to connect, and how writers are serialised.

URL resolution: ``--db URL`` > env ``ALLUSE_DB`` > ``$XDG_DATA_HOME/alluse/alluse.db``
(``~/.local/share/alluse/alluse.db`` when XDG_DATA_HOME is unset). A bare path means a SQLite
file. PostgreSQL: ``postgresql+psycopg://user@host:5432/db`` (add
``?options=-csearch_path%3Dschema`` to use a schema).

SQLite runs in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns (the
write-before-act promise), and readers never block the writer. A backtest's database is a
reproducible artefact, not a record of money: ``reproducible`` marks it so its connections use
``synchronous=OFF`` (D218): SQLite never waits for the disk, at a commit or at a checkpoint of
its write-ahead log. A crash of the process loses nothing committed; only a crash of the
machine can leave the file damaged, and then ``audit verify`` says so and the backtest is
simply run again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.sql.elements import TextClause
from sqlmodel import create_engine

from adapters.storage.errors import StorageError, translated

ENV_VAR = "ALLUSE_DB"
_BEGIN_OPTION = "alluse_begin"
_SQLITE_PRAGMAS: Mapping[str, str | int] = {
    "busy_timeout": 30000,
    "synchronous": "FULL",
    "foreign_keys": "ON",
}
_REPRODUCIBLE: set[str] = set()  # SQLite files holding backtests (see the module docstring)


@lru_cache(maxsize=256)
def statement(sql: str) -> TextClause:
    """``text(sql)``, made once per distinct statement. The ledger's writers run the same few
    statements every cycle, and ``text`` parses the bind parameters out of the string each
    time (~14 us; ~4,000 statements a quarter of a backtest). A ``TextClause`` is never
    changed in place (``bindparams`` returns a new one), so one can serve every caller."""
    return text(sql)


def reproducible(url: str) -> None:
    """Mark the SQLite database at ``url`` as a backtest's: engines created for it from now on
    commit without waiting for the disk. No effect on PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        _REPRODUCIBLE.add(parsed.database)


def is_reproducible(url: str | URL) -> bool:
    """Whether ``url`` was marked as a backtest's database (``reproducible``)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in _REPRODUCIBLE


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "alluse" / "alluse.db"


def resolve_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    chosen = explicit or env.get(ENV_VAR) or str(default_db_path(env))
    if "://" in chosen:
        return chosen
    return f"sqlite:///{Path(chosen).expanduser().resolve()}"


def sqlite_file_missing(url: str) -> Path | None:
    """The path of a SQLite file ``url`` names that does not exist (else None): readers
    refuse to create an empty log where the user meant an existing one."""
    parsed = make_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return None
    path = Path(database)
    return None if path.exists() else path


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str, *, sqlite_pragmas: Mapping[str, str | int] | None = None) -> Engine:
    """An engine for ``url``. ``sqlite_pragmas`` are applied on every new SQLite connection
    after the defaults (e.g. ``cache_size``; tests use ``max_page_count`` to fill the disk)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        relaxed = {"synchronous": "OFF"} if parsed.database in _REPRODUCIBLE else {}
        return _sqlite_engine(url, {**_SQLITE_PRAGMAS, **relaxed, **(sqlite_pragmas or {})})
    return _server_engine(url)


_DRIVER_EXTRA = {"postgresql": "postgres"}


def _server_engine(url: str) -> Engine:
    """PostgreSQL (or another server SQLAlchemy knows) by URL; a URL we cannot use is an
    operator's mistake with a sentence, never a traceback."""
    backend = make_url(url).get_backend_name()
    if backend not in _DRIVER_EXTRA:
        raise StorageError(
            f"unsupported database URL {display_url(url)}: use sqlite:///FILE or postgresql+psycopg://..."
        )
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ModuleNotFoundError, sa_exc.NoSuchModuleError) as exc:
        raise StorageError(
            f"the driver for {backend} is not installed ({exc}); install it with "
            f"pip install 'alluse[{_DRIVER_EXTRA[backend]}]'"
        ) from exc


def _sqlite_engine(url: str, pragmas: Mapping[str, str | int]) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    read_only = "mode=ro" in url
    if database and database != ":memory:" and not database.startswith("file:") and not read_only:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:  # the sqlite3 connection
        # We issue BEGIN ourselves (below), so the driver must not open transactions for us.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        for name, value in pragmas.items():
            cursor.execute(f"PRAGMA {name}={value}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN, so two appenders never both read the same
        # chain head; readers use a plain (deferred) BEGIN and never wait.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_OPTION, '')}".strip())

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, lock_table: str | None, where: str) -> Iterator[Connection]:
    """A transaction that excludes other writers of ``lock_table`` until commit.

    SQLite: ``BEGIN IMMEDIATE`` (one writer per database). PostgreSQL: ``LOCK TABLE ... IN
    SHARE ROW EXCLUSIVE MODE`` (conflicts with itself and with writes, never with reads).
    Commits on success; anything raised rolls back, so a failure writes nothing."""
    with translated(where):
        options = {_BEGIN_OPTION: "IMMEDIATE"} if is_sqlite(engine) else {}
        with engine.connect().execution_options(**options) as conn, conn.begin():
            if lock_table and not is_sqlite(engine):
                conn.exec_driver_sql(f"LOCK TABLE {lock_table} IN SHARE ROW EXCLUSIVE MODE")
            yield conn


@contextmanager
def read_connection(engine: Engine, where: str) -> Iterator[Connection]:
    """A read-only snapshot transaction (rolled back at the end)."""
    with translated(where), engine.connect() as conn, conn.begin() as txn:
        yield conn
        txn.rollback()
