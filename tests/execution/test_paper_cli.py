"""``alluse paper step --facts FILE`` and ``alluse paper resume [--reset]`` through the CLI's
``main``, checked on what they leave in the ledger and the audit log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from adapters.storage.audit_store import AuditQuery, AuditStore
from adapters.storage.ledger_store import SqlLedgerStore, SqlVenueStore
from engine.clock import WallClock
from engine.market.instruments import SecType
from engine.records.audit import RunMode
from scheduler.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "facts-calm-thursday.yaml"
AS_OF = datetime.fromisoformat("2026-11-19T10:15:00-05:00")


def _facts(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    """The example facts file with textual edits (old, new); each edit must apply."""
    text = EXAMPLE.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def _step(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["paper", "step", *args, "--db", url])
    out, err = capsys.readouterr()
    return code, out, err


def _resume(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = main(["paper", "resume", *args, "--db", url])
    out, err = capsys.readouterr()
    return code, out, err


def _decisions(url: str):
    audit = AuditStore.open(url, WallClock())
    try:
        return audit.query(AuditQuery(mode=RunMode.PAPER, limit=None))
    finally:
        audit.close()


def _ledger(url: str):
    store = SqlLedgerStore.open(url)
    try:
        return store.state
    finally:
        store.close()


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'paper.db'}"


# --------------------------------------------------------------------------- step --facts


def test_a_facts_step_opens_the_portfolio_and_decides_on_the_files_market(url, capsys):
    code, _, err = _step(capsys, url, "--facts", str(EXAMPLE))
    assert code == 0, err

    [record] = _decisions(url)
    decision = record.decision
    assert datetime.fromisoformat(decision.as_of) == AS_OF  # the cycle time is the file's as_of
    market = decision.facts["market"]
    assert (
        market["vix"] == 18.4
        and market["spx_drawdown"] == 0.03
        and market["breadth_above_50dma"] == 0.55
    )
    assert (
        market["underlyings"]["AAPL"]["price"] == 228.5
        and market["underlyings"]["AAPL"]["atr5"] == 3.1
    )
    assert market["underlyings"]["TSLA"]["price"] == 330.0 and market["data_age_seconds"] == 2

    state = _ledger(url)
    assert set(state.accounts) == {"GEN", "REV", "COM"}
    assert state.orders and {o.request.decision_id for o in state.orders.values()} == {
        decision.decision_id
    }
    sold = [
        h
        for h in state.holdings.values()
        if h.account == "GEN" and h.contract.sec_type is SecType.OPTION
    ]
    assert sold and all(h.quantity < 0 and h.contract.right == "P" for h in sold)
    assert {h.contract.symbol for h in sold} <= set(market["underlyings"])

    audit = AuditStore.open(url, WallClock())
    kinds = [r.link.kind for r in audit.for_decision(decision.decision_id) if r.link]
    assert kinds.count("order") == len(state.orders) and "fill" in kinds
    assert audit.verify().ok
    audit.close()


def test_a_second_step_trades_on_the_ledger_not_on_the_files_accounts(url, tmp_path, capsys):
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    held = {
        h.contract.key: h.quantity
        for h in _ledger(url).holdings.values()
        if h.account == "GEN" and h.contract.sec_type is SecType.OPTION
    }
    later = _facts(tmp_path, "later.yaml", ("T10:15:00", "T10:45:00"))
    assert _step(capsys, url, "--facts", str(later))[0] == 0

    second = _decisions(url)[-1].decision
    assert datetime.fromisoformat(second.as_of) == AS_OF.replace(minute=45)
    gen = next(a for a in second.facts["accounts"] if a["id"] == "GEN")
    puts = {
        (p["symbol"], p["strike"]): p["contracts"] for p in gen["positions"] if p["right"] == "put"
    }
    assert len(puts) == len(held) and all(n > 0 for n in puts.values())
    assert ("AAPL", 225.0) not in puts  # the file's own AAPL 225 put is not the portfolio
    assert not [p for p in gen["positions"] if p["right"] == "stock"]  # nor its MSFT shares
    assert gen["equity"] < 412_000  # the ledger's equity, not the file's


def test_without_as_of_the_cycle_time_comes_from_date_and_time(url, tmp_path, capsys):
    timeless = _facts(tmp_path, "timeless.yaml", ("as_of: 2026-11-19T10:15:00-05:00\n", ""))
    code, _, err = _step(
        capsys, url, "--facts", str(timeless), "--date", "2026-11-19", "--time", "10:30"
    )
    assert code == 0, err
    [record] = _decisions(url)
    assert datetime.fromisoformat(record.decision.as_of) == AS_OF.replace(minute=30)


@pytest.mark.parametrize(
    "edits, args, expected",
    [
        (
            (("price: 228.5", "price: -3"),),
            (),
            ":12:12: range: market.underlyings.AAPL.price: Input should be greater than or equal to 0.01",
        ),
        (
            (("vix: 18.4", "vix: [18.4"),),
            (),
            ":4:8: yaml-syntax: the '[' opened here is never closed",
        ),
        ((("as_of: 2026-11-19T10:15:00-05:00\n", ""),), (), ":2:1: missing: no as_of in the file"),
        ((), ("--date", "2026-11-18"), ":2:1: conflict: as_of: as_of is on 2026-11-19"),
        ((), ("--time", "09:45"), ":2:1: conflict: as_of: as_of is at 10:15:00"),
        (
            (("2026-11-19T10:15", "1985-11-19T10:15"), ("opened: 2026", "opened: 1985")),
            (),
            ":2:1: range: as_of:",
        ),
        ((("  underlyings:", "  underlying:"),), (), ":11:3: unknown-key: market.underlying:"),
    ],
)
def test_a_bad_facts_file_is_a_located_exit_2_and_touches_no_database(
    tmp_path, capsys, edits, args, expected
):
    db = tmp_path / "untouched.db"
    bad = _facts(tmp_path, "bad.yaml", *edits)
    code, _, err = _step(capsys, f"sqlite:///{db}", "--facts", str(bad), *args)
    assert code == 2
    assert f"{bad}{expected}" in err and "Traceback" not in err
    assert not db.exists()


def test_facts_and_synthetic_exclude_each_other_and_one_is_required(url, capsys):
    for argv in (["--facts", str(EXAMPLE), "--synthetic", "7"], ["--date", "2024-01-08"]):
        with pytest.raises(SystemExit) as exc:
            main(["paper", "step", *argv, "--db", url])
        assert exc.value.code == 2
    assert _step(capsys, url, "--synthetic", "7")[0] == 2  # synthetic data needs --date


def test_a_file_that_does_not_price_a_held_underlying_is_refused(url, tmp_path, capsys):
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    held = {
        h.contract.symbol
        for h in _ledger(url).holdings.values()
        if h.contract.sec_type is SecType.OPTION
    }
    symbol = sorted(held)[0]
    line = next(
        n
        for n, ln in enumerate(EXAMPLE.read_text().splitlines(), 1)
        if ln.strip().startswith(f"{symbol}:")
    )
    text = "\n".join(ln for n, ln in enumerate(EXAMPLE.read_text().splitlines(), 1) if n != line)
    without = tmp_path / "without.yaml"
    without.write_text(text.replace("T10:15", "T10:45").replace(f"symbol: {symbol}", "symbol: SPY"))
    code, _, err = _step(capsys, url, "--facts", str(without))
    assert (
        code == 2
        and f"missing-underlying: market.underlyings: no {symbol}" in err
        and f"{without}:11:" in err
    )
    assert len(_decisions(url)) == 1  # no second cycle ran


# --------------------------------------------------------------------------- resume


def _trip_kill(url, tmp_path, capsys) -> str:
    """Two steps: a calm one, then VIX 85 (above the kill switch): EMERGENCY, not latched."""
    assert _step(capsys, url, "--facts", str(EXAMPLE))[0] == 0
    spike = _facts(tmp_path, "spike.yaml", ("vix: 18.4", "vix: 85"), ("T10:15", "T10:30"))
    assert _step(capsys, url, "--facts", str(spike))[0] == 0
    state = _ledger(url)
    assert (state.mode, state.latched) == ("kill", False)
    kill = _decisions(url)[-1].decision
    assert "kill_switch" in {a.kind for a in kill.actions}
    return kill.decision_id


def _drop_a_venue_position(url) -> dict:
    store = SqlLedgerStore.open(url)
    venue = SqlVenueStore(store.engine)
    book = venue.load()
    dropped = book["positions"].pop(0)  # the broker no longer shows a position the ledger holds
    venue.save(book)
    store.close()
    return {"book": book, "dropped": dropped}


def _restore_venue_position(url, dropped: dict) -> None:
    store = SqlLedgerStore.open(url)
    venue = SqlVenueStore(store.engine)
    book = venue.load()
    book["positions"].insert(0, dropped["dropped"])
    venue.save(book)
    store.close()


def _reset_notes(url: str, decision_id: str) -> list[dict]:
    audit = AuditStore.open(url, WallClock())
    try:
        assert audit.verify().ok
        return [
            r.link.data
            for r in audit.for_decision(decision_id)
            if r.link and r.link.ref == "operator-reset"
        ]
    finally:
        audit.close()


def test_a_latch_from_a_failed_risk_check_is_cleared_only_by_an_audited_reset(
    url, tmp_path, capsys
):
    _trip_kill(url, tmp_path, capsys)
    dropped = _drop_a_venue_position(url)
    code, _, err = _resume(capsys, url)  # the risk check fails: the kill latches
    assert code == 2 and "positions differ" in err
    assert (_ledger(url).mode, _ledger(url).latched) == ("kill", True)
    _restore_venue_position(url, dropped)
    anchor = _decisions(url)[-1].decision.decision_id

    code, out, _ = _resume(capsys, url)  # the resume sequence alone leaves the latch
    assert code == 0 and "--reset --reason" in out
    assert (_ledger(url).mode, _ledger(url).latched) == ("kill", True)

    code, _, err = _resume(capsys, url, "--reset")  # a reset without a reason is refused
    assert code == 2 and "--reset needs --reason" in err
    assert _ledger(url).mode == "kill" and _reset_notes(url, anchor) == []

    code, out, err = _resume(
        capsys,
        url,
        "--reset",
        "--reason",
        "VIX back under 30; positions checked",
        "--operator",
        "alice",
    )
    assert code == 0, err
    state = _ledger(url)
    assert (state.mode, state.latched) == ("active", False)
    assert "alice" in state.mode_reason and "VIX back under 30" in state.mode_reason
    assert "kill -> active" in out

    requested, done = _reset_notes(url, anchor)
    assert requested["phase"] == "requested" and done["phase"] == "done"
    for note in (requested, done):
        assert (
            note["operator"] == "alice" and note["reason"] == "VIX back under 30; positions checked"
        )
        assert note["mode_before"] == "kill" and note["latched_before"] is True
        assert note["mode_op"].startswith("mode:resume:")
    assert (
        done["mode_after"] == "active" and done["latched_after"] is False and done["problems"] == []
    )


def test_a_reset_is_refused_while_positions_differ_from_the_broker(url, tmp_path, capsys):
    _trip_kill(url, tmp_path, capsys)
    dropped = _drop_a_venue_position(url)["dropped"]
    anchor = _decisions(url)[-1].decision.decision_id

    code, _, err = _resume(capsys, url, "--reset", "--reason", "try anyway", "--operator", "bob")
    assert code == 2 and "refused: the risk check failed: positions differ" in err

    state = _ledger(url)
    assert (state.mode, state.latched) == ("kill", True)  # latched; a kill is not weakened
    assert "resume risk check failed" in state.mode_reason
    _, done = _reset_notes(url, anchor)
    assert (
        done["phase"] == "refused"
        and done["mode_after"] == "kill"
        and done["latched_after"] is True
    )
    assert done["problems"] and any(
        d["kind"] == "position-mismatch" and dropped["account"] in d["ref"]
        for d in done["differences"]
    )


def test_resume_on_an_empty_ledger_changes_nothing(url, capsys):
    code, out, _ = _resume(capsys, url)
    assert code == 0 and "empty" in out
    assert not _ledger(url).accounts and not _decisions(url)


@pytest.mark.parametrize(
    "argv",
    [
        ["paper", "status"],
        ["paper", "resume"],
        ["account", "pause", "GEN", "--reason", "a holiday"],
        ["system", "maintenance", "on", "--reason", "a new disk"],
    ],
)
def test_a_paper_command_on_a_database_not_there_yet_creates_none(argv, tmp_path, capsys):
    db = tmp_path / "not-yet.db"
    assert main([*argv, "--db", f"sqlite:///{db}"]) == 0
    assert f"no database at {db} yet" in capsys.readouterr().out
    assert not db.exists()  # else `alluse audit` would take it for a log that is not ALL-USE's


def test_the_kill_switch_blocks_entries_while_vix_is_above_80_and_releases_without_a_reset(
    url, tmp_path, capsys
):
    _trip_kill(url, tmp_path, capsys)
    still = _facts(tmp_path, "still.yaml", ("vix: 18.4", "vix: 81"), ("T10:15", "T10:40"))
    assert _step(capsys, url, "--facts", str(still))[0] == 0
    blocked = _decisions(url)[-1].decision
    kinds = [a.kind for a in blocked.actions]
    assert "open_short_put" not in kinds and "kill_switch" in kinds
    assert {a.params.get("why") for a in blocked.actions if a.kind == "skip_entry"} == {"mode"}
    assert _ledger(url).mode == "kill"

    calm = _facts(tmp_path, "calm.yaml", ("T10:15", "T10:50"))  # VIX 18.4: the tier no longer holds
    assert _step(capsys, url, "--facts", str(calm))[0] == 0
    after = _decisions(url)[-1].decision
    entries = [
        v for v, a in zip(after.verdicts, after.actions, strict=True) if a.kind == "open_short_put"
    ]
    assert entries and all(v.approved for v in entries)
    state = _ledger(url)
    assert (state.mode, state.latched) == ("active", False)
    assert state.mode_reason.startswith("released: kill (vix_kill) no longer holds")
