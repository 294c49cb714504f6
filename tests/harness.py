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


@contextlib.asynccontextmanager
async def serve(app: FastAPI, base_url: str = "http://test") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def sse_events(text: str) -> list[Any]:
    """Parse an SSE body into JSON payloads, with the literal "[DONE]" kept as a string."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
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
