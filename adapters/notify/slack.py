"""Slack incoming webhook: one message per alert. The URL (a secret) is never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.notify.http import post
from engine.records.alerts import Alert

if TYPE_CHECKING:
    import httpx


class SlackNotifier:
    def __init__(self, name: str, url: str, timeout: float, client: httpx.Client | None = None):
        self.name = name
        self._url = url
        self._timeout = timeout
        self._client = client

    def send(self, alert: Alert) -> None:
        # Slack cannot drop repeats itself: the dedupe key is in the text for the reader.
        text = f"{alert.text()}\n{alert.message}\n`{alert.key}`"
        post(self.name, self._url, {"text": text}, {}, self._timeout, self._client)
