"""The daemon's delivery job: at start it sends what a previous run left unacknowledged (the
restart resend), on its own worker thread beside the cycles; a stalled endpoint holds up no
cycle."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from werkzeug import Response

from adapters.deployment import load_deployment
from adapters.storage.outbox import SqlOutbox
from constitution.load import bundled_path
from engine.clock import FixedClock
from scheduler.daemon import Daemon, DaemonConfig
from tests.notify.test_delivery import alert
from tests.scheduler.fake_cycle import FakeCycle
from tests.waiting import wait_until


def test_a_restarted_daemon_delivers_what_was_left_and_a_stalled_endpoint_holds_no_cycle(
    tmp_path, httpserver, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    (tmp_path / "alluse.yaml").write_text(
        f"""alerts:
  destinations:
    hooks: {{type: webhook, url: "{httpserver.url_for("/a")}", secret_env: ALLUSE_TEST_SECRET,
             timeout_seconds: 30}}
  routes:
    - {{to: [hooks]}}
"""
    )
    monkeypatch.setenv("ALLUSE_TEST_SECRET", "s3cret-value")
    config = load_deployment(tmp_path / "alluse.yaml")
    left = SqlOutbox.open(url, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), config.alerts)
    left.put([alert("alluse:d-old:0")])  # a previous run recorded it, then died
    left.close()
    got: list[str] = []
    answer = threading.Event()

    def stall(request):
        got.append(request.headers["X-AllUse-Key"])
        answer.wait(60)  # the endpoint takes its time
        return Response("ok")

    httpserver.expect_request("/a").respond_with_handler(stall)
    cycles: list[FakeCycle] = []

    def build(c):
        cycles.append(FakeCycle(c))
        return cycles[-1]

    daemon = Daemon(
        DaemonConfig(constitution=bundled_path(), db_url=url, every=0.1, deployment=config),
        build,
    )
    daemon.start()  # returns at once: delivery is the notify thread's
    try:
        wait_until(lambda: got, 60, "the left-over alert at the endpoint")
        wait_until(lambda: len(cycles[0].calls) >= 3, 60, "cycles while the endpoint stalls")
        assert len(got) == 1 and not answer.is_set()  # still stalled: no cycle waited for it
        answer.set()
        wait_until(lambda: _sent(url, config), 60, "the delivery acknowledged")
    finally:
        answer.set()
        daemon.request_stop()
        daemon.shutdown()
    assert got == ["alluse:d-old:0"]  # once: acknowledged, never resent


def _sent(url: str, config) -> bool:
    outbox = SqlOutbox.open(url, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), config.alerts)
    try:
        [listed] = outbox.listed()
    finally:
        outbox.close()
    return listed.deliveries[0].state == "sent"
