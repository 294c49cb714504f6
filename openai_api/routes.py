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
from openai_api.affinity import current_prefix_keys, prefix_keys
from openai_api.auth import Principal
from openai_api.responses_stream import ResponsesStreamResponse, ResponsesTranslator
from openai_api.state import GatewayState
from protocol.control import Endpoint
from protocol.errors import InvalidRequest, UpstreamError
from protocol.limits import check_chat, check_completion, check_embedding, estimate_tokens
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from protocol.responses import ResponsesRequest
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
    current_prefix_keys.set(prefix_keys(body))  # read by the dispatch (cache_aware)
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


async def create_response(request: Request) -> Response:
    """`/v1/responses`, served as a chat completion (see `openai_api.responses`)."""
    principal = await _authenticate(request)
    settings = _state(request).settings
    body, _ = await parse_body(request, ResponsesRequest, settings.max_body_bytes)
    chat, raw = responses.chat_request(body)
    if len(chat.messages) > settings.max_messages:
        raise InvalidRequest(
            f"{len(chat.messages)} messages is over the limit of {settings.max_messages}",
            param="input",
        )
    check_chat(chat, settings.input_limits())
    reply = await _forward(
        request, principal, chat, "chat", "/v1/chat/completions", raw, body.stream, True
    )
    if reply.status_code != 200:
        return reply  # the error envelope, as the chat endpoint would answer it
    if body.stream:
        return ResponsesStreamResponse(reply, ResponsesTranslator(body))
    try:
        completion = json.loads(bytes(reply.body))
    except ValueError:
        raise UpstreamError("the worker sent a reply that is not JSON") from None
    return JSONResponse(responses.from_chat(body, completion).model_dump(mode="json"))


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
