"""The controller's HTTP surface: /internal/* for workers and gateways, FastChat-style aliases."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from controller.service import Controller
from controller.state import ControllerState
from protocol.control import (
    Deregistration,
    DispatchRequest,
    Heartbeat,
    HeartbeatReply,
    ModelsReply,
    Release,
    WorkerRegistration,
    WorkerStatus,
)
from servekit.app import service_state
from servekit.guard import require_bearer
from servekit.http import parse_body


def _state(request: Request) -> ControllerState:
    return service_state(request, ControllerState)


def _controller(request: Request) -> Controller:
    return _state(request).controller


async def require_secret(request: Request) -> None:
    """When a control secret is set, every /internal call must carry it as a bearer token."""
    require_bearer(request, _state(request).settings.control_secret)


async def register(body: WorkerRegistration, request: Request) -> dict[str, bool]:
    await _controller(request).register(body)
    return {"ok": True}


async def heartbeat(body: Heartbeat, request: Request) -> HeartbeatReply:
    return HeartbeatReply(known=await _controller(request).heartbeat(body))


async def deregister(body: Deregistration, request: Request) -> dict[str, bool]:
    await _controller(request).deregister(body.worker_id)
    return {"ok": True}


# The two calls on every request's path are plain Starlette routes: FastAPI's dependency
# machinery costs more than the work they do.
async def dispatch(request: Request) -> Response:
    await require_secret(request)
    body, _ = await parse_body(request, DispatchRequest)
    reply = await _controller(request).dispatch(body)
    request.state.model = body.model  # only a model with a worker: a bounded metric label
    return Response(reply.model_dump_json(), media_type="application/json")


async def release(request: Request) -> Response:
    await require_secret(request)
    body, _ = await parse_body(request, Release)
    await _controller(request).release(body.worker_ids)
    return Response(b'{"ok":true}', media_type="application/json")


async def models(request: Request) -> ModelsReply:
    return ModelsReply(models=await _controller(request).models())


async def workers(request: Request) -> list[WorkerStatus]:
    return await _controller(request).workers()


async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "policy": _controller(request).policy}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: the state store answers (a StoreUnavailable here is a 503)."""
    workers = await _controller(request).registry.live_workers()
    return {"status": "ready", "live_workers": len(workers)}


# FastChat-compatible control endpoints, for tools written against FastChat's controller.
class _ModelQuery(BaseModel):
    model: str


async def list_models(request: Request) -> dict[str, list[str]]:
    return {"models": [m.id for m in await _controller(request).models()]}


async def get_worker_address(body: _ModelQuery, request: Request) -> dict[str, str]:
    """FastChat semantics: an address, or "" when none; it does not count as a dispatch."""
    live = await _controller(request).registry.live_workers(body.model)
    healthy = sorted((w for w in live if w.healthy), key=lambda w: w.in_flight)
    return {"address": healthy[0].registration.url if healthy else ""}


_secured = [Depends(require_secret)]

ROUTES: list[BaseRoute] = [
    APIRoute("/internal/register", register, methods=["POST"], dependencies=_secured),
    APIRoute("/internal/heartbeat", heartbeat, methods=["POST"], dependencies=_secured),
    APIRoute("/internal/deregister", deregister, methods=["POST"], dependencies=_secured),
    Route("/internal/dispatch", dispatch, methods=["POST"]),
    Route("/internal/release", release, methods=["POST"]),
    APIRoute("/internal/models", models, methods=["GET"], dependencies=_secured),
    APIRoute("/internal/workers", workers, methods=["GET"], dependencies=_secured),
    APIRoute("/list_models", list_models, methods=["POST"], dependencies=_secured),
    APIRoute("/get_worker_address", get_worker_address, methods=["POST"], dependencies=_secured),
    APIRoute("/health", health, methods=["GET"]),
    APIRoute("/ready", ready, methods=["GET"]),
]
