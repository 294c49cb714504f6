"""The worker's HTTP surface: its own OpenAI endpoints plus /health and /internal/*.

A body the gateway already validated is validated here again, on purpose: a worker is a
standalone OpenAI server too, and the gateway refuses a bad request before it costs a dispatch.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from model_worker.state import WorkerState
from protocol.errors import InvalidRequest, ModelNotFound, ServiceUnavailable
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from servekit.app import service_state
from servekit.guard import require_bearer
from servekit.http import json_body_doc, parse_body


def _state(request: Request) -> WorkerState:
    return service_state(request, WorkerState)


def _caller(request: Request) -> WorkerState:
    """The state, once the caller may use the OpenAI endpoints: with a control secret set,
    only its holders (the gateways) may, unless the worker is `--public`."""
    state = _state(request)
    if not state.settings.public:
        require_bearer(request, state.settings.control_secret)
    return state


def _internal(request: Request) -> WorkerState:
    state = _state(request)
    require_bearer(request, state.settings.control_secret)
    return state


def _check_model(state: WorkerState, model: str) -> None:
    if not state.backend.healthy():
        raise ServiceUnavailable("model engine is not healthy", code="engine_unhealthy")
    if model not in state.served_models():
        raise ModelNotFound(
            f"model {model!r} is not served by this worker (it serves: "
            f"{', '.join(state.served_models())})",
            param="model",
        )


def _check_generates(state: WorkerState) -> None:
    if not state.backend.can_generate:
        raise InvalidRequest(
            "this worker serves embeddings only", param="model", code="unsupported_endpoint"
        )


async def chat_completions(request: Request) -> Response:
    state = _caller(request)
    body, _ = await parse_body(request, ChatCompletionRequest)
    _check_model(state, body.model)
    request.state.model = body.model  # a served model: a bounded metric label
    _check_generates(state)
    return await state.chat(body, request, state.lora_for(body.model))


async def completions(request: Request) -> Response:
    state = _caller(request)
    body, _ = await parse_body(request, CompletionRequest)
    _check_model(state, body.model)
    request.state.model = body.model  # a served model: a bounded metric label
    _check_generates(state)
    return await state.completion(body, request, state.lora_for(body.model))


async def embeddings(request: Request) -> Response:
    state = _caller(request)
    body, _ = await parse_body(request, EmbeddingRequest)
    _check_model(state, body.model)
    request.state.model = body.model  # a served model: a bounded metric label
    return await state.embedding(body, request)


async def models(request: Request) -> ModelList:
    state = _caller(request)
    length = state.backend.max_model_len or None  # 0 until the engine has loaded
    return ModelList(data=[ModelCard(id=m, max_model_len=length) for m in state.served_models()])


async def health(request: Request) -> dict[str, Any]:
    """Alive: the engine is healthy and the heartbeat loop runs (a worker whose loop died
    left the registry for good: a supervisor should restart it)."""
    state = _state(request)
    if not state.backend.healthy():
        raise ServiceUnavailable("model engine is not healthy", code="engine_unhealthy")
    if state.link is not None and state.link.dead():
        raise ServiceUnavailable("the heartbeat to the controller stopped", code="heartbeat_dead")
    return {"status": "ok"}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: the engine is healthy and, when a controller is configured, registered."""
    state = _state(request)
    if not state.backend.healthy():
        raise ServiceUnavailable("model engine is not healthy", code="engine_unhealthy")
    if state.link is not None and state.link.dead():
        raise ServiceUnavailable("the heartbeat to the controller stopped", code="heartbeat_dead")
    if state.link is not None and not state.link.registered:
        raise ServiceUnavailable("not registered with a controller yet", code="not_registered")
    return {"status": "ready"}


async def status(request: Request) -> dict[str, Any]:
    state = _internal(request)
    return {
        "worker_id": state.worker_id,
        "models": state.served_models(),
        "backend": state.backend.name,
        "healthy": state.backend.healthy(),
        "capacity": state.limiter.capacity,
        "active": state.limiter.active,
        "queued": state.limiter.queued,
        "in_flight": state.limiter.in_flight,
        "engine_running": state.backend.running(),
        "max_queued": state.limiter.max_queued,
        "context_length": state.backend.max_model_len or None,
        "template": state.template.name if state.template else None,
        "registered": bool(state.link and state.link.registered),
    }


async def template(request: Request) -> dict[str, Any]:
    state = _internal(request)
    described = state.template.describe() if state.template else {"name": None}
    return {"reason": state.template_reason, **described}


BODY_MODELS: list[type[BaseModel]] = [ChatCompletionRequest, CompletionRequest, EmbeddingRequest]

ROUTES: list[BaseRoute] = [
    APIRoute(
        "/v1/chat/completions",
        chat_completions,
        methods=["POST"],
        openapi_extra=json_body_doc(ChatCompletionRequest),
    ),
    APIRoute(
        "/v1/completions",
        completions,
        methods=["POST"],
        openapi_extra=json_body_doc(CompletionRequest),
    ),
    APIRoute(
        "/v1/embeddings",
        embeddings,
        methods=["POST"],
        openapi_extra=json_body_doc(EmbeddingRequest),
    ),
    APIRoute("/v1/models", models, methods=["GET"]),
    APIRoute("/health", health, methods=["GET"]),
    APIRoute("/ready", ready, methods=["GET"]),
    APIRoute("/internal/status", status, methods=["GET"]),
    APIRoute("/internal/template", template, methods=["GET"]),
]
