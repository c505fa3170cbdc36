"""The chain feed (adapters/market_data/chain_feed.py, D212): the chains a backtest's second
process makes ahead are bit for bit the ones the run makes itself, a key it did not make is the
run's to make, a feed that dies or hangs leaves the run its own chains, and a backtest leaves
the same database with the feed as without it."""

from __future__ import annotations

import json
import sys
from datetime import date

import numpy as np
import pytest

from adapters.market_data import chain_feed
from adapters.market_data.chain_feed import COLUMNS, ChainFeed, instants, replay_market
from adapters.market_data.files import feed_key
from engine.market import calendar
from engine.market.indicators import AtrBasis
from engine.market.snapshot import OptionChain
from tests.conftest import ROOT
from tests.waiting import child_outlives_sigkilled_parent, linux_only

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


def test_the_feed_sends_what_the_run_would_make(refresh, period):
    made = _made(refresh, period)
    feed = _feed(refresh, period)
    kinds, asked = set(), set()
    try:
        for key, day, expected in made:
            if (key, day) in asked:
                continue  # the run caches a session's: it asks once
            asked.add((key, day))
            kind = json.loads(key)[0]
            kinds.add(kind)
            if kind == "chain":
                taken = feed.chain(key, expected.as_of)
                assert taken is not None and _same(taken, expected), key
            else:  # an ATR basis (a frozen dataclass: every field) or a volatility scale
                found, value = feed.value(key, day)
                assert found and value == expected and type(value) is type(expected), key
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
        assert feed.chain(first_key, first_chain.as_of) is not None
        assert feed.chain(old_key, old_chain.as_of) is None  # sent from `later` on only
    finally:
        feed.close()


def test_a_feed_that_dies_leaves_the_run_its_chains(refresh, period):
    key, chain = _expected(refresh, period)[0]
    feed = ChainFeed({}, command=(sys.executable, "-c", "import sys; sys.exit(3)"))
    try:
        assert feed.chain(key, chain.as_of) is None
        assert feed.chain(key, chain.as_of) is None  # and it is not waited on again
    finally:
        feed.close()
    assert feed.missed == 2 and feed._proc.returncode == 3


def test_a_feed_that_hangs_is_given_up_and_ended(refresh, period, monkeypatch):
    monkeypatch.setattr(chain_feed, "WAIT_SECONDS", 0.5)
    key, chain = _expected(refresh, period)[0]
    feed = ChainFeed({}, command=(sys.executable, "-c", "import time; time.sleep(60)"))
    try:
        assert feed.chain(key, chain.as_of) is None
        assert feed._proc.poll() is not None  # killed, not left running
    finally:
        feed.close()


def test_a_broken_message_ends_the_feed(refresh, period):
    key, chain = _expected(refresh, period)[0]
    garbage = "import sys; sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x05{oops')"
    feed = ChainFeed({}, command=(sys.executable, "-c", garbage))
    try:
        assert feed.chain(key, chain.as_of) is None
    finally:
        feed.close()
    assert feed.missed == 1


def test_a_feed_that_cannot_start_leaves_the_run_its_chains():
    from tests.bundled_params import PARAMS

    def cannot(*_):
        raise OSError(11, "Resource temporarily unavailable")

    fed, own = replay_market(None, SEED, UNTIL), replay_market(None, SEED, UNTIL)
    fed.feed_chains(cannot)
    at = calendar.session_open(FIRST)
    symbols = _symbols(own)
    a, b = fed.snapshot(at, symbols, PARAMS), own.snapshot(at, symbols, PARAMS)
    assert len(a.chains) == len(b.chains) > 5
    assert all(_same(a.chains[s], b.chains[s]) for s in b.chains)
    assert fed._feed is None  # one attempt, then the run's own chains
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
