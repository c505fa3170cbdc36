"""`alluse data fetch --ib`: daily bars through the real IB client against the wire stub -
chunked by IB's longest one-day-bar duration, within IB's pacing limits, through a pacing
violation and a disconnect mid-download, resumable, into the same store `data import` writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.ib.broker import IBConfig, IBSession, IBUnavailable
from adapters.ib.history import HistoryFetcher, HistoryPacing, Pacer, chunks
from adapters.market_data import store
from adapters.market_data.synthetic import generate
from engine.clock import FixedClock
from scheduler.cli import main

from .live_world import FAST
from .market import Underlying
from .tws_stub import TwsStub

FIRST, LAST = date(2021, 1, 4), date(2023, 12, 29)


def _bars() -> tuple[tuple, ...]:
    h = generate(5, LAST, ("NVDA",)).bars["NVDA"].between(FIRST, LAST)
    return tuple(
        (f"{d:%Y%m%d}", *(round(float(x), 2) for x in (o, hi, lo, c)), float(int(v)))
        for d, o, hi, lo, c, v in zip(
            h.days.astype(date), h.open, h.high, h.low, h.close, h.volume, strict=True
        )
    )


BARS = _bars()


@pytest.fixture
def gateway():
    gw = TwsStub(accounts=("DU111",), today=date(2024, 1, 5))
    gw.add_underlying(Underlying("NVDA", 50.0, bars=BARS))
    gw.add_underlying(Underlying("VIX", 13.0, bars=BARS[:10]))
    gw.start()
    yield gw
    gw.close()


class Stepping(FixedClock):
    """A clock the fetcher's pacing sleeps move forward (no real waiting in tests)."""


@pytest.fixture
def clock():
    return Stepping(datetime(2024, 1, 5, 20, 0, tzinfo=UTC))


def _fetcher(gateway, clock, into, **kw):
    session = IBSession(
        IBConfig(**FAST, port=gateway.port, client_id=31, readonly=True, live=True), clock
    )
    session.connect()

    async def sleep(seconds: float) -> None:
        clock.advance_to(clock.at + timedelta(seconds=seconds))

    kw.setdefault("reconnect_wait", 3.0)
    return session, HistoryFetcher(session, into, clock=clock, sleep=sleep, **kw)


def _stored(into) -> list[tuple]:
    h = store.open_bars(into)["NVDA"]
    return [
        (f"{d:%Y%m%d}", o, hi, lo, c, v)
        for d, o, hi, lo, c, v in zip(
            h.days.astype(date), h.open, h.high, h.low, h.close, h.volume, strict=True
        )
    ]


def test_fetch_downloads_year_chunks_into_the_store_with_a_manifest(gateway, clock, tmp_path):
    session, fetcher = _fetcher(gateway, clock, tmp_path / "bars")
    try:
        [report] = fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()

    assert (report.chunks, report.requested, report.resumed) == (3, 3, 0)
    assert _stored(tmp_path / "bars") == [tuple(b) for b in BARS]
    asked = gateway.hist_requests
    assert [(r["duration"], r["bar_size"], r["what"], r["rth"]) for r in asked] == [
        ("365 D", "1 day", "TRADES", "1"),
        ("365 D", "1 day", "TRADES", "1"),
        ("360 D", "1 day", "TRADES", "1"),
    ]
    assert [r["end"] for r in asked] == [
        "20220103 23:59:59 US/Eastern",
        "20230103 23:59:59 US/Eastern",
        "20231229 23:59:59 US/Eastern",
    ]
    entry = store.manifest_entries(tmp_path / "bars")["NVDA"]
    assert entry["source"] == f"ib:NVDA TRADES 1 day {FIRST}..{LAST}"
    assert (entry["source_format"], entry["rows"], entry["first"]) == (
        "ib",
        len(BARS),
        "2021-01-04",
    )
    assert not (tmp_path / "bars" / ".fetch" / "NVDA.json").exists()


def test_a_range_before_the_listing_is_empty_chunks_not_an_error(gateway, clock, tmp_path):
    session, fetcher = _fetcher(gateway, clock, tmp_path / "bars")
    try:
        [report] = fetcher.fetch(["NVDA"], date(2019, 1, 2), date(2021, 6, 30))
    finally:
        session.close()

    assert report.result.first == "2021-01-04" and report.chunks == 3


def test_a_pacing_violation_is_waited_out_and_the_request_retried(gateway, clock, tmp_path):
    gateway.faults.hist_pacing, gateway.faults.hist_pacing_at = 2, 1  # the second chunk, twice
    session, fetcher = _fetcher(gateway, clock, tmp_path / "bars")
    try:
        [report] = fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()

    assert session.pacing_waits == 2 and report.requested == 3
    assert len(gateway.hist_requests) == 5
    assert _stored(tmp_path / "bars") == [tuple(b) for b in BARS]


def test_a_disconnect_mid_download_is_resumed_by_the_next_run(gateway, clock, tmp_path):
    into = tmp_path / "bars"
    gateway.faults.hist_drop_at, gateway.faults.hist_down_after_drop = 1, True
    session, fetcher = _fetcher(gateway, clock, into, reconnect_wait=0.5)
    try:
        with pytest.raises(IBUnavailable, match="run the same command again to resume"):
            fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()
    saved = json.loads((into / ".fetch" / "NVDA.json").read_text())
    assert list(saved["chunks"]) == ["2021-01-04..2022-01-03"]
    assert not (into / "NVDA.csv").exists()  # nothing half-written into the store

    gateway.faults.hist_drop_at = None
    gateway.start()  # the gateway is back on the same port
    before = len(gateway.hist_requests)
    session, fetcher = _fetcher(gateway, clock, into)
    try:
        [report] = fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()

    assert (report.requested, report.resumed) == (2, 1)
    assert [r["end"][:8] for r in gateway.hist_requests[before:]] == ["20230103", "20231229"]
    assert _stored(into) == [tuple(b) for b in BARS]


def test_a_dropped_connection_that_comes_back_continues_in_the_same_run(gateway, clock, tmp_path):
    gateway.faults.hist_drop_at = 1  # the network blips; the gateway stays up
    session, fetcher = _fetcher(gateway, clock, tmp_path / "bars")
    try:
        [report] = fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()

    assert report.requested == 3 and len(gateway.hist_requests) == 4  # chunk 2 asked twice
    assert _stored(tmp_path / "bars") == [tuple(b) for b in BARS]


def test_the_pacer_keeps_to_60_requests_in_any_ten_minutes():
    pacer = Pacer(HistoryPacing())
    for i in range(60):
        assert pacer.wait(float(i * 3), f"S{i}", f"r{i}") == 0  # 60 in three minutes
        pacer.made(float(i * 3), f"S{i}", f"r{i}")

    assert pacer.wait(180.0, "X", "x") == pytest.approx(
        420.0
    )  # the 61st: when the first is 10 min old
    assert pacer.wait(600.0, "X", "x") == 0


def test_the_pacer_refuses_an_identical_request_within_15_seconds():
    pacer = Pacer(HistoryPacing())
    pacer.made(0.0, "NVDA", "same")

    assert pacer.wait(14.9, "NVDA", "same") == pytest.approx(0.1)
    assert pacer.wait(15.0, "NVDA", "same") == 0
    assert pacer.wait(1.0, "NVDA", "other") == 0


def test_the_pacer_allows_five_requests_for_one_contract_in_two_seconds_not_six():
    pacer = Pacer(HistoryPacing())
    for i in range(5):
        pacer.made(i * 0.1, "NVDA", f"r{i}")

    assert pacer.wait(0.5, "NVDA", "r5") == pytest.approx(1.5)  # the sixth waits for the first
    assert pacer.wait(0.5, "AAPL", "a") == 0


def test_a_run_over_many_chunks_never_breaks_the_ten_minute_limit(gateway, clock, tmp_path):
    pacing = HistoryPacing(max_requests=2, chunk_days=200)  # 6 chunks, 2 allowed per 10 min
    session, fetcher = _fetcher(gateway, clock, tmp_path / "bars", pacing=pacing)
    try:
        fetcher.fetch(["NVDA"], FIRST, LAST)
    finally:
        session.close()

    times = fetcher.request_times
    assert len(times) == 6 and fetcher.waited >= 2 * 600 - 1e-6
    assert all(times[i + 2] - times[i] >= 600 - 1e-9 for i in range(len(times) - 2))


def test_chunks_are_at_most_a_year_and_cover_the_range_exactly():
    parts = chunks(date(1990, 1, 2), date(2023, 6, 16), 365)

    assert parts[0].first == date(1990, 1, 2) and parts[-1].last == date(2023, 6, 16)
    assert all(p.days <= 365 for p in parts)
    assert all(
        b.first == a.last + timedelta(days=1) for a, b in zip(parts, parts[1:], strict=False)
    )


def test_cli_fetch_writes_the_store_and_a_lost_gateway_is_exit_3(gateway, tmp_path, capsys):
    into = tmp_path / "bars"
    args = ["data", "fetch", "--ib", "NVDA", "--from", "2023-01-03", "--to", "2023-12-29"]
    args += ["--into", str(into), "--port", str(gateway.port)]

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "NVDA: 250 of 250 rows stored (OHLC, 2023-01-03..2023-12-29)" in out

    gateway.stop()
    assert main(args) == 3
    assert "Traceback" not in capsys.readouterr().err
