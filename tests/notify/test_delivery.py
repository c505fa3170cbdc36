"""The outbox delivered to real local servers: a JSON webhook and a Slack-style webhook on
pytest-httpserver, e-mail on aiosmtpd. Retries after 500s and timeouts with backoff on the
outbox's clock, at least once across a crash between send and acknowledge (same key), and
no secret in anything stored or printed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug import Response

from adapters.notify.config import AlertsConfig
from adapters.notify.dispatch import build_notifiers, deliver_due
from adapters.notify.secrets import Secrets
from adapters.notify.smtp import message_id
from adapters.notify.webhook import KEY_HEADER, SIGNATURE_HEADER
from adapters.storage.outbox import SqlOutbox
from engine.clock import FixedClock
from engine.records.alerts import Alert

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SECRET = "hook-secret-5f2d9c"
SLACK_TOKEN = "T000/B000/slacktoken8842"


def alert(key: str = "alluse:d-1:0", severity: str = "critical", kind: str = "kill_switch"):
    return Alert(
        key=key,
        kind=kind,
        severity=severity,
        title="kill switch: vix_kill",
        message="VIX above the kill-switch level",
        at=T0.isoformat(),
        mode="paper",
        condition=f"{kind}:{key}",
    )


def config(httpserver, smtp_port: int | None = None, **extra) -> AlertsConfig:
    destinations = {
        "hooks": {"type": "webhook", "url": httpserver.url_for("/hook"), "secret_env": "HOOK_SECRET",
                  "timeout_seconds": 0.5},
        "chat": {"type": "slack", "url_env": "SLACK_URL", "timeout_seconds": 0.5},
    }  # fmt: skip
    if smtp_port:
        destinations["mail"] = {
            "type": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "alluse@example.org",
            "to": ["ops@example.org"],
            "timeout_seconds": 2,
        }
    return AlertsConfig.model_validate(
        {
            "destinations": destinations,
            "routes": [{"to": sorted(destinations)}],
            "retry": {"first_seconds": 30, "max_seconds": 300},
            **extra,
        }
    )


def env(httpserver) -> dict[str, str]:
    return {"HOOK_SECRET": SECRET, "SLACK_URL": httpserver.url_for(f"/services/{SLACK_TOKEN}")}


@pytest.fixture
def clock():
    return FixedClock(T0)


def outbox_for(tmp_path, clock, cfg):
    return SqlOutbox.open(f"sqlite:///{tmp_path / 'alerts.db'}", clock, cfg)


def test_an_alert_reaches_the_webhook_signed_slack_with_its_key_and_smtp_once(
    tmp_path, clock, httpserver, smtp_server
):
    cfg = config(httpserver, smtp_server.port)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    httpserver.expect_request(f"/services/{SLACK_TOKEN}", method="POST").respond_with_data("ok")
    outbox = outbox_for(tmp_path, clock, cfg)
    secrets = Secrets(env(httpserver))
    outbox.put([alert()])

    report = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)
    again = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)

    assert sorted(d for _, d in report.sent) == ["chat", "hooks", "mail"] and not report.failed
    assert again.sent == [] and again.failed == []  # acknowledged: never sent twice
    hook = next(r for r, _ in httpserver.log if r.path == "/hook")
    body = hook.get_data()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hook.headers[SIGNATURE_HEADER] == expected
    assert hook.headers[KEY_HEADER] == "alluse:d-1:0"
    assert json.loads(body)["alert"]["kind"] == "kill_switch"
    slack = next(r for r, _ in httpserver.log if r.path.startswith("/services/"))
    assert "alluse:d-1:0" in json.loads(slack.get_data())["text"]
    [mail] = smtp_server.messages
    assert mail["Message-ID"] == message_id("alluse:d-1:0") and "kill switch" in mail["Subject"]
    assert all(d.state == "sent" for x in outbox.listed() for d in x.deliveries)


def test_a_500_is_retried_after_the_backoff_and_not_before(tmp_path, clock, httpserver):
    cfg = AlertsConfig.model_validate(
        {
            "destinations": {"hooks": config(httpserver).destinations["hooks"]},
            "routes": [{"to": ["hooks"]}],
            "retry": {"first_seconds": 30, "max_seconds": 300},
        }
    )
    secrets = Secrets(env(httpserver))
    notifiers = build_notifiers(cfg, secrets)
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert()])
    httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=500)
    httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=503)

    first = deliver_due(outbox, notifiers, secrets)
    assert first.failed == [("alluse:d-1:0", "hooks", "hooks: HTTP 500")]
    clock.advance_to(T0 + timedelta(seconds=30) - timedelta(microseconds=1))
    assert outbox.due() == []  # the backoff has not passed
    clock.advance_to(T0 + timedelta(seconds=30))
    second = deliver_due(outbox, notifiers, secrets)
    assert second.failed == [("alluse:d-1:0", "hooks", "hooks: HTTP 503")]
    clock.advance_to(T0 + timedelta(seconds=30 + 60) - timedelta(microseconds=1))
    assert outbox.due() == []  # doubled: 60 s after the second attempt
    clock.advance_to(T0 + timedelta(seconds=90))
    httpserver.expect_request("/hook").respond_with_data("ok")
    third = deliver_due(outbox, notifiers, secrets)

    assert third.sent == [("alluse:d-1:0", "hooks")]
    [listed] = outbox.listed()
    assert listed.deliveries[0].attempts == 3 and listed.deliveries[0].state == "sent"


def test_the_backoff_doubles_up_to_its_cap():
    retry = AlertsConfig.model_validate({"retry": {"first_seconds": 30, "max_seconds": 100}}).retry
    assert [retry.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_a_timeout_is_a_failed_attempt_and_the_next_pass_delivers(tmp_path, clock, httpserver):
    cfg = config(httpserver)
    secrets = Secrets(env(httpserver))
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert()])

    release = threading.Event()

    def slow(request):
        release.wait(5)  # beyond the 0.5 s timeout
        return Response("late")

    httpserver.expect_oneshot_request("/hook").respond_with_handler(slow)
    httpserver.expect_request(f"/services/{SLACK_TOKEN}").respond_with_data("ok")
    report = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)
    assert ("alluse:d-1:0", "hooks", "hooks: timed out after 0.5s") in report.failed
    assert ("alluse:d-1:0", "chat") in report.sent  # one slow destination delays no other

    release.set()  # the stalled server answers (too late) and is free again
    httpserver.expect_request("/hook").respond_with_data("ok")
    clock.advance_to(T0 + timedelta(seconds=30))
    assert deliver_due(outbox, build_notifiers(cfg, secrets), secrets).sent == [
        ("alluse:d-1:0", "hooks")
    ]


class _Crash(BaseException):
    """The process dies right after the destination took the alert, before the ack."""


class _CrashAfterSend:
    def __init__(self, inner):
        self.name, self.inner = inner.name, inner

    def send(self, a):
        self.inner.send(a)
        raise _Crash


def test_a_crash_between_send_and_acknowledge_resends_under_the_same_key(
    tmp_path, clock, httpserver, smtp_server
):
    cfg = config(httpserver, smtp_server.port)
    httpserver.expect_request("/hook").respond_with_data("ok")
    httpserver.expect_request(f"/services/{SLACK_TOKEN}").respond_with_data("ok")
    secrets = Secrets(env(httpserver))
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert()])
    crashing = {k: _CrashAfterSend(n) for k, n in build_notifiers(cfg, secrets).items()}
    with pytest.raises(_Crash):
        deliver_due(outbox, crashing, secrets)  # 'chat' took it; the process died

    restarted = outbox_for(tmp_path, clock, cfg)  # a new process on the same database
    report = deliver_due(restarted, build_notifiers(cfg, secrets), secrets)

    assert sorted(d for _, d in report.sent) == ["chat", "hooks", "mail"]
    slack = [r for r, _ in httpserver.log if r.path.startswith("/services/")]
    hooks = [r for r, _ in httpserver.log if r.path == "/hook"]
    assert len(slack) == 2  # at least once: the receiver saw it twice ...
    assert {json.loads(r.get_data())["text"].split("`")[1] for r in slack} == {"alluse:d-1:0"}
    assert [r.headers[KEY_HEADER] for r in hooks] == ["alluse:d-1:0"]  # ... the others once
    assert [m["Message-ID"] for m in smtp_server.messages] == [message_id("alluse:d-1:0")]


def test_an_unreachable_smtp_server_loses_nothing(tmp_path, clock, httpserver):
    from tests.notify.conftest import free_port

    cfg = AlertsConfig.model_validate(
        {
            "destinations": {
                "mail": {"type": "smtp", "host": "127.0.0.1", "port": free_port(),
                         "security": "none", "from": "a@example.org", "to": ["b@example.org"],
                         "timeout_seconds": 1}
            },
            "routes": [{"to": ["mail"]}],
        }
    )  # fmt: skip
    secrets = Secrets({})
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert()])
    report = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)
    assert report.failed == [("alluse:d-1:0", "mail", "mail: ConnectionRefusedError")]
    [listed] = outbox.listed(unsent_only=True)
    assert listed.deliveries[0].state == "retrying" and listed.deliveries[0].attempts == 1


def test_quiet_hours_hold_warnings_until_they_end_and_let_critical_through(tmp_path, httpserver):
    night = FixedClock(datetime(2026, 3, 3, 4, 0, tzinfo=UTC))  # 23:00 in New York
    cfg = AlertsConfig.model_validate(
        {
            "destinations": {"hooks": config(httpserver).destinations["hooks"]},
            "routes": [{"to": ["hooks"]}],
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "America/New_York"},
        }
    )
    outbox = outbox_for(tmp_path, night, cfg)
    outbox.put([alert("alluse:d-2:0", "warning", "protocol"), alert("alluse:d-2:1", "critical")])
    assert [d.alert.key for d in outbox.due()] == ["alluse:d-2:1"]
    seven = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # 07:00 New York (EST)
    night.advance_to(seven - timedelta(microseconds=1))
    assert [d.alert.key for d in outbox.due()] == ["alluse:d-2:1"]
    night.advance_to(seven)
    assert sorted(d.alert.key for d in outbox.due()) == ["alluse:d-2:0", "alluse:d-2:1"]


def test_routes_send_each_alert_only_where_its_severity_and_kind_go(tmp_path, clock, httpserver):
    cfg = AlertsConfig.model_validate(
        {
            "destinations": config(httpserver).destinations,
            "routes": [
                {"severities": ["critical"], "to": ["chat"]},
                {"kinds": ["approval"], "to": ["hooks"]},
            ],
        }
    )
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put(
        [
            alert("alluse:k:0", "critical", "kill_switch"),
            alert("alluse:k:1", "warning", "approval"),
            alert("alluse:k:2", "warning", "data"),
        ]
    )
    routed = {x.alert.key: [d.destination for d in x.deliveries] for x in outbox.listed()}
    assert routed == {"alluse:k:0": ["chat"], "alluse:k:1": ["hooks"], "alluse:k:2": []}


def test_no_secret_is_stored_or_printed_when_deliveries_fail(
    tmp_path, clock, httpserver, capsys, monkeypatch
):
    from scheduler.cli import main
    from tests.notify.conftest import free_port

    db = tmp_path / "alerts.db"
    cfg = config(httpserver)
    unreachable = f"http://127.0.0.1:{free_port()}/services/{SLACK_TOKEN}"  # the URL is a secret
    secrets = Secrets({"HOOK_SECRET": SECRET, "SLACK_URL": unreachable})
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert()])
    httpserver.expect_request("/hook").respond_with_data("no", status=500)
    report = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)
    assert len(report.failed) == 2

    (tmp_path / "alluse.yaml").write_text(
        "alerts:\n  destinations:\n    chat: {type: slack, url_env: SLACK_URL}\n"
        "  routes:\n    - {to: [chat]}\n"
    )
    monkeypatch.setenv("SLACK_URL", unreachable)
    code = main(["alerts", "list", "--db", str(db), "--json"])
    code_test = main(["alerts", "test", "--db", str(db)])
    out, err = capsys.readouterr()
    assert code == 0 and code_test == 3  # the test alert could not be delivered
    wal = tmp_path / "alerts.db-wal"
    stored = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for secret in (SECRET, SLACK_TOKEN):
        assert secret not in out and secret not in err
        assert secret.encode() not in stored
    assert "chat: failed:" in out
    listed = json.loads(out[: out.rindex("]") + 1])[0]["deliveries"]
    assert {d["last_error"] for d in listed} == {"chat: ConnectError", "hooks: HTTP 500"}


def test_alerts_list_unsent_shows_only_what_a_destination_still_owes(
    tmp_path, clock, httpserver, capsys, monkeypatch
):
    from scheduler.cli import main
    from tests.notify.conftest import free_port

    cfg = AlertsConfig.model_validate(
        {
            "destinations": config(httpserver).destinations,
            "routes": [
                {"severities": ["critical"], "to": ["hooks"]},
                {"severities": ["warning"], "to": ["chat"]},
            ],
        }
    )
    unreachable = f"http://127.0.0.1:{free_port()}/services/{SLACK_TOKEN}"
    secrets = Secrets({"HOOK_SECRET": SECRET, "SLACK_URL": unreachable})
    outbox = outbox_for(tmp_path, clock, cfg)
    outbox.put([alert("alluse:k:0"), alert("alluse:k:1", severity="warning", kind="stale_data")])
    httpserver.expect_request("/hook").respond_with_data("ok")
    report = deliver_due(outbox, build_notifiers(cfg, secrets), secrets)
    assert [key for key, _ in report.sent] == ["alluse:k:0"] and len(report.failed) == 1
    monkeypatch.chdir(tmp_path)

    def keys(*flags: str) -> list[str]:
        assert main(["alerts", "list", "--db", str(tmp_path / "alerts.db"), "--json", *flags]) == 0
        return sorted(x["alert"]["key"] for x in json.loads(capsys.readouterr().out))

    assert keys() == ["alluse:k:0", "alluse:k:1"]
    assert keys("--unsent") == ["alluse:k:1"]  # the webhook took k:0; chat still owes k:1
