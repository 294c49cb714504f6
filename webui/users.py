"""Who is voting, as the server knows it: a signed user cookie the server issues.

Gradio's session hash is chosen by the client, so limits keyed on it can be dodged by a
script. Instead `UserCookies` (an ASGI middleware) gives every browser a random user id signed
with an HMAC; a request without a valid one gets a fresh id (and a Set-Cookie). The verified id
reaches the handlers as the `x-corral-user` request header, which the middleware always
overwrites, so a client can neither forge an id nor pick one. A script that drops its cookies
gets a new id each time; the per-address limits and caps catch that.

The client address comes from uvicorn, which honours X-Forwarded-For only from the trusted
proxies (`trusted_proxies`, passed to uvicorn as `forwarded_allow_ips`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie
from typing import Any

COOKIE = "corral_user"
HEADER = b"x-corral-user"
MAX_AGE_S = 365 * 86_400

Scope = dict[str, Any]


class UserIds:
    """Issues and checks signed user ids: `<id>.<hmac>`."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"corral user cookie\0" + key).digest()

    def _sign(self, user: str) -> str:
        return hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> tuple[str, str]:
        """A new (user id, cookie value)."""
        user = secrets.token_hex(16)
        return user, f"{user}.{self._sign(user)}"

    def verify(self, value: str | None) -> str | None:
        """The user id of a valid cookie value, else None."""
        if not value or value.count(".") != 1:
            return None
        user, signature = value.split(".")
        return user if hmac.compare_digest(signature, self._sign(user)) else None


class UserCookies:
    """ASGI middleware: every HTTP request leaves with a verified `x-corral-user` header."""

    def __init__(self, app: Any, ids: UserIds, secure: bool = False) -> None:
        self.app = app
        self.ids = ids
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != HEADER]
        user = self.ids.verify(_cookie(headers))
        set_cookie = None
        if user is None:
            user, value = self.ids.issue()
            set_cookie = (
                f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Lax"
                + ("; Secure" if self.secure else "")
            ).encode()
        scope = {**scope, "headers": [*headers, (HEADER, user.encode())]}

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if set_cookie is not None and message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: treat as none
                continue
            if COOKIE in jar:
                return jar[COOKIE].value
    return None
