"""Test helpers: in-process apps (create_app + lifespan) behind httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from protocol import stream
from protocol.errors import UpstreamError
from protocol.openai import FinishReason


@contextlib.asynccontextmanager
async def serve(
    app: FastAPI, base_url: str = "http://127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def sse_events(text: str) -> list[Any]:
    """Parse an SSE body into JSON payloads, with the literal "[DONE]" kept as a string."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip() or block.startswith(":"):  # blank, or an SSE comment
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def worker_app(model_path: Path, **settings: Any) -> FastAPI:
    """A worker app on a local model; by default hf, named "tiny", with no controller."""
    from model_worker.app import create_app
    from model_worker.settings import WorkerSettings

    defaults: dict[str, Any] = {"model_name": "tiny", "backend": "hf", "controller_urls": []}
    return create_app(WorkerSettings(model_path=str(model_path), **{**defaults, **settings}))


@contextlib.asynccontextmanager
async def loopback(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port by default) inside this event loop."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what made it fail
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class FakeGateway:
    """An OpenAI-compatible stub for the web UI's tests: /v1/models and streamed chat.

    `models` maps a name to its behaviour: a list of text pieces streamed one per chunk, then
    finish_reason "stop"; or a dict with "pieces" and optionally "status" (answer that HTTP
    error up front; with "fail_times", only the first that many requests), "fail_after" (send
    that many pieces, then an SSE error event and [DONE]), "first_delay" (seconds before the
    first piece), "finish" (the finish reason, "stop" by default) and "context_length"
    (listed as `max_model_len`). The dict may be changed while serving. Serve `.app` with
    `loopback`; `.requests` keeps every chat body received, `.in_flight` the chat streams open
    now, `.max_in_flight` the most that were open at once, and `.aborted` how many the client
    closed before their end.
    """

    def __init__(self, models: dict[str, Any], delay: float = 0.02) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route

        self.models = models
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted = 0
        self.failed: dict[str, int] = {}  # model -> requests refused so far (fail_times)

        def error(status: int, message: str) -> dict[str, Any]:
            return {"error": {"message": message, "type": "error", "param": None, "code": status}}

        async def list_models(request: Request) -> Response:
            data = []
            for m, spec in models.items():
                card: dict[str, Any] = {"id": m, "object": "model", "created": 0, "owned_by": "x"}
                if isinstance(spec, dict) and spec.get("context_length"):
                    card["max_model_len"] = spec["context_length"]
                data.append(card)
            return JSONResponse({"object": "list", "data": data})

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            spec = models.get(body["model"])
            if spec is None:
                return JSONResponse(error(404, f"model {body['model']} not found"), 404)
            if isinstance(spec, list):
                spec = {"pieces": spec}
            if spec.get("status"):
                times = spec.get("fail_times")
                failed = self.failed.get(body["model"], 0)
                if times is None or failed < times:
                    self.failed[body["model"]] = failed + 1
                    msg = f"no worker for model {body['model']}"
                    return JSONResponse(error(spec["status"], msg), spec["status"])

            def chunk(delta: stream.DeltaMessage, finish: FinishReason | None = None) -> bytes:
                choice = stream.ChatChunkChoice(index=0, delta=delta, finish_reason=finish)
                return stream.encode(
                    stream.ChatCompletionChunk(
                        id="chatcmpl-fake", created=0, model=body["model"], choices=[choice]
                    )
                )

            async def events() -> AsyncIterator[bytes]:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                ended = False
                try:
                    yield chunk(stream.DeltaMessage(role="assistant", content=""))
                    await asyncio.sleep(spec.get("first_delay", 0))
                    for i, piece in enumerate(spec["pieces"]):
                        if spec.get("fail_after") == i:
                            failure = UpstreamError(f"worker for {body['model']} failed")
                            ended = True
                            yield stream.error_event(failure) + stream.DONE
                            return
                        await asyncio.sleep(self.delay)
                        yield chunk(stream.DeltaMessage(content=piece))
                    ended = True
                    yield chunk(stream.DeltaMessage(), spec.get("finish", "stop"))
                    yield stream.DONE
                finally:
                    self.in_flight -= 1
                    self.aborted += 0 if ended else 1

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = Starlette(
            routes=[
                Route("/v1/models", list_models),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )
