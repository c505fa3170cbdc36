"""Signed checkpoints of the audit log, pure part: the note, its Ed25519 signature, the check.

A checkpoint says "this log had SIZE records ending in HEAD, and the ledger chain LEDGER_SIZE
links ending in LEDGER_HEAD, at TIME, under constitution DIGEST", signed with a key that never
enters the database or the log. It is kept outside the database, so a writer of the database
who cuts records off the end or re-chains history cannot make ``alluse audit verify`` pass.

The text is modelled on C2SP's signed note (https://c2sp.org/signed-note) carrying a
tlog-checkpoint-like body: an origin line, the size, the head hash, then extension lines; an
empty line; then one signature line per key, ``— NAME BASE64(KEY_ID || SIGNATURE)``, where
KEY_ID is the first four bytes of SHA-256(NAME || 0x0A || 0x01 || PUBLIC_KEY) and the signature
is Ed25519 over the body's bytes (final newline included). Verifier keys are written
``NAME+KEY_ID_HEX+BASE64(0x01 || PUBLIC_KEY)``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from hashlib import sha256
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict

from engine.records.audit import GENESIS_HASH

ORIGIN_PREFIX = "alluse.audit/"
_ED25519 = b"\x01"
_DASH = "\u2014"  # em dash, as signed notes write it


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or whose signature does not hold."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Checkpoint(_Frozen):
    origin: str  # which log: ORIGIN_PREFIX + the first 32 hex digits of record 1's hash
    size: int  # audit records
    head: str  # hash of record ``size`` (GENESIS_HASH when empty)
    ledger_size: int
    ledger_head: str
    time: str  # when, UTC (the writer's clock: simulated in a backtest)
    constitution: str  # digest of the constitution in force

    def body(self) -> str:
        return (
            f"{self.origin}\n{self.size}\n{self.head}\n"
            f"ledger {self.ledger_size} {self.ledger_head}\n"
            f"time {self.time}\nconstitution {self.constitution}\n"
        )


def origin_of(first_hash: str | None) -> str:
    """The log's name: fixed by its first record, so a log rewritten from record 1 is another log."""
    if first_hash is None:
        return ORIGIN_PREFIX + "empty"
    return ORIGIN_PREFIX + first_hash.removeprefix("sha256:")[:32]


# --------------------------------------------------------------------------- keys


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, key: Ed25519PublicKey) -> bytes:
    return sha256(name.encode() + b"\n" + _ED25519 + public_bytes(key)).digest()[:4]


def verifier_key(name: str, key: Ed25519PublicKey) -> str:
    """``NAME+KEYID+BASE64``: what a second party keeps to check checkpoints."""
    encoded = base64.b64encode(_ED25519 + public_bytes(key)).decode()
    return f"{name}+{key_id(name, key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    try:
        name, kid, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise CheckpointError(
            f"not a verifier key (NAME+KEYID+BASE64): {text.strip()[:60]!r}"
        ) from exc
    if raw[:1] != _ED25519 or len(raw) != 33:
        raise CheckpointError(f"verifier key {name!r} is not an Ed25519 key")
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, key).hex() != kid:
        raise CheckpointError(f"verifier key {name!r}: its key id does not match the key")
    return name, key


# --------------------------------------------------------------------------- notes


def sign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    body = checkpoint.body()
    signature = key_id(name, key.public_key()) + key.sign(body.encode("utf-8"))
    return f"{body}\n{_DASH} {name} {base64.b64encode(signature).decode()}\n"


def open_note(note: str, trusted: Iterable[tuple[str, Ed25519PublicKey]]) -> tuple[Checkpoint, str]:
    """The checkpoint of a signed note and the name of the trusted key that signed it.
    Raises ``CheckpointError`` if no trusted key's signature holds."""
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise CheckpointError("not a signed checkpoint: no empty line before the signatures")
    body += "\n"
    checkpoint = _parse_body(body)
    keys = {(name, key_id(name, key)): key for name, key in trusted}
    for line in signatures.splitlines():
        found = _signature_holds(line, body, keys)
        if found is not None:
            return checkpoint, found
    if not keys:
        raise CheckpointError("no verifier key to check the checkpoint's signature with")
    raise CheckpointError("the checkpoint is not signed by a trusted key (or its signature is bad)")


def _signature_holds(line: str, body: str, keys: dict) -> str | None:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != _DASH:
        return None
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except ValueError:
        return None
    key = keys.get((parts[1], raw[:4]))
    if key is None:
        return None
    try:
        key.verify(raw[4:], body.encode("utf-8"))
    except InvalidSignature:
        return None
    return parts[1]


def _parse_body(body: str) -> Checkpoint:
    lines = body.splitlines()
    try:
        origin, size, head, ledger, time, constitution = lines
        _, ledger_size, ledger_head = ledger.split(" ")
        return Checkpoint(
            origin=origin,
            size=int(size),
            head=head,
            ledger_size=int(ledger_size),
            ledger_head=ledger_head,
            time=time.removeprefix("time "),
            constitution=constitution.removeprefix("constitution "),
        )
    except ValueError as exc:
        raise CheckpointError(f"not an ALL-USE checkpoint body: {exc}") from exc


# --------------------------------------------------------------------------- the check


class CheckpointProblem(_Frozen):
    code: Literal["other-log", "truncated", "rechained", "ledger-truncated", "ledger-rechained"]
    message: str


def check(
    cp: Checkpoint,
    origin: str,
    size: int,
    hash_at: Callable[[int], str | None],
    ledger_size: int,
    ledger_hash_at: Callable[[int], str | None],
) -> CheckpointProblem | None:
    """Is the checkpointed log a prefix of the log as it is now? ``hash_at(seq)`` gives the
    hash of record ``seq`` now (``ledger_hash_at`` of ledger link ``seq``)."""
    if cp.origin != origin:
        return CheckpointProblem(
            code="other-log",
            message=f"the checkpoint is of log {cp.origin}, this log is {origin}: another log, or this one was rewritten from its first record",
        )
    if size < cp.size:
        return CheckpointProblem(
            code="truncated",
            message=f"the log has {size} record(s) but the checkpoint of {cp.time} saw {cp.size}: records were cut from the end",
        )
    if cp.size and hash_at(cp.size) != cp.head:
        return CheckpointProblem(
            code="rechained",
            message=f"record {cp.size} is not the one the checkpoint of {cp.time} saw ({cp.head}): history was rewritten and re-chained",
        )
    if ledger_size < cp.ledger_size:
        return CheckpointProblem(
            code="ledger-truncated",
            message=f"the ledger chain has {ledger_size} link(s) but the checkpoint saw {cp.ledger_size}: ledger operations were removed",
        )
    if cp.ledger_size and ledger_hash_at(cp.ledger_size) != cp.ledger_head:
        return CheckpointProblem(
            code="ledger-rechained",
            message=f"ledger link {cp.ledger_size} is not the one the checkpoint saw: the ledger was rewritten and re-chained",
        )
    return None


EMPTY_HEAD = GENESIS_HASH
