"""Versioned schema migrations, registered per component (audit now; ledger and others later).

Each component has migrations numbered 1, 2, 3, ... with explicit DDL per dialect. Applied
versions are rows of ``schema_version`` (component, version, description, applied_at).
``migrate`` applies what is pending in ONE serialised write transaction, so two processes
starting at once cannot both migrate, and a failed migration leaves nothing half-applied.
A database migrated by a newer program (a version this one does not know) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from adapters.storage.database import read_connection, write_transaction
from adapters.storage.errors import SchemaTooNew

VERSION_TABLE = "schema_version"
_CREATE_VERSION_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
    " component VARCHAR(64) NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL,"
    " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (component, version))"
)


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        if dialect == "sqlite":
            return self.sqlite
        if dialect == "postgresql":
            return self.postgresql
        raise ValueError(f"no migration for database dialect {dialect!r}")


_REGISTRY: dict[str, tuple[Migration, ...]] = {}


def register(*migrations: Migration) -> None:
    """Register a component's migrations (idempotent for the same list; versions 1..n)."""
    for m in migrations:
        known = _REGISTRY.get(m.component, ())
        if any(k.version == m.version for k in known):
            if m not in known:
                raise ValueError(
                    f"{m.component} migration {m.version} registered twice, differently"
                )
            continue
        if m.version != len(known) + 1:
            raise ValueError(
                f"{m.component} migration {m.version} follows {len(known)}: versions must be consecutive"
            )
        _REGISTRY[m.component] = (*known, m)


def registered(component: str) -> tuple[Migration, ...]:
    return _REGISTRY.get(component, ())


def current_versions(conn: Connection) -> dict[str, int]:
    if not inspect(conn).has_table(VERSION_TABLE):
        return {}
    rows = conn.execute(
        text(f"SELECT component, MAX(version) FROM {VERSION_TABLE} GROUP BY component")
    )
    return {component: int(version) for component, version in rows}


def _pending(applied: dict[str, int], components: Iterable[str]) -> list[Migration]:
    out: list[Migration] = []
    for component in components:
        known = registered(component)
        have = applied.get(component, 0)
        if have > len(known):
            raise SchemaTooNew(
                f"the database has {component} schema version {have}; this program knows up to "
                f"{len(known)}: upgrade ALL-USE before using this database"
            )
        out.extend(known[have:])
    return out


# pg_advisory_xact_lock key of schema migrations ("alluse" in ASCII: no other lock of ours uses it)
_MIGRATION_LOCK = 0x616C6C757365


def migrate(engine: Engine, components: Iterable[str]) -> list[Migration]:
    """Bring ``components`` up to date; returns the migrations applied (none if current).
    A database that is already current is only read, so read-only databases open fine."""
    components = tuple(components)
    with read_connection(engine, "reading the schema version") as conn:
        if not _pending(current_versions(conn), components):
            return []
    with write_transaction(engine, None, "migrating the database schema") as conn:
        if engine.dialect.name == "postgresql":
            # Two processes creating the version table at once collide in PostgreSQL's catalog
            # (CREATE TABLE IF NOT EXISTS is not atomic: a duplicate pg_type row); one
            # transaction-scoped advisory lock makes the second wait for the first's migration.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        conn.exec_driver_sql(_CREATE_VERSION_TABLE)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"LOCK TABLE {VERSION_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        todo = _pending(current_versions(conn), components)  # again, now that we hold the lock
        for m in todo:
            for statement in m.statements(engine.dialect.name):
                conn.exec_driver_sql(statement)
            conn.execute(
                text(
                    f"INSERT INTO {VERSION_TABLE} (component, version, description) VALUES (:c, :v, :d)"
                ),
                {"c": m.component, "v": m.version, "d": m.description},
            )
    return todo
