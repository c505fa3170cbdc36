"""The cyclic garbage collector paused while one evaluation runs.

An evaluation allocates its world, firings and Decision as trees (no reference cycles): they
are freed by reference counting, and a pass of the cyclic collector during the evaluation
frees nothing. Each pass still walks the whole heap it reaches, and on a large portfolio
(10,000 accounts: ~385,000 objects made) those passes were ~45 % of the evaluation's time.
The collector runs again as soon as the evaluation ends; nothing is kept from it.

What a large evaluation leaves alive - its Decision (10,000 accounts: ~280,000 tracked objects,
a Firing or an Action with its dict and field set each) - is long-lived by nature (it is
recorded, shown, then dropped whole, by reference counting): the young generation's pass that
would walk it as soon as the collector is back (~10 % of that evaluation) only moves it to an
older generation. Past ``LARGE`` young objects the pause's end moves the young objects to the
oldest generation at once (``gc.freeze`` then ``gc.unfreeze``, each a list splice); they are
walked at the next full collection, as everything older is, so a cycle among them is still
collected. An evaluation of a usual portfolio (a backtest's, a paper cycle's) stays far below.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

LARGE = 100_000  # young objects left by one evaluation (10,000 accounts: ~330,000)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then as it was (nested or concurrent
    uses leave it to the outermost, which found it on)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > LARGE:
            gc.freeze()  # young (and older) objects to the permanent generation...
            gc.unfreeze()  # ...and from it to the oldest one: no young pass over them
        gc.enable()
