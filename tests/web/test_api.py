"""The JSON API against its own OpenAPI document, and its figures against the database:
a real ``alluse serve`` on a free loopback port over a short backtest's database."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

GETS = (
    "/api/overview",
    "/api/decisions",
    "/api/decisions?account=GEN&rule=mode.account_inherits_market&limit=5",
    "/api/decisions?kind=open_short_put",
    "/api/decisions?verdict=approved&since=2024-01-30&until=2024-02-08",
    "/api/decisions?q=TSLA",
    "/api/accounts",
    "/api/positions",
    "/api/ledger",
    "/api/alerts",
    "/api/chain",
    "/api/reports",
)


@pytest.fixture(scope="module")
def spec(server):
    document = httpx.get(f"{server}/openapi.json").json()
    validate(document)  # a valid OpenAPI 3.x document
    return document


@pytest.fixture(scope="module")
def sql(backtest_db):
    conn = sqlite3.connect(f"file:{backtest_db}?mode=ro", uri=True)
    yield conn
    conn.close()


def _schema(spec, template: str, method: str = "get", status: str = "200") -> dict:
    content = spec["paths"][template][method]["responses"][status]["content"]["application/json"]
    return {**content["schema"], "components": spec["components"]}


def _check(spec, response: httpx.Response, template: str, method: str = "get") -> object:
    """The body, validated against the OpenAPI response schema of ``template``."""
    assert response.status_code == 200, (template, response.text)
    body = response.json()
    schema = _schema(spec, template.split("?")[0], method)
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    return body


@pytest.mark.parametrize("path", GETS)
def test_every_get_endpoint_answers_what_its_schema_says(server, spec, path):
    _check(spec, httpx.get(server + path), path)


def test_the_decision_endpoint_and_replay_follow_their_schemas(server, spec):
    first = httpx.get(f"{server}/api/decisions?limit=1").json()[0]
    path = f"{server}/api/decisions/{first['decision_id']}"
    detail = _check(spec, httpx.get(path), "/api/decisions/{ident}")
    assert detail["summary"] == first
    replayed = _check(spec, httpx.post(path + "/replay"), "/api/decisions/{ident}/replay", "post")
    assert replayed["decision_id"] == first["decision_id"]


def test_unknown_decisions_and_bad_filters_are_clear_errors(server):
    assert httpx.get(f"{server}/api/decisions/d-nope").status_code == 404
    assert httpx.post(f"{server}/api/decisions/d-nope/replay").status_code == 404
    bad = httpx.get(f"{server}/api/decisions?since=yesterday")
    assert bad.status_code == 422 and "since" in bad.json()["detail"]
    assert httpx.get(f"{server}/api/decisions?verdict=maybe").status_code == 422


def test_decision_filters_select_what_the_log_holds(server, sql):
    def ids(query: str) -> set[int]:
        return {d["seq"] for d in httpx.get(f"{server}/api/decisions?limit=500&{query}").json()}

    rows = sql.execute(
        "SELECT seq, search, body FROM audit_record WHERE record_type = 'decision'"
    ).fetchall()
    assert ids("") == {r[0] for r in rows}
    assert (
        ids("kind=open_short_put")
        == {r[0] for r in rows if " kind:open_short_put " in r[1]}
        != set()
    )
    assert ids("account=GEN&rule=mode.account_inherits_market") == {
        r[0]
        for r in rows
        if " account:GEN " in r[1] and " rule:mode.account_inherits_market " in r[1]
    }
    assert ids("q=TSLA") == {r[0] for r in rows if "TSLA" in r[2]}
    since = {r[0] for r in rows if json.loads(r[2])["decision"]["as_of"] >= "2024-02-05"}
    assert ids("since=2024-02-05T05:00:00Z") == since  # midnight in New York, in UTC
    assert ids("since=2024-02-05") == since  # a date is a New York trading day
    assert httpx.get(f"{server}/api/decisions?limit=3").json()[0]["seq"] == max(r[0] for r in rows)


def test_replay_through_the_api_says_what_audit_replay_says(server, backtest_db, capsys):
    from scheduler.cli import main

    for seq in (1, 2):
        api = httpx.post(f"{server}/api/decisions/{seq}/replay").json()
        code = main(["audit", "replay", "--db", str(backtest_db), str(seq), "--json"])
        cli = json.loads(capsys.readouterr().out)
        assert api["identical"] == cli["identical"] == (code == 0)
        assert api["differences"] == cli["differences"]


def test_positions_carry_side_mark_and_pnl_consistent_with_the_ledger(server, sql):
    positions = httpx.get(f"{server}/api/positions").json()
    held = sql.execute(
        "SELECT account, contract_key, quantity, avg_price FROM ledger_position"
    ).fetchall()
    assert {(p["account"], p["contract"], p["quantity"]) for p in positions} == {
        (a, k, q) for a, k, q, _ in held
    }
    for p in positions:
        assert p["side"] == ("short" if p["quantity"] < 0 else "long")
        if p["mark"] is not None:
            multiplier = 1 if p["instrument"] == "stock" else 100
            assert p["market_value"] == pytest.approx(
                p["quantity"] * multiplier * p["mark"], abs=0.01
            )
            assert p["pnl"] == pytest.approx(
                p["market_value"] - p["quantity"] * multiplier * p["avg_price"], abs=0.01
            )


def test_overview_shows_every_account_and_the_verified_chain(server, sql):
    o = httpx.get(f"{server}/api/overview").json()
    accounts = {r[0] for r in sql.execute("SELECT id FROM ledger_account")}
    assert {a["id"] for a in o["accounts"]} == accounts
    (count,) = sql.execute("SELECT COUNT(*) FROM audit_record").fetchone()
    assert o["chain"]["ok"] and o["chain"]["count"] == count
    assert (
        o["chain"]["checkpoint"] is None and "no signed checkpoint" in o["chain"]["checkpoint_note"]
    )
    assert o["scheduler"]["state"] == "none"  # a backtest's database: no daemon ran on it


def test_health_readiness_and_metrics(server, sql):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["ready"] and {c["name"] for c in ready["checks"]} == {"database", "chain"}
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{server}/metrics").text)
    }
    orders = {s.labels["state"]: s.value for s in families["alluse_orders"].samples}
    assert orders == {
        s: float(n)
        for s, n in sql.execute("SELECT state, COUNT(*) FROM ledger_order GROUP BY state")
    }
    decisions = {
        s.labels["mode"]: s.value
        for s in families["alluse_decisions"].samples
        if s.name.endswith("_total")
    }
    (n,) = sql.execute(
        "SELECT COUNT(*) FROM audit_record WHERE record_type = 'decision'"
    ).fetchone()
    assert decisions == {"backtest": float(n)}
    assert [s.value for s in families["alluse_chain_ok"].samples] == [1.0]
    for name in ("alluse_cycles", "alluse_alerts", "alluse_decision_latency_seconds"):
        assert name in families  # present, possibly without samples on a backtest's database
    assert "alluse_last_checkpoint_age_seconds" not in families  # no checkpoint: no made-up age


def test_alerts_by_severity_in_metrics_match_the_alert_actions(server, sql):
    expected = Counter()
    for (body,) in sql.execute(
        "SELECT body FROM audit_record WHERE record_type = 'decision' AND search LIKE '% kind:alert %'"
    ):
        for a in json.loads(body)["decision"]["actions"]:
            if a["kind"] == "alert":
                expected[a["params"]["severity"]] += 1
    assert expected  # the backtest's window has an L1 breach (a warning)
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{server}/metrics").text)
    }
    got = {
        s.labels["severity"]: s.value
        for s in families["alluse_alerts"].samples
        if s.name.endswith("_total")
    }
    assert got == {k: float(v) for k, v in expected.items()}
    assert len(httpx.get(f"{server}/api/alerts").json()) == sum(expected.values())
