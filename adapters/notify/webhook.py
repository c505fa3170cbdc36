"""A generic JSON webhook: the alert as canonical JSON, signed with HMAC-SHA256.

Request (docs/operations.md)::

    POST <url>
    Content-Type: application/json
    X-AllUse-Key: <dedupe key>            the same on every resend: drop what you have seen
    X-AllUse-Signature: sha256=<hex>      HMAC-SHA256 of the exact body bytes, keyed by the secret

    {"alert": {...every Alert field...}, "source": "alluse"}

The body is canonical (sorted keys, no spaces), so a resend carries the same bytes and the
same signature.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from adapters.notify.http import post
from constitution.canonical import canonical_json
from engine.records.alerts import Alert

if TYPE_CHECKING:
    import httpx

KEY_HEADER = "X-AllUse-Key"
SIGNATURE_HEADER = "X-AllUse-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(alert: Alert) -> bytes:
    return canonical_json({"alert": alert.model_dump(mode="json"), "source": "alluse"})


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        timeout: float,
        client: httpx.Client | None = None,
    ):
        self.name = name
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._client = client

    def send(self, alert: Alert) -> None:
        body = body_of(alert)
        headers = {KEY_HEADER: alert.key, SIGNATURE_HEADER: signature(self._secret, body)}
        post(self.name, self._url, None, headers, self._timeout, self._client, raw=body)
