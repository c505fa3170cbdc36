"""The chain feed (adapters/market_data/chain_feed.py, D212): the chains a backtest's second
process makes ahead are bit for bit the ones the run makes itself, a key it did not make is the
run's to make, the run never waits for a child still starting (and the child starts where the
run is), a feed that dies or hangs leaves the run its own chains, and a backtest leaves the
same database with the feed as without it."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from datetime import UTC, date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.market_data import chain_feed
from adapters.market_data.chain_feed import COLUMNS, ChainFeed, instants, replay_market
from adapters.market_data.files import feed_key
from engine.market import calendar
from engine.market.indicators import AtrBasis
from engine.market.snapshot import OptionChain
from tests.conftest import ROOT
from tests.waiting import child_outlives_sigkilled_parent, linux_only, wait_until

SEED, FIRST, UNTIL = 7, date(2024, 1, 2), date(2024, 1, 12)


@pytest.fixture(scope="module")
def refresh(bundled):
    return bundled.model.protocol.atr.refresh


@pytest.fixture(scope="module")
def period(bundled):
    return bundled.model.protocol.atr.period


def _symbols(market) -> tuple[str, ...]:
    return tuple(sorted(set(market._h) - {"VIX"}))


def _same(a: OptionChain, b: OptionChain) -> bool:
    return (a.underlying, a.as_of, a.spot) == (b.underlying, b.as_of, b.spot) and all(
        getattr(a, c).dtype == getattr(b, c).dtype
        and getattr(a, c).tobytes() == getattr(b, c).tobytes()
        for c, _ in COLUMNS
    )


def _made(refresh, period) -> list[tuple[str, date, object]]:
    """(key, session, what) the run makes of the span's bars alone (no feed), in order."""
    market = replay_market(None, SEED, UNTIL)
    out = []
    for day in calendar.sessions_between(FIRST, UNTIL).astype(date):
        for at in instants(day, refresh):
            made = market.made_ahead(at, _symbols(market), refresh, period)
            out += [(k, day, v) for k, v in made]
    return out


def _expected(refresh, period) -> list[tuple[str, OptionChain]]:
    """Every chain of the span as the run makes it, in session order."""
    return [(k, v) for k, _, v in _made(refresh, period) if isinstance(v, OptionChain)]


def _feed(refresh, period, first: date = FIRST) -> ChainFeed:
    symbols = _symbols(replay_market(None, SEED, UNTIL))
    return ChainFeed.start(None, SEED, UNTIL, first, refresh, period, symbols)


def _once_started(ask):
    """``ask()``'s first answer: until its child has started, a feed answers nothing (the run
    makes its own) and each ask tells the child the day the run is on."""
    return wait_until(ask, 60, "the feed's child to start", poll=0.01)


def _asked(feed: ChainFeed, key: str, day: date, expected):
    if isinstance(expected, OptionChain):
        return feed.chain(key, expected.as_of)
    found, value = feed.value(key, day)
    return (value,) if found else None


def test_the_feed_sends_what_the_run_would_make(refresh, period):
    made = _made(refresh, period)
    feed = _feed(refresh, period)
    kinds, asked = set(), set()
    try:
        key, day, expected = made[0]
        _once_started(lambda: _asked(feed, key, day, expected))
        asked.add((key, day))
        for key, day, expected in made[1:]:
            if (key, day) in asked:
                continue  # the run caches a session's: it asks once
            asked.add((key, day))
            kind = json.loads(key)[0]
            kinds.add(kind)
            taken = _asked(feed, key, day, expected)
            if kind == "chain":
                assert taken is not None and _same(taken, expected), key
            else:  # an ATR basis (a frozen dataclass: every field) or a volatility scale
                assert taken is not None, key
                assert taken[0] == expected and type(taken[0]) is type(expected), key
    finally:
        feed.close()
    chains = sum(isinstance(v, OptionChain) for _, _, v in made)
    assert chains > 100  # 8 sessions, 10 symbols with quotes, open and close
    assert kinds == {"chain", "atr", "scale"}
    assert any(isinstance(v, AtrBasis) and v.value is not None for _, _, v in made)
    assert any(isinstance(v, float) for _, _, v in made)  # a scale from the bars
    assert feed.missed == 0 and feed.taken == len(asked) < len(made)  # some made twice


def test_a_key_the_feed_did_not_make_is_the_runs_to_make(refresh, period):
    key, chain = _expected(refresh, period)[0]
    _, symbol, spot, vix, _, scale = json.loads(key)
    nudged = feed_key(("chain", symbol, np.nextafter(spot, np.inf), vix, chain.as_of, scale))
    feed = _feed(refresh, period)
    try:
        day = calendar.new_york_date(chain.as_of)
        atr = feed_key(("atr", symbol, calendar.previous_session(day), period))
        _once_started(lambda: feed.value(atr, day)[0])
        assert feed.chain(nudged, chain.as_of) is None  # the spot one ulp above: not this chain
        assert feed.missed == 1
        found = feed.chain(key, chain.as_of)  # the session's chains are still there
        assert found is not None and _same(found, chain)
    finally:
        feed.close()


def test_a_session_the_feed_has_passed_is_the_runs_to_make(refresh, period):
    expected = _expected(refresh, period)
    later = date(2024, 1, 9)
    feed = _feed(refresh, period, first=later)
    try:
        before = [(k, c) for k, c in expected if calendar.new_york_date(c.as_of) < later]
        after = [(k, c) for k, c in expected if calendar.new_york_date(c.as_of) >= later]
        assert before and after
        (first_key, first_chain), (old_key, old_chain) = after[0], before[0]
        assert _once_started(lambda: feed.chain(first_key, first_chain.as_of)) is not None
        assert feed.chain(old_key, old_chain.as_of) is None  # sent from `later` on only
        assert feed.missed == 1
    finally:
        feed.close()


def test_a_feed_that_dies_leaves_the_run_its_chains(refresh, period):
    key, chain = _expected(refresh, period)[0]
    feed = ChainFeed({}, command=(sys.executable, "-c", "import sys; sys.exit(3)"))
    try:
        feed._proc.wait(timeout=30)
        assert feed.chain(key, chain.as_of) is None
        assert feed.chain(key, chain.as_of) is None  # and it is not waited on again
    finally:
        feed.close()
    assert feed.missed == 2 and feed.starting == 0 and feed._proc.returncode == 3


def test_a_child_still_starting_is_not_waited_for_and_told_the_runs_day(refresh, period, tmp_path):
    """Nothing from the child yet: each ask is the run's to make at once, and the child is
    told, once per day, the day the run is on (it starts there, D212)."""
    expected = _expected(refresh, period)
    days = sorted({calendar.new_york_date(c.as_of) for _, c in expected})[:2]
    asks = [(k, c) for k, c in expected if calendar.new_york_date(c.as_of) in days]
    heard = tmp_path / "heard.txt"
    listen = f"import sys, time\nfor line in sys.stdin: open({str(heard)!r}, 'a').write(line)"
    feed = ChainFeed({"market": 1}, command=(sys.executable, "-c", listen))
    try:
        for key, chain in asks:
            assert feed.chain(key, chain.as_of) is None
        assert feed.starting == len(asks) > 2 and feed.missed == 0
        wait_until(lambda: heard.exists() and heard.read_text().count("\n") == 3, 30, "lines")
    finally:
        feed.close()
    told = [json.loads(line) for line in heard.read_text().splitlines()]
    assert told == [{"market": 1}, *({"at": d.isoformat()} for d in days)]


def test_the_starting_child_skips_the_days_the_run_has_passed(refresh, period):
    """A real child, begun at FIRST, is asked for a later day's chain while it is starting
    (its imports take ~1 s): it starts at that day."""
    expected = _expected(refresh, period)
    later = date(2024, 1, 9)
    symbols = _symbols(replay_market(None, SEED, UNTIL))
    feed = ChainFeed.spawn(None, SEED, UNTIL)
    try:
        feed.begin(FIRST, refresh, period, symbols)
        old_key, old_chain = expected[0]
        key, chain = next((k, c) for k, c in expected if calendar.new_york_date(c.as_of) >= later)
        assert feed.chain(key, chain.as_of) is None and feed.starting == 1  # told: `later`
        assert _once_started(lambda: feed.chain(key, chain.as_of)) is not None
        assert feed.chain(old_key, old_chain.as_of) is None  # FIRST's: skipped
        assert feed.missed == 1
    finally:
        feed.close()


def test_a_feed_that_hangs_is_given_up_and_ended(refresh, period, monkeypatch):
    """A child that has started (it sent a session's end) and then sends nothing is waited
    for ``WAIT_SECONDS``, then ended."""
    monkeypatch.setattr(chain_feed, "WAIT_SECONDS", 0.5)
    key, chain = _expected(refresh, period)[0]
    done = chain_feed._message({"done": "2023-12-29"})
    hangs = (
        f"import sys, time; sys.stdout.buffer.write({done!r}); sys.stdout.flush(); time.sleep(60)"
    )
    feed = ChainFeed({}, command=(sys.executable, "-c", hangs))
    try:
        assert _once_started(lambda: feed._heard or feed.chain(key, chain.as_of))
        assert feed.chain(key, chain.as_of) is None
        assert feed._proc.poll() is not None  # killed, not left running
    finally:
        feed.close()


def test_a_broken_message_ends_the_feed(refresh, period):
    key, chain = _expected(refresh, period)[0]
    garbage = "import sys; sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x05{oops')"
    feed = ChainFeed({}, command=(sys.executable, "-c", garbage))
    try:
        feed._proc.wait(timeout=30)
        assert feed.chain(key, chain.as_of) is None
    finally:
        feed.close()
    assert feed.missed == 1 and feed._ended


def test_a_feed_that_cannot_start_leaves_the_run_its_chains(monkeypatch):
    from engine.clock import FixedClock
    from scheduler.compose import CycleContext, paper_market
    from tests.bundled_params import PARAMS

    def cannot(*_, **__):
        raise OSError(11, "Resource temporarily unavailable")  # as at a process limit

    monkeypatch.setattr(chain_feed.subprocess, "Popen", cannot)
    clock = FixedClock(calendar.session_open(FIRST))
    ctx = CycleContext("sqlite://", "paper", clock, synthetic_seed=SEED, until=UNTIL)
    fed = paper_market(replace(ctx, chain_feed=True))
    own = replay_market(None, SEED, UNTIL)
    at = calendar.session_open(FIRST)
    symbols = _symbols(own)
    a, b = fed.snapshot(at, symbols, PARAMS), own.snapshot(at, symbols, PARAMS)
    assert len(a.chains) == len(b.chains) > 5
    assert all(_same(a.chains[s], b.chains[s]) for s in b.chains)
    assert fed._feed is None and fed._feed_waiting is None  # the run's own chains
    fed.close()


# A backtest in miniature: the production class starts the real child, which works ahead of a
# parent that never reads, then the parent says the child's pid and waits to be killed. The
# child, computing or blocked on its full pipe, must end with it (the parent-death signal, or
# the broken pipe).
PARENT = """
import sys, time
from datetime import date, time as t
from adapters.market_data.chain_feed import ChainFeed
feed = ChainFeed.start(None, 7, date(2025, 12, 31), date(2024, 1, 2), t(9, 45), 5, ("SPY", "QQQ"))
print(feed._proc.pid, flush=True)
time.sleep(600)
"""


@linux_only
def test_the_feed_child_does_not_outlive_its_sigkilled_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    assert not child_outlives_sigkilled_parent(script, [], ROOT, wait=60)


def _bar_files(tmp_path, symbols: tuple[str, ...]) -> str:
    """A folder of daily bar files for ``symbols``, from the synthetic market's bars."""
    bars, folder = replay_market(None, SEED, UNTIL)._h, tmp_path / "bars"
    folder.mkdir()
    for s in symbols:
        h = bars[s]
        rows = ["date,open,high,low,close"] + [
            f"{d},{o},{hi},{lo},{c}"
            for d, o, hi, lo, c in zip(
                h.days.astype(str), h.open, h.high, h.low, h.close, strict=True
            )
        ]
        (folder / f"{s}.csv").write_text("\n".join(rows) + "\n")
    return str(folder)


@pytest.mark.parametrize(
    ("symbols", "at_once"),
    [(None, True), (("VIX", "SPY", "AAPL"), True), (("VIX", "SPY"), False)],
    ids=["synthetic", "a ticker's bars", "the VIX and the index alone"],
)
def test_the_child_starts_with_the_market_only_where_chains_are_priced(
    tmp_path, monkeypatch, symbols, at_once, refresh, period
):
    """Bars with a ticker's: the child starts when the run builds its market. The VIX and
    the index alone (the real history's bars) may never price a chain: the child starts at
    the first chain, if one comes (an idle child was ~180 MB)."""
    from engine.clock import FixedClock
    from scheduler.compose import CycleContext, paper_market

    started, real = [], chain_feed.subprocess.Popen

    def counted(*args, **kwargs):
        started.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(chain_feed.subprocess, "Popen", counted)
    data_dir = None if symbols is None else _bar_files(tmp_path, symbols)
    clock = FixedClock(calendar.session_open(FIRST))
    ctx = CycleContext("sqlite://", "paper", clock, data_dir, SEED, UNTIL, chain_feed=True)
    market = paper_market(ctx)
    try:
        assert len(started) == (1 if at_once else 0)
        later = market._feed_waiting
        if not at_once:
            assert isinstance(later, chain_feed.LaterFeed) and not later.begun
            later.begin(FIRST, refresh, period, ("SPY",))  # the first chain, if one comes
            assert len(started) == 1
    finally:
        market.close()


@given(
    st.lists(
        st.one_of(
            st.text(),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(),
            st.booleans(),
            st.none(),
            st.dates(),
            st.datetimes(timezones=st.sampled_from([UTC, calendar.NEW_YORK])),
        ),
        max_size=7,
    )
)
def test_a_feed_key_is_its_parts_json(parts):
    """Both ends key by ``feed_key``: it is ``json.dumps`` of the key's parts, dates and
    instants in ISO form, whatever the parts (written part by part for speed)."""
    key = tuple(parts)
    assert feed_key(key) == json.dumps(list(key), default=lambda d: d.isoformat())


def test_the_pipe_reads_every_message_whole_and_in_order_however_the_bytes_arrive():
    """Messages written in chunks of every size, with pauses, one larger than the reader's
    buffer: each is read back whole, in order, its chain the chain sent."""
    import os
    import random
    import threading

    from adapters.market_data.chain_feed import _chain, _message, _Pipe

    rng, sent = random.Random(5), []
    for n, rows in enumerate([3, 1001, 0, 70_000, 17, 250]):  # 70,000 rows: ~4.5 MB
        if rows:
            chain = _chain_of_rows(rows, n)
            sent.append(({"key": f"c{n}", "day": "2024-01-02"}, chain))
        sent.append(({"key": f"v{n}", "day": "2024-01-02", "kind": "scale", "value": 1.5}, None))
    data = b"".join(_message(h, c) for h, c in sent)
    read_fd, write_fd = os.pipe()

    def write():
        at = 0
        while at < len(data):
            step = rng.choice([1, 7, 4096, 65_536, 1 << 20])
            os.write(write_fd, data[at : at + step])
            at += step
            if rng.random() < 0.1:
                time.sleep(0.001)
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        pipe = _Pipe(stream)
        for header, chain in sent:
            got = pipe.message(10.0)
            assert got is not None and got[0]["key"] == header["key"]
            if chain is not None:
                back = _chain(got[0], got[1], chain.as_of)
                assert _same(back, chain), header["key"]
        assert pipe.message(10.0) is None  # the end of the stream
    writer.join()


def _chain_of_rows(rows: int, seed: int) -> OptionChain:
    r = np.random.default_rng(seed)
    at = calendar.session_open(FIRST)
    return OptionChain(
        "XYZ",
        at,
        100.0,
        expiry=np.full(rows, np.datetime64("2024-01-19", "D")),
        strike=r.uniform(50, 150, rows),
        is_call=r.random(rows) < 0.5,
        bid=r.uniform(0, 1, rows),
        ask=r.uniform(1, 2, rows),
        delta=r.uniform(-1, 1, rows),
        iv=r.uniform(0.1, 0.5, rows),
        open_interest=r.integers(0, 100, rows),
        volume=r.integers(0, 100, rows),
    )
