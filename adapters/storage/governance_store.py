"""Constitution proposals and approvals on the database (§15: proposal -> backtest -> human
approval), append-only like the audit log.

``constitution_proposal``  one row per ``alluse propose``: the new version and digest, the
                           version it was tested against, the history used, the verdict of the
                           governance gate, the report file and its sha256, the whole record
                           as JSON;
``constitution_approval``  one row per ``alluse constitution approve``: version, digest, the
                           proposal it approves, whether it overrides a failed gate, who, why.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from adapters.storage.database import (
    create_db_engine,
    read_connection,
    resolve_url,
    sqlite_file_missing,
    write_transaction,
)
from adapters.storage.errors import StorageError
from adapters.storage.migrations import Migration, migrate, register

COMPONENT = "governance"
_TABLES = (
    "CREATE TABLE constitution_proposal (id TEXT PRIMARY KEY, version TEXT NOT NULL,"
    " digest TEXT NOT NULL, against_digest TEXT NOT NULL, verdict TEXT NOT NULL"
    " CHECK (verdict IN ('pass', 'fail')), report_digest TEXT NOT NULL, created_at TEXT NOT NULL,"
    " body TEXT NOT NULL)",
    "CREATE TABLE constitution_approval (seq INTEGER PRIMARY KEY, version TEXT NOT NULL,"
    " digest TEXT NOT NULL, proposal_id TEXT NOT NULL REFERENCES constitution_proposal (id),"
    " override INTEGER NOT NULL, approved_by TEXT NOT NULL, reason TEXT NOT NULL,"
    " approved_at TEXT NOT NULL)",
    "CREATE INDEX ix_constitution_approval_digest ON constitution_approval (digest)",
)
_APPEND_ONLY = ("constitution_proposal", "constitution_approval")


def _sqlite_guards() -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
        f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
        for t in _APPEND_ONLY
        for op in ("UPDATE", "DELETE")
    )


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION alluse_governance_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', ERRCODE = 'raise_exception';
END
$fn$
"""


def _pg_guards() -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
        "FOR EACH ROW EXECUTE FUNCTION alluse_governance_append_only()"
        for t in _APPEND_ONLY
    )


register(
    Migration(
        COMPONENT,
        1,
        "constitution proposals and approvals, append-only",
        (*_TABLES, *_sqlite_guards()),
        (
            *(t.replace("seq INTEGER PRIMARY KEY", "seq BIGSERIAL PRIMARY KEY") for t in _TABLES),
            _PG_FUNCTION,
            *_pg_guards(),
        ),
    )
)


class GovernanceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str | None, *, create: bool = True) -> GovernanceStore:
        resolved = resolve_url(url)
        missing = None if create else sqlite_file_missing(resolved)
        if missing is not None:
            raise StorageError(f"no database at {missing} (use --db URL or set ALLUSE_DB)")
        engine = create_db_engine(resolved)
        migrate(engine, [COMPONENT])
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def add_proposal(self, row: dict, body: str) -> None:
        """``row``: id, version, digest, against_digest, verdict, report_digest, created_at."""
        with write_transaction(self.engine, "constitution_proposal", "recording a proposal") as c:
            found = c.execute(
                text("SELECT 1 FROM constitution_proposal WHERE id = :id"), row
            ).first()
            if found is None:
                c.execute(
                    text(
                        "INSERT INTO constitution_proposal (id, version, digest, against_digest,"
                        " verdict, report_digest, created_at, body) VALUES (:id, :version,"
                        " :digest, :against_digest, :verdict, :report_digest, :created_at, :body)"
                    ),
                    {**row, "body": body},
                )

    def add_approval(self, row: dict) -> None:
        """``row``: version, digest, proposal_id, override, approved_by, reason, approved_at."""
        with write_transaction(self.engine, "constitution_approval", "recording an approval") as c:
            c.execute(
                text(
                    "INSERT INTO constitution_approval (version, digest, proposal_id, override,"
                    " approved_by, reason, approved_at) VALUES (:version, :digest, :proposal_id,"
                    " :override, :approved_by, :reason, :approved_at)"
                ),
                {**row, "override": int(row["override"])},
            )

    def proposals(self, version: str | None = None) -> list[str]:
        """Bodies (JSON) of the proposals, oldest first."""
        where = "WHERE version = :v " if version else ""
        with read_connection(self.engine, "reading proposals") as c:
            rows = c.execute(
                text(f"SELECT body FROM constitution_proposal {where}ORDER BY created_at, id"),
                {"v": version},
            ).all()
        return [r[0] for r in rows]

    def approvals(self, digest: str | None = None) -> list[dict]:
        where = "WHERE digest = :d " if digest else ""
        with read_connection(self.engine, "reading constitution approvals") as c:
            rows = c.execute(
                text(
                    "SELECT version, digest, proposal_id, override, approved_by, reason,"
                    f" approved_at FROM constitution_approval {where}ORDER BY seq"
                ),
                {"d": digest},
            ).all()
        keys = ("version", "digest", "proposal_id", "override", "approved_by", "reason")
        return [dict(zip((*keys, "approved_at"), r, strict=True)) for r in rows]

    def versions_run(self) -> list[tuple[str, str, str]]:
        """(version, digest, first stored) of every constitution a run recorded decisions under."""
        with read_connection(self.engine, "reading constitution versions") as c:
            has = c.execute(text("SELECT 1 FROM schema_version WHERE component = 'audit'")).first()
            if has is None:
                return []
            rows = c.execute(
                text("SELECT version, digest, stored_at FROM constitution_text ORDER BY stored_at")
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]
