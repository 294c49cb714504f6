"""Who may call a service: the control-secret bearer check, the Host-header check and the
JSON-only rule for request bodies, shared by every service.

- `require_bearer`: a control-plane call carries `Authorization: Bearer <control secret>`,
  compared in constant time.
- `BrowserGuard` (ASGI middleware): a request whose `Host` is not a loopback name, the address
  the service listens on, or an allowed host gets 421 (DNS rebinding: a hostile page's own
  name, resolved to 127.0.0.1); a POST with a body that is not `application/json` gets 415
  (a cross-site form or `text/plain` POST needs no CORS preflight, JSON does). A POST with no
  body at all passes (FastChat's `/list_models` clients send none).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from protocol.errors import AuthenticationFailed, CorralError
from servekit.settings import LOOPBACK_NAMES

WILDCARDS = ("0.0.0.0", "::", "")


def require_bearer(request: Request, secret: str | None) -> None:
    """When `secret` is set, the call must carry it as a bearer token (401 otherwise)."""
    if not secret:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
        raise AuthenticationFailed("missing or wrong control-plane secret", code="invalid_secret")


class MisdirectedRequest(CorralError):
    status_code = 421
    error_type = "invalid_request_error"


class UnsupportedMediaType(CorralError):
    status_code = 415
    error_type = "invalid_request_error"


def allowed_host_names(listen_host: str, allowed: Iterable[str]) -> set[str] | None:
    """The Host names a service answers, or None for any: a service on a wildcard address with
    no allowed hosts configured is reachable by any name already (use --allowed-host there)."""
    extra = {h.lower() for h in allowed}
    if "*" in extra or (listen_host in WILDCARDS and not extra):
        return None
    return {*LOOPBACK_NAMES, listen_host.lower().strip("[]"), *extra}


class BrowserGuard:
    def __init__(self, app: ASGIApp, hosts: set[str] | None, json_only: bool = True) -> None:
        self.app = app
        self.hosts = hosts
        self.json_only = json_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            err = self._refusal(scope)
            if err is not None:
                response = JSONResponse(err.envelope(), status_code=err.status_code)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> CorralError | None:
        headers = {k: v for k, v in scope["headers"] if k in _READ}
        if self.hosts is not None:
            host = _hostname(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                return MisdirectedRequest(
                    f"host {host!r} is not served here (DNS rebinding?); allowed: "
                    f"{', '.join(sorted(self.hosts))} or --allowed-host",
                    code="host_not_allowed",
                )
        if self.json_only and scope["method"] == "POST" and _has_body(headers):
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media != b"application/json":
                return UnsupportedMediaType(
                    f"request body must be application/json, not {media.decode('latin-1')!r}",
                    code="unsupported_media_type",
                )
        return None


_READ = (b"host", b"content-type", b"content-length", b"transfer-encoding")


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


def _hostname(host: str) -> str:
    """`example.com:8000` -> `example.com`, `[::1]:8000` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host
