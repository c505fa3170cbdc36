"""One HTTP POST for the webhook notifiers (httpx), with failures as ``DeliveryFailed``.

Messages name the destination and what went wrong, never the URL (it may hold a token)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.records.alerts import DeliveryFailed

if TYPE_CHECKING:
    import httpx


def post(
    name: str,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout: float,
    client: httpx.Client | None = None,
    raw: bytes | None = None,
) -> None:
    import httpx  # the 'alerts' extra: only a Slack or webhook destination needs it

    content = raw if raw is not None else json.dumps(body, sort_keys=True).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    try:
        if client is not None:
            response = client.post(url, content=content, headers=all_headers, timeout=timeout)
        else:
            response = httpx.post(url, content=content, headers=all_headers, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"{name}: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{name}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"{name}: HTTP {response.status_code}")
