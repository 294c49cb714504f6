"""Every service is built the same way: `create_app(settings, ...)` takes the parts a test
wants to control, the lifespan opens the rest as the state (`app.state.service`) and closes
only what it opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import loopback, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from controller.state import ControllerState
from openai_api.app import create_app as gateway_app
from openai_api.settings import GatewaySettings
from openai_api.state import GatewayState
from protocol.control import DispatchReply, Endpoint, ModelStatus, WorkerRegistration
from protocol.errors import ModelNotFound
from store.apikeys import digest
from store.base import ApiKey
from store.memory import MemoryRegistry
from store.memory_limits import MemoryRateLimiter

SECRET = "sk-test-secret"


class FakeKeys:
    """A key store with one key, allowed one model."""

    def __init__(self) -> None:
        self.closed = False
        self.key = ApiKey("key_1", "test", SECRET[:10], digest(SECRET), models=["m"])

    async def create(
        self, name: str, models: list[str] | None, rpm: int | None, tpm: int | None
    ) -> tuple[str, ApiKey]:
        raise NotImplementedError

    async def list(self) -> list[ApiKey]:
        return [self.key]

    async def revoke(self, key_id: str) -> bool:
        return False

    async def lookup(self, secret: str) -> ApiKey | None:
        return self.key if secret == SECRET else None

    async def any_keys(self) -> bool:
        return True

    async def close(self) -> None:
        self.closed = True


class FakeController:
    """Sends every request for "m" to one worker; records dispatches and releases."""

    def __init__(self, worker_url: str) -> None:
        self.worker_url = worker_url
        self.dispatched: list[tuple[str, str]] = []
        self.released: list[str] = []

    async def dispatch(self, model: str, endpoint: Endpoint, exclude: list[str]) -> DispatchReply:
        if model != "m":
            raise ModelNotFound(f"no model {model!r}", param="model")
        self.dispatched.append((model, endpoint))
        return DispatchReply(worker_id="w1", url=self.worker_url)

    async def models(self) -> list[ModelStatus]:
        return [ModelStatus(id="m", workers=1, capacity=1, in_flight=0)]

    def release(self, worker_id: str) -> None:
        self.released.append(worker_id)


async def _worker(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"object": "chat.completion", "model": body["model"], "choices": []})


async def test_the_gateway_runs_on_a_fake_store_and_controller(tmp_path: Path) -> None:
    worker = Starlette(routes=[Route("/v1/chat/completions", _worker, methods=["POST"])])
    keys, limiter = FakeKeys(), MemoryRateLimiter()
    # a store URL that cannot be opened: nothing may be opened from it
    settings = GatewaySettings(
        store_url="redis://127.0.0.1:1/0", controller_urls=[], require_keys=True
    )
    async with loopback(worker) as url:
        controller = FakeController(url)
        app = gateway_app(settings, keys=keys, limiter=limiter, controller=controller)
        async with serve(app) as client:
            state = app.state.service
            assert isinstance(state, GatewayState) and state.controller is controller
            auth = {"Authorization": f"Bearer {SECRET}"}
            assert (await client.get("/v1/models")).status_code == 401
            listed = await client.get("/v1/models", headers=auth)
            assert [m["id"] for m in listed.json()["data"]] == ["m"]
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            reply = await client.post("/v1/chat/completions", json=chat, headers=auth)
            assert reply.status_code == 200 and reply.json()["model"] == "m"
            assert controller.dispatched == [("m", "chat")]
            assert controller.released == ["w1"]
        assert app.state.service is None
    assert not keys.closed  # the test's parts are the test's to close


@pytest.mark.parametrize("secret", [None, "s3cret"])
async def test_the_controller_runs_on_a_given_registry(secret: str | None) -> None:
    registry = MemoryRegistry(ttl=60)
    await registry.register(
        WorkerRegistration(worker_id="w1", url="http://h:1", models=["m"], capacity=2)
    )
    app = controller_app(ControllerSettings(control_secret=secret), registry=registry)
    async with serve(app) as client:
        state = app.state.service
        assert isinstance(state, ControllerState) and state.controller.registry is registry
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        listed = await client.get("/internal/models", headers=headers)
        assert [m["id"] for m in listed.json()["models"]] == ["m"]
        if secret:
            assert (await client.get("/internal/models")).status_code == 401
    assert await registry.live_workers() != []  # not closed, still usable
