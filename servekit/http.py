"""HTTP glue shared by every service: OpenAI error envelopes for every failure, and /health."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import (
    CorralError,
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    error_for_status,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ClientDisconnected(Exception):
    """The client went away before a non-streaming reply was ready; the work was cancelled."""


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client goes away first (non-streaming requests)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientDisconnected()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def error_response(err: CorralError, request: Request | None = None) -> JSONResponse:
    """The envelope with its status; counted by type when the app keeps metrics."""
    metrics = getattr(request.app.state, "metrics", None) if request is not None else None
    if metrics is not None:
        metrics.errors.labels(err.error_type).inc()
    return JSONResponse(err.envelope(), status_code=err.status_code, headers=err.headers)


async def parse_body(
    request: Request, model: type[M], max_bytes: int | None = None
) -> tuple[M, bytes]:
    """Validate a JSON body whatever its content-type says (curl -d sends a form type).

    Returns the model and the raw bytes, which a gateway forwards unchanged. A body over
    `max_bytes` is refused with 413 before it is read in full.
    """
    raw = await read_body(request, max_bytes) if max_bytes else await request.body()
    try:
        return model.model_validate_json(raw), raw
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body of {size}+ bytes is over the limit of {limit} bytes")


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `requestBody` for a route that parses its body with `parse_body`."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def document_models(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the schemas of `json_body_doc` bodies to the app's OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    return invalid_request(list(exc.errors()))


def invalid_request(errors: list[Any]) -> InvalidRequest:
    """The first validation problem, named the way OpenAI names params (`messages[0].role`)."""
    if not errors:
        return InvalidRequest("invalid request")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidRequest(f"request body is not valid JSON: {first.get('msg', '')}")
    loc = [part for part in first.get("loc", ()) if part != "body"]
    param = _param_name(loc)
    if first.get("type") == "missing" and param:
        return InvalidRequest(f"missing required parameter: '{param}'", param=param)
    message = str(first.get("msg", "invalid value"))
    if param:
        message = f"{param}: {message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return InvalidRequest(message, param=param or None)


# What pydantic puts in an error's location for a union branch: a validator (`function-after[...]`)
# or a type (`str`, `list[int]`, `list[TextContentPart]`); field names never look like these.
_UNION_BRANCH = re.compile(r"function-(after|before)\[|(str|int|float|bool)$|\w+\[.*\]$")


def _param_name(loc: list[Any]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not name:
            name = str(part)
        elif _UNION_BRANCH.match(str(part)):
            continue  # the branch of a union pydantic tried, not a field name
        else:
            name += f".{part}"
    return name


async def _corral_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CorralError)
    if str(exc) != exc.message:  # a detail for the operator, not the client (a store's failure)
        logger.warning("%s: %s", exc.message, exc)
    return error_response(exc, request)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc), request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        message = "no such route; see /docs for the API"
    err = error_for_status(exc.status_code, message)
    return error_response(err, request)


async def _client_gone(_: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is listening; the status is for the access log


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(InternalError("internal error; see the service log"), request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CorralError, _corral_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnected, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
