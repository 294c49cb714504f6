"""The public API: OpenAI endpoints, checked here (key, limits, body), served by workers."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from openai_api.auth import Principal
from openai_api.state import GatewayState
from protocol.control import Endpoint
from protocol.errors import InvalidRequest
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from servekit.app import service_state
from servekit.http import json_body_doc, parse_body


def _state(request: Request) -> GatewayState:
    return service_state(request, GatewayState)


async def _authenticate(request: Request) -> Principal:
    gatekeeper = _state(request).gatekeeper
    return await gatekeeper.authenticate(request.headers.get("authorization"))


async def _forward(
    request: Request,
    principal: Principal,
    endpoint: Endpoint,
    model: str,
    path: str,
    raw: bytes,
    stream: bool,
    wants_usage: bool = False,
) -> Response:
    request.state.model = model
    state = _state(request)
    gatekeeper = state.gatekeeper
    await gatekeeper.admit(principal, model)

    def on_usage(prompt_tokens: int, completion_tokens: int) -> None:
        gatekeeper.charge(principal, prompt_tokens + completion_tokens)

    return await state.relay.forward(
        request, endpoint, model, path, raw, stream, on_usage, client_wants_usage=wants_usage
    )


async def chat_completions(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, raw = await parse_body(request, ChatCompletionRequest, settings.max_body_bytes)
    if len(body.messages) > settings.max_messages:
        raise InvalidRequest(
            f"{len(body.messages)} messages is over the limit of {settings.max_messages}",
            param="messages",
        )
    return await _forward(
        request,
        principal,
        "chat",
        body.model,
        "/v1/chat/completions",
        raw,
        body.stream,
        body.include_usage(),
    )


async def completions(request: Request) -> Response:
    principal = await _authenticate(request)
    limit = _state(request).settings.max_body_bytes
    body, raw = await parse_body(request, CompletionRequest, limit)
    return await _forward(
        request,
        principal,
        "completions",
        body.model,
        "/v1/completions",
        raw,
        body.stream,
        body.include_usage(),
    )


async def embeddings(request: Request) -> Response:
    principal = await _authenticate(request)
    limit = _state(request).settings.max_body_bytes
    body, raw = await parse_body(request, EmbeddingRequest, limit)
    return await _forward(
        request, principal, "embeddings", body.model, "/v1/embeddings", raw, False
    )


async def models(request: Request) -> ModelList:
    principal = await _authenticate(request)
    served = await _state(request).controller.models()
    listed = [m for m in served if principal.may_use(m.id)]
    return ModelList(data=[ModelCard(id=m.id, max_model_len=m.context_length) for m in listed])


async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok"}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: a controller answers and the key store is reachable."""
    state = _state(request)
    live = await state.controller.models()
    await state.gatekeeper.probe()
    return {"status": "ready", "models": len(live)}


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
]
