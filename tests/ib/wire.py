"""TWS API socket framing, spoken as bytes (no IB client library here).

A message is a 4-byte big-endian length followed by ASCII fields, each terminated by NUL.
The client opens with the raw prefix ``API\\0`` and a length-prefixed ``v<min>..<max>``.
"""

from __future__ import annotations

import math
import struct

API_PREFIX = b"API\x00"
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def encode(*fields: object) -> bytes:
    """One message: each field rendered as IB renders it, NUL-terminated, length-prefixed."""
    return frame(b"".join(_render(f).encode() + b"\x00" for f in fields))


def _render(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"  # Java's Double.toString, as TWS writes it
        return repr(value)
    return str(value)


class Deframer:
    """Accumulates bytes from the socket and yields complete messages as field lists."""

    def __init__(self) -> None:
        self._buf = b""
        self.handshake_done = False

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        if not self.handshake_done:
            if len(self._buf) < len(API_PREFIX):
                return out
            if not self._buf.startswith(API_PREFIX):
                raise ValueError(f"bad handshake prefix {self._buf[:4]!r}")
            self._buf = self._buf[len(API_PREFIX) :]
            self.handshake_done = True
        while len(self._buf) >= 4:
            size = struct.unpack(">I", self._buf[:4])[0]
            if len(self._buf) < 4 + size:
                break
            payload, self._buf = self._buf[4 : 4 + size], self._buf[4 + size :]
            fields = payload.decode().split("\x00")
            if fields and fields[-1] == "":
                fields.pop()
            out.append(fields)
        return out


def parse_version_range(fields: list[str]) -> tuple[int, int]:
    """``v157..178 +OPTS`` -> (157, 178)."""
    text = fields[0].split(" ")[0]
    low, high = text.lstrip("v").split("..")
    return int(low), int(high)
