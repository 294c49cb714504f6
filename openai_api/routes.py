"""The public API: OpenAI endpoints, checked here (key, limits, body), served by workers."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from corral.http import json_body_doc, parse_body
from openai_api.auth import Gatekeeper, Principal
from openai_api.relay import Relay
from openai_api.router import ControllerClient
from openai_api.settings import GatewaySettings
from protocol.control import Endpoint
from protocol.errors import InvalidRequest
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)


async def _authenticate(request: Request) -> Principal:
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return await gatekeeper.authenticate(request.headers.get("authorization"))


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


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
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    await gatekeeper.admit(principal, model)

    def on_usage(prompt_tokens: int, completion_tokens: int) -> None:
        gatekeeper.charge(principal, prompt_tokens + completion_tokens)

    relay: Relay = request.app.state.relay
    return await relay.forward(
        request, endpoint, model, path, raw, stream, on_usage, client_wants_usage=wants_usage
    )


async def chat_completions(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _settings(request)
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
    body, raw = await parse_body(request, CompletionRequest, _settings(request).max_body_bytes)
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
    body, raw = await parse_body(request, EmbeddingRequest, _settings(request).max_body_bytes)
    return await _forward(
        request, principal, "embeddings", body.model, "/v1/embeddings", raw, False
    )


async def models(request: Request) -> ModelList:
    principal = await _authenticate(request)
    router: ControllerClient = request.app.state.router
    listed = [m.id for m in await router.models() if principal.may_use(m.id)]
    return ModelList(data=[ModelCard(id=m) for m in listed])


async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok"}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: a controller answers and the key store is reachable."""
    router: ControllerClient = request.app.state.router
    live = await router.models()
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    await gatekeeper.probe()
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
