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
from protocol.limits import check_chat, check_completion, check_embedding, estimate_tokens
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from servekit.app import service_state
from servekit.http import ClientDisconnected, json_body_doc, parse_body


def _state(request: Request) -> GatewayState:
    return service_state(request, GatewayState)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def _authenticate(request: Request) -> Principal:
    gatekeeper = _state(request).gatekeeper
    return await gatekeeper.authenticate(request.headers.get("authorization"), _client(request))


async def _forward(
    request: Request,
    principal: Principal,
    body: ChatCompletionRequest | CompletionRequest | EmbeddingRequest,
    endpoint: Endpoint,
    path: str,
    raw: bytes,
    stream: bool,
    wants_usage: bool = False,
) -> Response:
    """Admit (allowlist, limits, the token reservation, a stream's share), then relay."""
    model = body.model
    state = _state(request)
    gatekeeper = state.gatekeeper
    prompt_estimate, completion_estimate = estimate_tokens(body) if principal.tpm else (0, 0)
    reserved = prompt_estimate + completion_estimate
    await gatekeeper.admit(principal, model, reserved)
    settled = False

    def on_usage(prompt_tokens: int | None, completion_tokens: int) -> None:
        """Settle the reservation once: what was used (a prompt of unknown size as estimated),
        the rest refunded. Never settled (a client gone before its reply): all of it stays."""
        nonlocal settled
        if settled:
            return
        settled = True
        prompt = prompt_tokens if prompt_tokens is not None else prompt_estimate
        gatekeeper.charge(principal, prompt + completion_tokens - reserved)

    try:
        end_stream = state.streams.open(principal, _client(request)) if stream else None
    except BaseException:
        on_usage(0, 0)
        raise
    try:
        response = await state.relay.forward(
            request,
            endpoint,
            model,
            path,
            raw,
            stream,
            on_usage,
            client_wants_usage=wants_usage,
            on_end=end_stream,
        )
    except ClientDisconnected:
        raise  # the client left: its reservation stays charged
    except BaseException:
        on_usage(0, 0)  # refused or failed before an answer: nothing was used
        raise
    request.state.model = model  # a model that exists: a bounded metric label
    return response


async def chat_completions(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, raw = await parse_body(request, ChatCompletionRequest, settings.max_body_bytes)
    if len(body.messages) > settings.max_messages:
        raise InvalidRequest(
            f"{len(body.messages)} messages is over the limit of {settings.max_messages}",
            param="messages",
        )
    check_chat(body, settings.input_limits())
    return await _forward(
        request,
        principal,
        body,
        "chat",
        "/v1/chat/completions",
        raw,
        body.stream,
        body.include_usage(),
    )


async def completions(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, raw = await parse_body(request, CompletionRequest, settings.max_body_bytes)
    check_completion(body, settings.input_limits())
    return await _forward(
        request,
        principal,
        body,
        "completions",
        "/v1/completions",
        raw,
        body.stream,
        body.include_usage(),
    )


async def embeddings(request: Request) -> Response:
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, raw = await parse_body(request, EmbeddingRequest, settings.max_body_bytes)
    check_embedding(body, settings.input_limits())
    return await _forward(request, principal, body, "embeddings", "/v1/embeddings", raw, False)


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
