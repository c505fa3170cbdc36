"""A backtest leaves the same database with its chains made ahead in a second process as
when it makes them itself (D212), and the feed is what made them."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.market_data.chain_feed import ChainFeed
from scheduler import compose
from scheduler.backtest import run_backtest
from tests.scheduler.test_cycle_writes import _tables

FIRST, LAST = date(2024, 1, 2), date(2024, 3, 28)  # long enough for the child to start


@pytest.mark.slow
def test_a_backtest_with_its_chain_feed_leaves_the_same_database(bundled, tmp_path, monkeypatch):
    counts = []
    real_close = ChainFeed.close

    def counted(self):
        counts.append((self.taken, self.missed, self.starting))
        real_close(self)

    monkeypatch.setattr(ChainFeed, "close", counted)
    fed, own = tmp_path / "fed.db", tmp_path / "own.db"
    a = run_backtest(
        bundled,
        FIRST,
        LAST,
        f"sqlite:///{fed}",
        compose.paper_cycle_factory,
        synthetic_seed=7,
        chain_feed=True,
    )
    b = run_backtest(
        bundled,
        FIRST,
        LAST,
        f"sqlite:///{own}",
        compose.paper_cycle_factory,
        synthetic_seed=7,
        chain_feed=False,
    )
    assert _tables(fed) == _tables(own)
    assert (a.decided, a.run, a.trades) == (b.decided, b.run, b.trades) and a.trades > 0
    assert len(counts) == 1  # one feed, for the fed run only, closed at its end
    taken, missed, starting = counts[0]
    # the run made its own only while the child started (how many: the machine's load)
    assert taken > 100 and missed == 0 and starting > 0


@pytest.mark.parametrize(("flags", "feeds"), [([], 1), (["--one-process"], 0)])
def test_alluse_backtest_one_process_starts_no_feed(tmp_path, monkeypatch, capsys, flags, feeds):
    from scheduler.cli import main

    started = []
    real_spawn = ChainFeed.spawn

    def counted(*args):
        started.append(args)
        return real_spawn(*args)

    monkeypatch.setattr(ChainFeed, "spawn", counted)
    monkeypatch.setattr("scheduler.backtest.chain_feeds", lambda: True)  # even on one core
    db = tmp_path / "bt.db"
    argv = ["backtest", "--from", "2024-01-02", "--to", "2024-01-05", "--synthetic", "7"]
    assert main([*argv, "--db", str(db), "--no-progress", *flags]) == 0
    capsys.readouterr()
    assert len(started) == feeds
