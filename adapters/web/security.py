"""Who may see the dashboard, and who may change anything through it.

Bound to loopback, no token is needed (only this machine's users reach it). Bound to any
other address, ``alluse serve`` refuses to start without a token; with one, every request but
``/healthz`` and ``/readyz`` needs it - ``Authorization: Bearer TOKEN``, or the
``alluse_token`` cookie that opening any page once with ``?token=TOKEN`` sets (HttpOnly,
SameSite=Strict), so a browser can use the pages. Tokens are compared in constant time and
never logged or echoed.

The dashboard is read-only by default: ``require_writes`` guards any route that would change
something (approvals, issue 20); it refuses unless the server was started with writes allowed,
which itself needs a token.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp

COOKIE = "alluse_token"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE) or request.query_params.get("token")


class TokenMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        given = _presented(request)
        if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
            return JSONResponse(
                {"detail": "a token is required (Authorization: Bearer TOKEN)"}, status_code=401
            )
        if "token" in request.query_params:  # move it into a cookie, out of the address bar
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        return await call_next(request)


def require_writes(request: Request) -> None:
    """A FastAPI dependency for routes that change something."""
    if not request.app.state.config.writes_allowed:
        raise HTTPException(
            status_code=403, detail="the dashboard is read-only (alluse serve --allow-writes)"
        )
