"""The public API: OpenAI endpoints, validated here, served by workers through the relay."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from corral.http import json_body_doc, parse_body
from openai_api.relay import Relay
from openai_api.router import ControllerClient
from protocol.errors import AuthenticationFailed
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)


def _relay(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


async def require_key(request: Request) -> None:
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."
        )
    if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        raise AuthenticationFailed("Incorrect API key provided.")


async def chat_completions(request: Request) -> Response:
    body, raw = await parse_body(request, ChatCompletionRequest)
    return await _relay(request).forward(
        request, "chat", body.model, "/v1/chat/completions", raw, body.stream
    )


async def completions(request: Request) -> Response:
    body, raw = await parse_body(request, CompletionRequest)
    return await _relay(request).forward(
        request, "completions", body.model, "/v1/completions", raw, body.stream
    )


async def embeddings(request: Request) -> Response:
    body, raw = await parse_body(request, EmbeddingRequest)
    return await _relay(request).forward(
        request, "embeddings", body.model, "/v1/embeddings", raw, False
    )


async def models(request: Request) -> ModelList:
    router: ControllerClient = request.app.state.router
    return ModelList(data=[ModelCard(id=m.id) for m in await router.models()])


async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok"}


BODY_MODELS: list[type[BaseModel]] = [ChatCompletionRequest, CompletionRequest, EmbeddingRequest]
_keyed = [Depends(require_key)]

ROUTES: list[BaseRoute] = [
    APIRoute(
        "/v1/chat/completions",
        chat_completions,
        methods=["POST"],
        dependencies=_keyed,
        openapi_extra=json_body_doc(ChatCompletionRequest),
    ),
    APIRoute(
        "/v1/completions",
        completions,
        methods=["POST"],
        dependencies=_keyed,
        openapi_extra=json_body_doc(CompletionRequest),
    ),
    APIRoute(
        "/v1/embeddings",
        embeddings,
        methods=["POST"],
        dependencies=_keyed,
        openapi_extra=json_body_doc(EmbeddingRequest),
    ),
    APIRoute("/v1/models", models, methods=["GET"], dependencies=_keyed),
    APIRoute("/health", health, methods=["GET"]),
]
