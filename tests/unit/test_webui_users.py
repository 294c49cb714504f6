"""The signed user cookie: issued when missing or forged, and the verified id handed on in a
header the client cannot set."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from webui.users import COOKIE, UserCookies, UserIds

IDS = UserIds(b"salt")


async def whoami(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.headers.get("x-corral-user", ""))


def client() -> httpx.AsyncClient:
    app = UserCookies(Starlette(routes=[Route("/", whoami)]), ids=IDS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_ids_verify_only_their_own_signature() -> None:
    user, value = IDS.issue()
    assert IDS.verify(value) == user
    assert IDS.verify(f"{user}.{'0' * 32}") is None
    assert UserIds(b"other").verify(value) is None
    assert IDS.verify("nodot") is None and IDS.verify(None) is None


async def test_a_new_browser_gets_a_cookie_and_keeps_its_id() -> None:
    async with client() as http:
        first = await http.get("/")
        assert COOKIE in first.cookies
        user = first.text
        assert len(user) == 32 and IDS.verify(first.cookies[COOKIE]) == user
        again = await http.get("/")  # the cookie jar sends it back
        assert again.text == user and "set-cookie" not in again.headers


async def test_a_forged_cookie_or_header_is_replaced() -> None:
    async with client() as http:
        forged = await http.get(
            "/", headers={"cookie": f"{COOKIE}=admin.{'f' * 32}", "x-corral-user": "admin"}
        )
        assert forged.text not in ("admin", "") and COOKIE in forged.cookies
        broken = await http.get("/", headers={"cookie": '"unbalanced'})
        assert IDS.verify(broken.cookies[COOKIE]) == broken.text
