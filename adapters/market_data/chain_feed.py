"""A backtest's option chains, ATR bases and volatility scales, made ahead in a second process
(the chain feed, D212).

A synthetic chain depends on the bars alone (the quote, VIX, the pricing instant, the
volatility scale), never on the accounts, and so do an ATR reading's basis and a volatility
scale; a replay's can be made before they are needed. In the README's two-year backtest they
were ~25 % of the run, all on one core of a machine with two. The feed is a child process
(``python -m adapters.market_data.chain_feed``) that builds the same market (``replay_market``)
and walks the sessions ahead of the run, making what each session's snapshots make at its open,
ATR refresh and close (``BarMarketData.made_ahead``), and writes it to its stdout, a pipe of
``PIPE_BYTES`` (~14 chains: the child works ahead until it is full); the run's market reads what it needs from it when its own cache misses
(``BarMarketData.feed_chains``). No reader thread: one measured cost the run a third of what
the feed saved, in handing the interpreter's lock back and forth.

Nothing depends on it: a value is taken only under the exact key the run caches it under
(``feed_key``), made by the same code from the same bars - so bit for bit what the run would
make - and anything the feed has not sent (another instant, a feed that died, was slow or
never started) is made in the run. A run's records are the same with or without it.

Wire format, per message: a 4-byte big-endian length, a JSON header (an ATR basis or a scale
in it, exact floats), then for a chain its columns' bytes (``COLUMNS``). No pickle: the child
is a fresh interpreter given its work as JSON lines on stdin: the market's (sent when the
run builds its own, so the child's start-up and the run's overlap), where to walk (sent at
the run's first chain, when its ATR settings are known), then, until the child's first message,
the day the run is on (once a day): the run does not wait for a child still starting, it makes
those chains itself, and the child starts its walk at the run's day, not behind it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import weakref
from datetime import date, datetime, time, timedelta
from typing import IO, Any

import numpy as np

from adapters.children import die_with_parent, protocol_stdout, start_child
from adapters.market_data.files import BarMarketData, FileMarketData
from engine.market import calendar
from engine.market.indicators import AtrBasis
from engine.market.snapshot import DataQualityFinding, OptionChain, QualityCode

log = logging.getLogger(__name__)

# (column, dtype) in the order a chain's bytes are sent, one column after another: the
# one-byte column last, so that every eight-byte column starts on an eight-byte boundary of
# the body (numpy reads an unaligned column by a slower path, in every computation on it for
# the rest of the session).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("expiry", "M8[D]"),
    ("strike", "f8"),
    ("bid", "f8"),
    ("ask", "f8"),
    ("delta", "f8"),
    ("iv", "f8"),
    ("open_interest", "i8"),
    ("volume", "i8"),
    ("is_call", "?"),
)
_ROW_BYTES = sum(np.dtype(d).itemsize for _, d in COLUMNS)
PIPE_BYTES = 1 << 20  # the pipe's size (Linux's default limit for a user): the child's lead
WAIT_SECONDS = 30.0  # for the child's next message, its start included; then the run goes on
_COMMAND = (sys.executable, "-m", "adapters.market_data.chain_feed")


def available() -> bool:
    """Whether a feed can help here: a second core, and pipes ``select`` can wait on."""
    return os.name == "posix" and (os.cpu_count() or 1) > 1


def replay_market(data_dir: str | None, synthetic_seed: int | None, until: date) -> BarMarketData:
    """The market a replay runs on: daily bars from ``data_dir`` (a bar store or bar files),
    else seeded synthetic bars through ``until`` - built alike in the run and in its feed."""
    if data_dir:
        return FileMarketData(data_dir)
    from adapters.market_data.synthetic import synthetic_market

    return synthetic_market(synthetic_seed if synthetic_seed is not None else 1, until)


def spawned(data_dir: str | None, synthetic_seed: int | None, until: date) -> ChainFeed | None:
    """A feed for the run's market (``ChainFeed.spawn``), or None when no process can be had
    (the run then makes its own chains, as before)."""
    try:
        return ChainFeed.spawn(data_dir, synthetic_seed, until)
    except OSError as exc:
        log.warning("no chain feed (%s): the chains are made in this process", exc)
        return None


class LaterFeed:
    """A feed whose child starts at the run's first chain (``begin``), for bars that may
    never price one (a store of the VIX and the index alone, as the 33 years of real
    history): an idle child holding its market was ~180 MB for nothing."""

    def __init__(self, data_dir: str | None, synthetic_seed: int | None, until: date):
        self._market = (data_dir, synthetic_seed, until)
        self._feed: ChainFeed | None = None
        self.begun = False

    def begin(self, first: date, refresh: time, period: int, symbols: tuple[str, ...]) -> None:
        self.begun, self._feed = True, spawned(*self._market)
        if self._feed is not None:
            self._feed.begin(first, refresh, period, symbols)

    def chain(self, key: str, priced_at: datetime) -> OptionChain | None:
        return None if self._feed is None else self._feed.chain(key, priced_at)

    def value(self, key: str, day: date) -> tuple[bool, Any]:
        return (False, None) if self._feed is None else self._feed.value(key, day)

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()


class ChainFeed:
    """The run's end of a feed: a ``chain`` or a ``value`` by its key; ``close`` ends the child."""

    def __init__(self, market: dict[str, Any], command: tuple[str, ...] = _COMMAND):
        self.taken = self.missed = 0
        self.starting = 0  # asked before the child's first message: made by the run
        self._heard = False  # the child has sent a message (it has started)
        self._told: date | None = None  # the last day the run told the child it is on
        self._ready: dict[str, tuple[date, dict, bytes]] = {}  # key -> (day, header, columns)
        self._done: date | None = None  # the child has sent every chain through this session
        self._ended = False
        # stderr to /dev/null: it has nothing to say, a failed feed is a slower run
        self._proc = start_child(command, stderr=subprocess.DEVNULL)
        self._finalizer = weakref.finalize(self, _end, self._proc)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._pipe = _Pipe(self._proc.stdout)
        self._tell(market)

    @classmethod
    def spawn(cls, data_dir: str | None, synthetic_seed: int | None, until: date) -> ChainFeed:
        """A child that builds the run's market now (its start-up beside the run's) and
        waits to be told where to walk (``begin``)."""
        market = {"data_dir": data_dir, "synthetic_seed": synthetic_seed}
        return cls({**market, "until": until.isoformat()})

    def begin(self, first: date, refresh: time, period: int, symbols: tuple[str, ...]) -> None:
        """Walk the sessions from ``first``, sending what ``symbols``' snapshots make under
        the ATR ``refresh`` and ``period``."""
        walk = {"first": first.isoformat(), "refresh": refresh.isoformat(), "period": period}
        self._tell({**walk, "symbols": list(symbols)})

    @classmethod
    def start(
        cls,
        data_dir: str | None,
        synthetic_seed: int | None,
        until: date,
        first: date,
        refresh: time,
        period: int,
        symbols: tuple[str, ...],
    ) -> ChainFeed:
        feed = cls.spawn(data_dir, synthetic_seed, until)
        feed.begin(first, refresh, period, symbols)
        return feed

    def _tell(self, work: dict[str, Any]) -> None:
        """One line to the child (the market, the walk, the day the run is on); a child that
        is gone ends the feed."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(work).encode("utf-8") + b"\n")
            stdin.flush()
        except OSError:
            self._end()

    def chain(self, key: str, priced_at: datetime) -> OptionChain | None:
        """The chain sent under ``key`` (priced at ``priced_at``), or None when the feed has
        not made it: then the caller makes it."""
        found = self._take(key, calendar.new_york_date(priced_at))
        return None if found is None else _chain(found[0], found[1], priced_at)

    def value(self, key: str, day: date) -> tuple[bool, Any]:
        """(True, the ATR basis or volatility scale sent under ``key``) or (False, None)."""
        found = self._take(key, day)
        return (False, None) if found is None else (True, _value(found[0]))

    def _take(self, key: str, day: date) -> tuple[dict, bytes] | None:
        while True:
            found = self._ready.pop(key, None)
            if found is not None:
                self.taken += 1
                return found[1], found[2]
            if self._ended or (self._done is not None and self._done >= day):
                self.missed += 1
                return None
            if not self._next(day, wait=self._heard):
                # the child is still starting (its imports, its market: ~1 s): the run makes
                # this one and tells the child where it is, so that it starts there
                self.starting += 1
                self._tell_day(day)
                return None

    def _next(self, day: date, *, wait: bool = True) -> bool:
        """Read the child's next message; False when ``wait`` is off and none is whole yet."""
        try:
            message = self._pipe.message(WAIT_SECONDS if wait else 0.0)
        except TimeoutError:
            if not wait:
                return False
            log.warning(
                "the chain feed sent nothing for %.0f s: chains are made here", WAIT_SECONDS
            )
            message = None
        if message is None:
            self._end()
            return True
        self._heard = True
        header, body = message
        if "done" in header:
            self._done = date.fromisoformat(header["done"])
            # a session behind the run is of no more use
            self._ready = {k: v for k, v in self._ready.items() if v[0] >= day}
        else:
            self._ready[header["key"]] = (date.fromisoformat(header["day"]), header, body)
        return True

    def _tell_day(self, day: date) -> None:
        if self._told != day and not self._ended:
            self._told = day
            self._tell({"at": day.isoformat()})

    def _end(self) -> None:
        self._ended = True
        _end(self._proc)

    def close(self) -> None:
        self._end()
        self._finalizer.detach()
        self._pipe.close()
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # the child is gone: nothing to tell it


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class _Pipe:
    """The run's end of the child's stdout, read as whole messages.

    Read into one buffer kept for the run (``os.readv`` into its free end), not a new bytes
    object per read appended to the buffer: the chains are ~700 MB in the README's two years,
    and each read's fresh megabyte (its pages faulted in) and its copy were most of the time
    the run spent on the feed's messages."""

    def __init__(self, stream: IO[bytes]):
        self._stream, self._fd = stream, stream.fileno()
        self._buf = bytearray(4 * PIPE_BYTES)
        self._at = 0  # where the unread bytes of ``_buf`` start
        self._end = 0  # where they end
        try:
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, AttributeError, OSError):
            pass  # not Linux, or a lower limit: the default pipe, a shorter lead

    def message(self, timeout: float) -> tuple[dict, bytes] | None:
        """The next message, None at its end (or a broken one); TimeoutError when nothing
        came for ``timeout`` seconds."""
        if not self._fill(4, timeout):
            return None
        size = 4 + int.from_bytes(self._buf[self._at : self._at + 4], "big")
        if not self._fill(size, timeout):
            return None
        at = self._at  # _fill keeps the unread bytes where they are once they are all in
        try:
            header = json.loads(self._buf[at + 4 : at + size])
            end = size + (header["rows"] * _ROW_BYTES if "rows" in header else 0)
        except (ValueError, KeyError, TypeError):
            return None
        if not self._fill(end, timeout):
            return None
        at = self._at
        with memoryview(self._buf) as view:  # the one copy: the chain's columns view it
            body = bytes(view[at + size : at + end])
        self._at += end
        return header, body

    def _fill(self, n: int, timeout: float) -> bool:
        """At least ``n`` unread bytes in the buffer, from ``_at``; False at the end of the
        stream. Makes room first when they would not fit after ``_at``."""
        if self._at + n > len(self._buf):
            self._make_room(n)
        while self._end - self._at < n:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                raise TimeoutError
            with memoryview(self._buf) as view:
                got = os.readv(self._fd, [view[self._end :]])
            if not got:
                return False
            self._end += got
        return True

    def _make_room(self, n: int) -> None:
        """The unread bytes moved to the buffer's start, the buffer grown to hold ``n``."""
        unread = self._end - self._at
        self._buf[:unread] = self._buf[self._at : self._end]
        self._at, self._end = 0, unread
        if n > len(self._buf):
            self._buf.extend(bytes(n - len(self._buf)))

    def close(self) -> None:
        self._stream.close()


def _chain(header: dict, body: bytes, priced_at: datetime) -> OptionChain:
    n, offset, columns = header["rows"], 0, {}
    for name, dtype in COLUMNS:
        columns[name] = np.frombuffer(body, dtype=dtype, count=n, offset=offset)
        offset += n * np.dtype(dtype).itemsize
    return OptionChain(header["symbol"], priced_at, header["spot"], **columns)


def _value(header: dict) -> Any:
    value = header["value"]
    if header["kind"] != "atr" or value is None:
        return value  # a volatility scale: a float or None
    findings = tuple(DataQualityFinding(QualityCode(c), s, d) for c, s, d in value["findings"])
    return AtrBasis(
        value["symbol"],
        date.fromisoformat(value["cutoff"]),
        value["value"],
        None if value["last_bar"] is None else date.fromisoformat(value["last_bar"]),
        value["close_only"],
        findings,
        value["period"],
    )


def _value_message(header: dict, value: AtrBasis | float | None) -> bytes:
    if isinstance(value, AtrBasis):
        body: Any = {
            "symbol": value.symbol,
            "cutoff": value.cutoff.isoformat(),
            "value": value.value,
            "last_bar": None if value.last_bar is None else value.last_bar.isoformat(),
            "close_only": value.close_only,
            "findings": [[f.code.value, f.subject, f.detail] for f in value.findings],
            "period": value.period,
        }
        return _message({**header, "kind": "atr", "value": body})
    return _message({**header, "kind": "scale", "value": value})


def _message(header: dict, chain: OptionChain | None = None) -> bytes:
    if chain is not None:
        header = {**header, "symbol": chain.underlying, "spot": chain.spot, "rows": len(chain)}
    raw = json.dumps(header).encode("utf-8")
    out = [len(raw).to_bytes(4, "big"), raw]
    if chain is not None:
        out += [np.ascontiguousarray(getattr(chain, c), dtype=d).tobytes() for c, d in COLUMNS]
    return b"".join(out)


# --------------------------------------------------------------------------- the child


def instants(day: date, refresh: time) -> list[datetime]:
    """The instants of a session whose chains may differ: its open, its ATR refresh (the
    volatility scale reads bars through the ATR cutoff), its close."""
    opened, closed = calendar.session_open(day), calendar.session_close(day)
    if opened is None or closed is None:
        return []
    at_refresh = datetime.combine(day, refresh, tzinfo=calendar.NEW_YORK)
    return [opened, *([at_refresh] if opened < at_refresh < closed else []), closed]


def serve() -> None:
    """The child: read the market's line and build it, then the walk's, and send what every
    session's bars give from ``first`` to ``until``."""
    die_with_parent()
    out = protocol_stdout(buffering=1 << 20)
    told = _Lines(0)
    work = json.loads(told.next(wait=True) or "{}")
    until = date.fromisoformat(work["until"])
    market = replay_market(work["data_dir"], work["synthetic_seed"], until)
    line = told.next(wait=True)
    if line is None:
        return  # the run needed no chain
    walk = json.loads(line)
    day, refresh = date.fromisoformat(walk["first"]), time.fromisoformat(walk["refresh"])
    symbols, period = tuple(walk["symbols"]), int(walk["period"])
    try:
        while (day := max(day, _run_day(told))) <= until:
            sent: set[str] = set()
            for at in instants(day, refresh):
                for key, made in market.made_ahead(at, symbols, refresh, period):
                    if key not in sent:
                        sent.add(key)
                        header = {"key": key, "day": day.isoformat()}
                        out.write(
                            _message(header, made)
                            if isinstance(made, OptionChain)
                            else _value_message(header, made)
                        )
                out.flush()
            out.write(_message({"done": day.isoformat()}))
            out.flush()
            day += timedelta(days=1)
    except BrokenPipeError:
        pass  # the run ended first
    finally:
        try:
            out.close()
        except BrokenPipeError:
            pass


def _run_day(told: _Lines) -> date:
    """The latest day the run said it is on (``date.min``: none said): the sessions before
    it are made there already, so the child skips them."""
    latest = date.min
    while (line := told.next(wait=False)) is not None:
        latest = max(latest, date.fromisoformat(json.loads(line)["at"]))
    return latest


class _Lines:
    """Lines from a file descriptor, read whole, waiting for one or not (``select``): a
    buffered reader would hide from ``select`` lines it has read ahead."""

    def __init__(self, fd: int):
        self._fd, self._buf, self._eof = fd, b"", False

    def next(self, *, wait: bool) -> str | None:
        while b"\n" not in self._buf and not self._eof:
            ready, _, _ = select.select([self._fd], [], [], None if wait else 0.0)
            if not ready:
                return None
            chunk = os.read(self._fd, 1 << 16)
            self._eof = not chunk
            self._buf += chunk
        if b"\n" not in self._buf:
            return None  # the end (a partial last line is no line)
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8")


if __name__ == "__main__":
    serve()
