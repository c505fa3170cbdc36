"""Database failures as the project's errors: operators see a sentence, not a traceback.

``RetryError`` when waiting may help (locked, connection refused); ``OperationalError`` when an
operator must act (disk full, read-only, schema newer than this program).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from constitution.errors import OperationalError, RetryError


class StorageError(OperationalError):
    """The database cannot do what was asked until an operator fixes something."""


class StorageFull(StorageError):
    pass


class StorageReadOnly(StorageError):
    pass


class AppendOnlyViolation(StorageError):
    """Something tried to UPDATE or DELETE an append-only table (refused by a trigger)."""


class SchemaTooNew(StorageError):
    pass


class StorageUnavailable(RetryError):
    """Busy, locked or unreachable: the same operation may succeed later."""


_RULES: tuple[tuple[tuple[str, ...], type[Exception], str], ...] = (
    (
        ("database or disk is full", "disk full", "no space left", "could not extend file"),
        StorageFull,
        "the database is full (disk space or size limit); nothing was written",
    ),
    (
        ("readonly database", "read-only", "read only"),
        StorageReadOnly,
        "the database is read-only; nothing was written",
    ),
    (("append-only",), AppendOnlyViolation, "refused: the table is append-only"),
    (
        ("database is locked", "database is busy", "could not obtain lock", "deadlock"),
        StorageUnavailable,
        "the database is busy; try again",
    ),
    (
        (
            "connection refused",
            "could not connect",
            "connection failed",
            "server closed",
            "timeout",
        ),
        StorageUnavailable,
        "cannot reach the database; try again",
    ),
    (("unable to open database",), StorageError, "cannot open the database file"),
)


def translate(exc: sa_exc.DBAPIError | sa_exc.SQLAlchemyError, where: str) -> Exception:
    """The project error for a driver error; the driver's words stay in the message."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    lowered = text.lower()
    for needles, cls, summary in _RULES:
        if any(n in lowered for n in needles):
            return cls(f"{where}: {summary} ({text})")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return StorageUnavailable(f"{where}: database error ({text})")
    return StorageError(f"{where}: database error ({text})")


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Run a block; database errors leave it as project errors (the cause is chained)."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc, where) from exc
