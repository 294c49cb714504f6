"""Cache-aware dispatch end to end in the controller (controller/dispatch.py cache_aware,
service.py, store prefix maps), with the gateway's routing key (openai_api/affinity.py)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from harness import loopback, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.app import create_app
from controller.settings import ControllerSettings
from openai_api.affinity import prefix_keys
from openai_api.app import create_app as gateway_app
from openai_api.settings import GatewaySettings
from protocol.openai import ChatCompletionRequest

SYSTEM = {"role": "system", "content": "You are terse."}


def reg(worker_id: str) -> dict[str, Any]:
    port = 9000 + sum(map(ord, worker_id))
    url = f"http://127.0.0.1:{port}"
    return {"worker_id": worker_id, "url": url, "models": ["m"], "capacity": 8}


def turns(conversation: str, n: int) -> list[list[str]]:
    """The routing keys of each of `n` turns of one conversation (each resends the history)."""
    messages: list[dict[str, str]] = [SYSTEM]
    keys = []
    for i in range(n):
        messages.append({"role": "user", "content": f"{conversation}: question {i}"})
        body = ChatCompletionRequest.model_validate({"model": "m", "messages": messages})
        keys.append(list(prefix_keys(body)))
        messages.append({"role": "assistant", "content": f"answer {i}"})
    return keys


@contextlib.asynccontextmanager
async def controller(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ControllerSettings(policy="cache_aware", **settings))
    async with serve(app) as client:
        yield client


async def dispatch(c: httpx.AsyncClient, keys: list[str], release: bool = True) -> str:
    r = await c.post("/internal/dispatch", json={"model": "m", "prefix_keys": keys})
    assert r.status_code == 200, r.text
    worker_id: str = r.json()["worker_id"]
    if release:
        await c.post("/internal/release", json={"worker_ids": [worker_id]})
    return worker_id


def test_turns_of_one_conversation_share_their_leading_keys() -> None:
    first, second = turns("c1", 2)
    assert second[: len(first)] == first and len(second) == len(first) + 2
    other = turns("c2", 1)[0]
    assert other[0] == first[0]  # the same system prompt
    assert other[1] != first[1]  # a different first question


async def test_each_conversation_stays_on_one_worker() -> None:
    async with controller() as c:
        for w in ("a", "b", "c"):
            await c.post("/internal/register", json=reg(w))
        conversations = {name: turns(name, 5) for name in ("x", "y", "z", "u", "v", "w")}
        served: dict[str, set[str]] = {name: set() for name in conversations}
        for i in range(5):  # turns interleaved, as real traffic comes; first turns still open
            for name, keys in conversations.items():
                served[name].add(await dispatch(c, keys[i], release=i > 0))
        assert all(len(workers) == 1 for workers in served.values()), served
        # and the conversations (one system prompt for all) are spread by load, not piled on
        # the worker that served the system prompt last
        assert Counter(next(iter(w)) for w in served.values()) == {"a": 2, "b": 2, "c": 2}


async def test_without_cache_aware_the_turns_spread() -> None:
    """The control: shortest_queue ignores the key, so a conversation moves around."""
    async with serve(create_app(ControllerSettings(policy="shortest_queue"))) as c:
        for w in ("a", "b", "c"):
            await c.post("/internal/register", json=reg(w))
        keys = turns("x", 6)
        held = [await dispatch(c, keys[i], release=False) for i in range(6)]
        assert len(set(held)) == 3


async def test_turns_move_when_their_worker_dies() -> None:
    async with controller() as c:
        for w in ("a", "b"):
            await c.post("/internal/register", json=reg(w))
        keys = turns("x", 4)
        home = await dispatch(c, keys[0])
        assert await dispatch(c, keys[1]) == home
        await c.post("/internal/deregister", json={"worker_id": home})
        moved = await dispatch(c, keys[2])
        assert moved != home
        await c.post("/internal/register", json=reg(home))  # back, but its cache is cold
        assert await dispatch(c, keys[3]) == moved  # the conversation stays where it moved
        text = (await c.get("/metrics")).text
        outcomes = {
            line.split('"')[1]: float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("corral_controller_cache_affinity_total{")
        }
        assert outcomes == {"none": 1, "holder": 2, "moved": 1}


async def test_turns_move_when_their_worker_is_overloaded() -> None:
    async with controller(cache_load_margin=2) as c:
        for w in ("a", "b"):
            await c.post("/internal/register", json=reg(w))
        keys = turns("x", 3)
        home = await dispatch(c, keys[0])
        # the home worker gets busy: 3 in flight, the other none (over the margin of 2)
        await c.post("/internal/heartbeat", json={"worker_id": home, "in_flight": 2})
        assert await dispatch(c, keys[1]) == home  # 2 beyond the other: within the margin
        await c.post("/internal/heartbeat", json={"worker_id": home, "in_flight": 3})
        moved = await dispatch(c, keys[2])
        assert moved != home


async def test_requests_without_keys_go_to_the_shortest_queue() -> None:
    async with controller() as c:
        for w in ("a", "b"):
            await c.post("/internal/register", json=reg(w))
        held = [await dispatch(c, [], release=False) for _ in range(4)]
        assert Counter(held) == {"a": 2, "b": 2}


async def test_two_controllers_on_redis_agree(redis_url: str) -> None:
    """A turn dispatched by one controller is found by the other: the map is in the store."""
    async with controller(store_url=redis_url) as one, controller(store_url=redis_url) as two:
        for w in ("a", "b", "c"):
            await one.post("/internal/register", json=reg(w))
        conversations = {name: turns(name, 4) for name in ("x", "y", "z", "u")}
        served: dict[str, set[str]] = {name: set() for name in conversations}
        for i in range(4):
            for name, keys in conversations.items():
                c = one if i % 2 == 0 else two  # alternate controllers turn by turn
                served[name].add(await dispatch(c, keys[i]))
        assert all(len(workers) == 1 for workers in served.values()), served
        # a death seen through either controller moves the conversation for both
        home = next(iter(served["x"]))
        await two.post("/internal/deregister", json={"worker_id": home})
        extra = turns("x", 6)
        moved = await dispatch(one, extra[4])
        assert moved != home
        assert await dispatch(two, extra[5]) == moved


@pytest.mark.parametrize("bad", [["k"] * 33, "not-a-list", [1, 2]])
async def test_bad_prefix_keys_are_400(bad: Any) -> None:
    async with controller() as c:
        await c.post("/internal/register", json=reg("a"))
        r = await c.post("/internal/dispatch", json={"model": "m", "prefix_keys": bad})
        assert r.status_code == 400
        assert r.json()["error"]["param"].startswith("prefix_keys")


async def _answer(request: Request) -> Response:
    body = await request.json()
    message = {"role": "assistant", "content": "ok"}
    return JSONResponse(
        {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


async def test_the_gateway_sends_the_routing_key() -> None:
    """Through the gateway: each conversation's turns reach one worker (x-corral-worker)."""
    worker = Starlette(routes=[Route("/v1/chat/completions", _answer, methods=["POST"])])
    settings = ControllerSettings(policy="cache_aware", allowed_worker_hosts=["*"])
    async with contextlib.AsyncExitStack() as stack:
        ctl_url = await stack.enter_async_context(loopback(create_app(settings)))
        async with httpx.AsyncClient(base_url=ctl_url) as c:
            for name in ("a", "b", "c"):
                url = await stack.enter_async_context(loopback(worker))
                body = {"worker_id": name, "url": url, "models": ["m"], "capacity": 8}
                assert (await c.post("/internal/register", json=body)).status_code == 200
        gw = await stack.enter_async_context(
            serve(gateway_app(GatewaySettings(controller_urls=[ctl_url])))
        )
        history: dict[str, list[dict[str, str]]] = {n: [SYSTEM] for n in ("x", "y", "z")}
        served: dict[str, set[str]] = {n: set() for n in history}
        for i in range(4):
            for name, messages in history.items():
                messages.append({"role": "user", "content": f"{name}: question {i}"})
                r = await gw.post("/v1/chat/completions", json={"model": "m", "messages": messages})
                assert r.status_code == 200, r.text
                served[name].add(r.headers["x-corral-worker"])
                messages.append({"role": "assistant", "content": "ok"})
        assert all(len(workers) == 1 for workers in served.values()), served


def test_completions_are_keyed_by_whole_prompt_blocks_and_embeddings_not_at_all() -> None:
    from openai_api.affinity import BLOCK
    from protocol.openai import CompletionRequest, EmbeddingRequest

    def keys(prompt: str) -> tuple[str, ...]:
        return prefix_keys(CompletionRequest.model_validate({"model": "m", "prompt": prompt}))

    short, long = keys("x" * (BLOCK - 1)), keys("x" * (2 * BLOCK + 5))
    assert short == () and len(long) == 2
    assert keys("x" * BLOCK + "y" * BLOCK)[0] == long[0]  # the same first block
    body = EmbeddingRequest.model_validate({"model": "m", "input": "x" * 5000})
    assert prefix_keys(body) == ()
