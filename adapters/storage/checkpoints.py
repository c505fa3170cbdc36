"""Signed checkpoints on disk: where they are kept, the signing key, writing and reading them.

Kept OUTSIDE the database (docs/decision-log.md, "Signed checkpoints"):

* a SQLite database ``X.db`` keeps its latest checkpoint beside it, in ``X.db.checkpoint``;
* with ``ALLUSE_CHECKPOINT_DIR`` set, or for a server database (PostgreSQL), the file is
  ``DIR/NAME.checkpoint`` (default DIR: ``$XDG_DATA_HOME/alluse/checkpoints``), NAME made of
  host, port, database and options, never the password.

The signing key is an Ed25519 private key in PEM (PKCS#8) at ``ALLUSE_CHECKPOINT_KEY`` or
``$XDG_CONFIG_HOME/alluse/checkpoint.key`` (``~/.config/alluse/checkpoint.key``), created with
mode 0600 on first use. It never enters the database or the log. Rotation keeps the retired
public keys in ``checkpoint.key.retired`` (verifier keys, one a line), so checkpoints signed
before the rotation still verify.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from adapters.storage.database import is_reproducible, read_connection
from adapters.storage.errors import StorageError
from engine.records.audit import GENESIS_HASH, utc_stamp
from engine.records.checkpoint import (
    Checkpoint,
    CheckpointError,
    origin_of,
    parse_verifier_key,
    sign,
    verifier_key,
)

ENV_DIR = "ALLUSE_CHECKPOINT_DIR"
ENV_KEY = "ALLUSE_CHECKPOINT_KEY"
KEY_NAME = "alluse-checkpoint"


# --------------------------------------------------------------------------- where


def checkpoint_path(url: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Where the checkpoint of the database at ``url`` is kept (None: an in-memory database)."""
    env = os.environ if env is None else env
    parsed = make_url(url)
    configured = env.get(ENV_DIR)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        path = Path(database)
        if configured:
            return Path(configured) / f"{path.name}.checkpoint"
        return path.with_name(path.name + ".checkpoint")
    base = Path(configured) if configured else _data_home(env) / "alluse" / "checkpoints"
    return base / f"{_server_name(url)}.checkpoint"


def _data_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _server_name(url: str) -> str:
    u = make_url(url)
    parts = [u.get_backend_name(), u.host or "local", str(u.port or ""), u.database or ""]
    parts += [f"{k}={v}" for k, v in sorted(u.query.items())]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "-".join(p for p in parts if p))


# --------------------------------------------------------------------------- the key


def key_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_KEY):
        return Path(env[ENV_KEY])
    config = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "alluse" / "checkpoint.key"


def _retired_path(path: Path) -> Path:
    return path.with_name(path.name + ".retired")


def load_key(path: Path, create: bool = True) -> Ed25519PrivateKey | None:
    """The signing key at ``path``; created (0600) when missing and ``create``."""
    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise StorageError(f"the checkpoint key {path} cannot be read: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise StorageError(f"the checkpoint key {path} is not an Ed25519 key")
        return key
    if not create:
        return None
    try:
        return _create_key(path)
    except FileExistsError:  # another process created it a moment ago: use that one
        return load_key(path, create=False)
    except OSError as exc:
        raise StorageError(f"cannot create the checkpoint key {path}: {exc}") from exc


def _create_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key


def rotate_key(path: Path) -> tuple[str | None, str]:
    """A new signing key; the old public key joins the retired list (old checkpoints still
    verify). Returns (old verifier key or None, new verifier key)."""
    old = load_key(path, create=False)
    old_vkey = None
    if old is not None:
        old_vkey = verifier_key(KEY_NAME, old.public_key())
        with _retired_path(path).open("a", encoding="utf-8") as f:
            f.write(old_vkey + "\n")
        path.unlink()
    return old_vkey, verifier_key(KEY_NAME, _create_key(path).public_key())


def trusted_keys(path: Path, extra: Iterable[str] = ()) -> list[tuple[str, Ed25519PublicKey]]:
    """The keys a checkpoint may be signed by: this machine's key, its retired keys, and the
    verifier keys given (``--key``: a second party's copy)."""
    keys = [parse_verifier_key(v) for v in extra if v.strip()]
    own = load_key(path, create=False)
    if own is not None:
        keys.append((KEY_NAME, own.public_key()))
    retired = _retired_path(path)
    if retired.exists():
        keys += [
            parse_verifier_key(v) for v in retired.read_text("utf-8").splitlines() if v.strip()
        ]
    return keys


# --------------------------------------------------------------------------- heads


@dataclass(frozen=True)
class Heads:
    origin: str
    size: int
    head: str
    ledger_size: int
    ledger_head: str


def read_heads(conn: Connection) -> Heads:
    """The audit log's and the ledger chain's heads, in one snapshot."""
    tables = set(inspect(conn).get_table_names())
    first = conn.execute(text("SELECT hash FROM audit_record WHERE seq = 1")).scalar()
    head = conn.execute(
        text("SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1")
    ).first()
    ledger = None
    if "ledger_link" in tables:
        ledger = conn.execute(
            text("SELECT seq, hash FROM ledger_link ORDER BY seq DESC LIMIT 1")
        ).first()
    return Heads(
        origin=origin_of(first),
        size=head[0] if head else 0,
        head=head[1] if head else GENESIS_HASH,
        ledger_size=ledger[0] if ledger else 0,
        ledger_head=ledger[1] if ledger else GENESIS_HASH,
    )


def hash_at(conn: Connection, table: str, seq: int) -> str | None:
    if table not in ("audit_record", "ledger_link"):
        raise ValueError(table)
    if table not in inspect(conn).get_table_names():
        return None
    return conn.execute(text(f"SELECT hash FROM {table} WHERE seq = :s"), {"s": seq}).scalar()


# --------------------------------------------------------------------------- writing


class Checkpointer:
    """Writes the signed checkpoint of one database after each cycle (and at shutdown).

    A checkpoint is written only when a head moved since the last one this process wrote, so
    an idle tick costs two small reads. The file is replaced atomically (write, fsync, rename).
    A backtest's database (``database.reproducible``) is a reproducible artefact: it skips
    the fsync like its commits do, and is checkpointed once per simulated week and at the end
    (``final``), not after every decided cycle (docs/decisions.md D72)."""

    def __init__(self, engine: Engine, path: Path, key: Path):
        self.engine = engine
        self.path = path
        self.key_file = key
        self._key: Ed25519PrivateKey | None = None
        self._last: Heads | None = None
        self._last_week: tuple[int, int] | None = None  # ISO (year, week) of the last one
        self.durable = not is_reproducible(engine.url)

    def due(self, at: datetime, final: bool = False) -> bool:
        """Whether ``write`` at ``at`` would read the heads: always, except a backtest's
        cycles after the first of a simulated week (one checkpoint per week, and the final)."""
        return self.durable or final or at.isocalendar()[:2] != self._last_week

    def write(
        self, at: datetime, constitution_digest: str, final: bool = False
    ) -> Checkpoint | None:
        if not self.due(at, final):
            return None
        week = at.isocalendar()[:2]
        with read_connection(self.engine, "reading the log's heads for a checkpoint") as conn:
            heads = read_heads(conn)
        if heads == self._last:
            return None
        cp = Checkpoint(
            origin=heads.origin,
            size=heads.size,
            head=heads.head,
            ledger_size=heads.ledger_size,
            ledger_head=heads.ledger_head,
            time=utc_stamp(at),
            constitution=constitution_digest,
        )
        if self._key is None:
            self._key = load_key(self.key_file)
        if self._key is None:  # load_key creates a missing key: this cannot happen
            raise StorageError(f"no checkpoint key at {self.key_file}")
        self._replace(sign(cp, KEY_NAME, self._key))
        self._last, self._last_week = heads, week
        return cp

    def _replace(self, note: str) -> None:
        try:
            self._write_file(note)
        except OSError as exc:
            raise StorageError(f"cannot write the checkpoint {self.path}: {exc}") from exc

    def _write_file(self, note: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one temporary file per process and thread: two writers of one database never mix
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(note)
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if self.durable:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def checkpointer_for(engine: Engine, env: Mapping[str, str] | None = None) -> Checkpointer | None:
    path = checkpoint_path(engine.url.render_as_string(hide_password=False), env)
    return None if path is None else Checkpointer(engine, path, key_path(env))


def read_note(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from exc
