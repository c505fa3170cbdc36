"""The decision log's tables, as versioned migrations of component ``audit``.

``audit_record``      one row per record (decision or execution link); every column but
                      ``hash`` is hashed (engine/records/audit.py); ``prev_hash`` is UNIQUE so the
                      chain can never fork, even if a writer bypassed the lock.
``constitution_text`` the source text of each constitution, once per digest (replay).

Both are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

from adapters.storage.migrations import Migration, register

COMPONENT = "audit"
APPEND_ONLY_TABLES = ("audit_record", "constitution_text")

_COLUMNS = """
    prev_hash TEXT NOT NULL UNIQUE,
    record_type TEXT NOT NULL CHECK (record_type IN ('decision', 'link')),
    record_version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('paper', 'live', 'backtest', 'dry-run')),
    decision_id TEXT NOT NULL,
    as_of TEXT,
    constitution_version TEXT,
    constitution_digest TEXT,
    search TEXT NOT NULL,
    body TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
"""

_CONSTITUTION = (
    "CREATE TABLE constitution_text (digest TEXT PRIMARY KEY, version TEXT NOT NULL,"
    " text TEXT NOT NULL, stored_at TEXT NOT NULL)"
)

_INDEXES = (
    "CREATE INDEX ix_audit_record_decision ON audit_record (decision_id, record_type)",
    "CREATE INDEX ix_audit_record_as_of ON audit_record (as_of)",
)


def append_only_triggers(dialect: str, table: str) -> tuple[str, ...]:
    """Triggers refusing UPDATE/DELETE (and TRUNCATE on PostgreSQL) on ``table``; on
    PostgreSQL they need ``PG_APPEND_ONLY_FUNCTION`` first."""
    return _sqlite_append_only(table) if dialect == "sqlite" else _pg_append_only(table)


def _sqlite_append_only(table: str) -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for op in ("UPDATE", "DELETE")
    )


# No '%' anywhere: some drivers treat it as a parameter marker even in DDL.
PG_APPEND_ONLY_FUNCTION = _PG_FUNCTION = """
CREATE OR REPLACE FUNCTION alluse_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = 'raise_exception';
END
$fn$
"""


def _pg_append_only(table: str) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION alluse_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION alluse_append_only()",
    )


V1 = Migration(
    component=COMPONENT,
    version=1,
    description="audit_record and constitution_text, append-only",
    sqlite=(
        f"CREATE TABLE audit_record (seq INTEGER PRIMARY KEY, {_COLUMNS})",
        _CONSTITUTION,
        *_INDEXES,
        *(s for t in APPEND_ONLY_TABLES for s in _sqlite_append_only(t)),
    ),
    postgresql=(
        f"CREATE TABLE audit_record (seq BIGINT PRIMARY KEY, {_COLUMNS})",
        _CONSTITUTION,
        *_INDEXES,
        _PG_FUNCTION,
        *(s for t in APPEND_ONLY_TABLES for s in _pg_append_only(t)),
    ),
)

register(V1)
