"""The public API: OpenAI endpoints, checked here (key, limits, body), served by workers."""

from __future__ import annotations

import json
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from openai_api import responses
from openai_api.auth import Principal
from openai_api.responses_stream import ResponsesStreamResponse, ResponsesTranslator
from openai_api.state import GatewayState
from protocol.control import Endpoint
from protocol.errors import InvalidRequest, UpstreamError
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from protocol.responses import ResponsesRequest
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


def _check_messages(request: Request, count: int, param: str) -> None:
    limit = _state(request).settings.max_messages
    if count > limit:
        raise InvalidRequest(f"{count} messages is over the limit of {limit}", param=param)


async def chat_completions(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, raw = await parse_body(request, ChatCompletionRequest, settings.max_body_bytes)
    _check_messages(request, len(body.messages), "messages")
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


async def create_response(request: Request) -> Response:
    """`/v1/responses`, served as a chat completion (see `openai_api.responses`)."""
    principal = await _authenticate(request)
    limit = _state(request).settings.max_body_bytes
    body, _ = await parse_body(request, ResponsesRequest, limit)
    raw = responses.chat_request_bytes(body)
    _check_messages(request, len(json.loads(raw)["messages"]), "input")
    reply = await _forward(
        request, principal, "chat", body.model, "/v1/chat/completions", raw, body.stream, True
    )
    if reply.status_code != 200:
        return reply  # the error envelope, as the chat endpoint would answer it
    if body.stream:
        return ResponsesStreamResponse(reply, ResponsesTranslator(body))
    try:
        chat = json.loads(bytes(reply.body))
    except ValueError:
        raise UpstreamError("the worker sent a reply that is not JSON") from None
    return JSONResponse(responses.from_chat(body, chat).model_dump(mode="json"))


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
    listed = [m.id for m in served if principal.may_use(m.id)]
    return ModelList(data=[ModelCard(id=m) for m in listed])


async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok"}


async def ready(request: Request) -> dict[str, Any]:
    """Can serve: a controller answers and the key store is reachable."""
    state = _state(request)
    live = await state.controller.models()
    await state.gatekeeper.probe()
    return {"status": "ready", "models": len(live)}


BODY_MODELS: list[type[BaseModel]] = [
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ResponsesRequest,
]

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
        "/v1/responses",
        create_response,
        methods=["POST"],
        openapi_extra=json_body_doc(ResponsesRequest),
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
