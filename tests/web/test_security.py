"""Who may reach the dashboard: loopback without a token, anything else only with one; the
token as a bearer header or the cookie a first ``?token=`` visit sets; never echoed; writes
refused unless allowed."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends

from scheduler.cli import main
from tests.web.server import serving

TOKEN = "s3cret-token-for-tests"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.invalid"])
def test_binding_beyond_loopback_without_a_token_is_refused(backtest_db, host, capsys, monkeypatch):
    monkeypatch.delenv("ALLUSE_SERVE_TOKEN", raising=False)
    assert main(["serve", "--db", str(backtest_db), "--host", host]) == 2
    assert "token" in capsys.readouterr().err


def test_writes_need_a_token_and_a_missing_database_is_an_operational_error(
    backtest_db, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("ALLUSE_SERVE_TOKEN", raising=False)
    assert main(["serve", "--db", str(backtest_db), "--allow-writes"]) == 2
    assert main(["serve", "--db", str(tmp_path / "none.db")]) == 3
    assert not (tmp_path / "none.db").exists()  # a reader never creates a database
    assert "no ALL-USE database" in capsys.readouterr().err


def test_with_a_token_every_page_and_api_needs_it(backtest_db):
    with serving(backtest_db, env={"ALLUSE_SERVE_TOKEN": TOKEN}) as base:
        for path in ("/", "/api/overview", "/metrics", "/openapi.json", "/decisions/1"):
            denied = httpx.get(base + path)
            assert denied.status_code == 401 and TOKEN not in denied.text
            assert (
                httpx.get(base + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            )
            assert (
                httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                == 200
            )
        assert httpx.get(base + "/healthz").status_code == 200  # probes stay open
        with httpx.Client(base_url=base) as browser:
            first = browser.get(f"/decisions?token={TOKEN}&account=GEN")
            assert (
                first.status_code == 303 and first.headers["location"] == "/decisions?account=GEN"
            )
            assert "httponly" in first.headers["set-cookie"].lower()
            assert browser.get("/decisions?account=GEN").status_code == 200  # the cookie carries it


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_dashboard_is_read_only_unless_writes_are_allowed(backtest_db):
    from fastapi.testclient import TestClient

    from adapters.web.app import ServeConfig, create_app
    from adapters.web.security import require_writes

    def app(**kw):
        made = create_app(ServeConfig(db_url=str(backtest_db), verify_at_start=False, **kw))
        made.post("/api/test-write", dependencies=[Depends(require_writes)])(lambda: {"done": True})
        return made

    with TestClient(app()) as client:
        assert client.post("/api/test-write").status_code == 403
    with TestClient(app(token=TOKEN, writes_allowed=True)) as client:
        assert client.post(
            "/api/test-write", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json() == {"done": True}
