"""A backtest cycle's writes straight on the SQLite driver (D180).

A cycle's ledger flush runs ~30 small statements per decided cycle; SQLAlchemy's per-statement
machinery (compile-cache lookups, execution contexts, result objects) cost more than SQLite's
work. Inside the flush's own transaction (``BEGIN IMMEDIATE`` already issued on the same
driver connection) the writes go to ``sqlite3`` directly: the same SQL text, the same named
parameters, the same order, so the same rows. PostgreSQL keeps the SQLAlchemy connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from adapters.storage.errors import StorageError, StorageUnavailable


class _Rows:
    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    def first(self) -> tuple | None:
        return self._cursor.fetchone()


class RawSqliteWriter:
    """The part of ``Connection`` the ledger's writers use: ``execute(text, params)``, where a
    list of parameter dicts is an executemany, and ``.first()`` on the result."""

    def __init__(self, conn: Connection, where: str):
        db = conn.connection.driver_connection
        assert isinstance(db, sqlite3.Connection), "a RawSqliteWriter needs a SQLite connection"
        self._db = db
        self._where = where

    def execute(
        self, clause: TextClause, params: Mapping[str, Any] | Sequence[Mapping] | None = None
    ) -> _Rows | None:
        sql = clause.text  # sqlite3 binds ``:name`` itself
        try:
            if isinstance(params, list):
                if params:
                    self._db.executemany(sql, params)
                return None
            return _Rows(self._db.execute(sql, params or {}))
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(f"{self._where}: database error ({exc})") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"{self._where}: database error ({exc})") from exc
