"""Done-when of issue 20, constitution changes: a proposal that worsens drawdown beyond the
threshold fails its gate, and a live daemon refuses to load it - at start and as a hot swap -
until it is overridden with a recorded reason (or passes).

The proposal (1.4.0: Rev-Acc sells 90-97 delta puts at four times the size) is backtested with
``alluse propose`` against a current version (1.3.2: the bundled text with a 0.2-point
drawdown limit, so a short synthetic history can show the difference) over the same seeded
history. The live daemon runs against the stub gateway as tests/ib/test_live_pipeline.py does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest

from adapters.storage.audit_store import AuditQuery, AuditStore
from constitution.load import bundled_path, load_constitution
from engine.clock import FixedClock
from engine.records.audit import RunMode
from scheduler import compose
from scheduler.cli import main
from scheduler.daemon import Daemon, DaemonConfig
from scheduler.governance import NotApproved
from tests.ib.live_world import ACCOUNTS, FAST, MARKET, ShiftedClock, make_live_stub
from tests.waiting import wait_until

REV_ENTRY = (
    "with: {style: \"'rev'\", delta: params.sleeves.rev.delta, dte: params.sleeves.rev.dte, "
    "deployment: params.capital.deployment.max, share: 1}"
)


def _version(text: str, version: str, summary: str) -> str:
    text = text.replace("  version: 1.3.1\n", f"  version: {version}\n")
    entry = f'  changelog:\n    - version: {version}\n      date: 2026-12-01\n      summary: "{summary}"\n'
    return text.replace("  changelog:\n", entry, 1)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    bundled = bundled_path().read_text("utf-8")
    current = _version(bundled, "1.3.2", "a tighter proposal gate")
    current = current.replace("max_drawdown_worsening: 0.02", "max_drawdown_worsening: 0.002")
    risky = _version(bundled, "1.4.0", "Rev sells deep puts at four times the size")
    assert REV_ENTRY in risky
    risky = risky.replace(REV_ENTRY, REV_ENTRY.replace("share: 1}", "share: 4}"))
    rev_band = "    delta: {min: 0.30, max: 0.35}\n    dte: {min: 3, max: 5}"
    assert rev_band in risky
    # deep puts, and from 2 DTE: in January 2024 NVDA and TSLA list Friday weeklies only, so
    # 3-5 DTE from Wednesday finds no expiry in band (D19) and Rev would not trade at all
    deep = rev_band.replace("0.30, max: 0.35", "0.90, max: 0.97").replace("min: 3,", "min: 2,")
    risky = risky.replace(rev_band, deep)
    (tmp_path / "current.yaml").write_text(current, "utf-8")
    (tmp_path / "risky.yaml").write_text(risky, "utf-8")
    return tmp_path / "current.yaml", tmp_path / "risky.yaml"


def _proposals(db: Path) -> list[dict]:
    from adapters.storage.governance_store import GovernanceStore

    store = GovernanceStore.open(f"sqlite:///{db}")
    try:
        return [json.loads(b) for b in store.proposals()]
    finally:
        store.close()


def _notes(url: str, event: str) -> list[dict]:
    audit = AuditStore.open(url, FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    try:
        links = audit.query(AuditQuery(record_type="link", limit=None))
    finally:
        audit.close()
    return [r.link.data for r in links if r.link.data.get("event") == event]


@pytest.fixture
def gateway():
    gw = make_live_stub()
    gw.start()
    yield gw
    gw.close()


def _live(url: str, constitution: Path, gw, clock):
    ctx = compose.CycleContext(db_url=url, mode=RunMode.LIVE, clock=clock)
    builder = compose.live_cycle_factory(
        ctx, f"127.0.0.1:{gw.port}", ACCOUNTS, client_id=11, ib_settings=FAST,
        market_settings=MARKET,
    )  # fmt: skip
    config = DaemonConfig(constitution=constitution, db_url=url, mode=RunMode.LIVE, every=0.5)
    return Daemon(config, builder, clock)


@pytest.mark.slow
def test_a_proposal_worsening_drawdown_fails_and_a_live_daemon_loads_it_only_once_overridden(
    tmp_path, gateway, capsys
):
    current, risky = _files(tmp_path)
    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    out = tmp_path / "proposal"
    code = main(["propose", str(risky), "--against", str(current), "--synthetic", "7",
                 "--from", "2024-01-02", "--to", "2024-01-12", "--db", str(db),
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out

    # 1. the gate fails on drawdown, and says so; verdict and report digest are recorded
    assert code == 2
    [p] = _proposals(db)
    assert (p["version"], p["verdict"], p["against_version"]) == ("1.4.0", "fail", "1.3.2")
    failed = {c["key"] for c in p["checks"] if not c["passed"]}
    assert failed == {"governance.proposals.max_drawdown_worsening"}
    [dd] = [c for c in p["checks"] if c["key"].endswith("max_drawdown_worsening")]
    assert dd["new"] - dd["current"] > 0.002 and dd["detail"].startswith("REV")
    report = Path(p["report"])
    assert p["report_digest"] == "sha256:" + sha256(report.read_bytes()).hexdigest()
    html = report.read_text("utf-8")
    assert 'class="fail"' in html and "sleeves.rev.delta.min" in html
    assert "sleeves.rev.delta.min: 0.3 → 0.9" in printed  # the semantic diff first
    assert {f.name for f in out.iterdir()} >= {
        "current.db",
        "new.db",
        "report.html",
        "compare.html",
    }
    compared = "sha256:" + sha256((out / "compare.html").read_bytes()).hexdigest()
    assert compared in html  # the report names the comparison's digest: one digest covers both

    # 2. a person cannot approve it without naming an override
    assert main(["constitution", "approve", "1.4.0", "--reason", "looks fine", "--db",
                 str(db)]) == 2  # fmt: skip
    assert "failed its gate" in capsys.readouterr().err

    # 3. a live daemon refuses to start on it (before connecting to the broker)
    with pytest.raises(NotApproved) as refused:
        _live(url, risky, gateway, ShiftedClock())
    assert refused.value.exit_code == 2 and refused.value.problems[0].code == "not-approved"
    assert gateway.placed_orders() == []

    # 4. a live daemon running the bundled version refuses it as a hot swap ...
    watched = tmp_path / "constitution.yaml"
    watched.write_text(bundled_path().read_text("utf-8"), "utf-8")
    bundled = load_constitution(watched)
    daemon = _live(url, watched, gateway, ShiftedClock())
    daemon.start()
    try:
        watched.write_text(risky.read_text("utf-8"), "utf-8")
        [refusal] = wait_until(lambda: _notes(url, "constitution_refused"), 60, "the refusal")
        assert "not-approved" in refusal["problems"][0]
        assert refusal["running"]["digest"] == bundled.digest
        assert _notes(url, "constitution_swapped") == []

        # 5. ... until a person overrides the failed gate, with a reason: then it is swapped in
        assert main(["constitution", "approve", "1.4.0", "--override", "--reason",
                     "accepted: paper results reviewed", "--by", "cro", "--db", str(db)]) == 0  # fmt: skip
        [swap] = wait_until(lambda: _notes(url, "constitution_swapped"), 60, "the swap")
    finally:
        daemon.request_stop()
        assert daemon.shutdown() == 0
    assert swap["to"]["digest"] == load_constitution(risky).digest
    assert swap["from"]["digest"] == bundled.digest

    # the history names the failed proposal and the override, who and why
    capsys.readouterr()
    assert main(["constitution", "history", "--db", str(db), "--json"]) == 0
    rows = {r["version"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["1.4.0"]["standing"] == "override"
    [approval] = rows["1.4.0"]["approvals"]
    assert (approval["approved_by"], approval["override"]) == ("cro", 1)
    assert approval["reason"] == "accepted: paper results reviewed"
    assert rows["1.3.1"]["standing"] == "bundled" and rows["1.3.1"]["first_run"]
