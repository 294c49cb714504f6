"""A fake fast upstream: registers with the controller like any worker and streams N tokens.

It does no model work, so whatever CPU a benchmark sees in front of it is the gateway's own.
Each request streams a role chunk, `--tokens` content chunks (or the request's `max_tokens`,
the smaller of the two), a finish chunk, the usage chunk the gateway asks for, and `[DONE]`,
in the wire format of `protocol.stream`. Tokens vary (LiteLLM's proxy refuses a stream that
repeats one chunk). With `--interval` > 0 every token is its own write, that far apart, as an
engine paces them; with 0 they go as fast as the socket takes them.

    python bench/fake_worker.py --controller-url http://127.0.0.1:21001 --port 21002 \\
        --tokens 128 --interval 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_worker.registration import ControllerLink
from protocol import stream
from protocol.control import Heartbeat, WorkerRegistration

WORDS = [f" w{i}" for i in range(997)]  # varied tokens; a prime so streams do not line up


class FakeUpstream:
    def __init__(self, model: str, tokens: int, interval: float, prompt_tokens: int) -> None:
        self.model = model
        self.tokens = tokens
        self.interval = interval
        self.prompt_tokens = prompt_tokens
        self.in_flight = 0
        self.served = 0

    def _chunk(self, cid: str, delta: stream.DeltaMessage, finish: str | None = None) -> bytes:
        choice = stream.ChatChunkChoice(index=0, delta=delta, finish_reason=finish)  # type: ignore[arg-type]
        return stream.encode(
            stream.ChatCompletionChunk(id=cid, created=0, model=self.model, choices=[choice])
        )

    async def events(self, n: int, usage: bool) -> AsyncIterator[bytes]:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        head, tail = self._chunk(cid, stream.DeltaMessage(content="\x00")).split(b"\\u0000")
        self.in_flight += 1
        try:
            yield self._chunk(cid, stream.DeltaMessage(role="assistant", content=""))
            start = time.perf_counter()
            offset = hash(cid) % len(WORDS)
            for i in range(n):
                if self.interval > 0:  # paced from the start, so slow writes do not drift
                    delay = start + (i + 1) * self.interval - time.perf_counter()
                    await asyncio.sleep(max(0.0, delay))
                yield head + WORDS[(offset + i) % len(WORDS)].encode() + tail
            yield self._chunk(cid, stream.DeltaMessage(), "length")
            if usage:
                last = stream.ChatCompletionChunk(
                    id=cid,
                    created=0,
                    model=self.model,
                    choices=[],
                    usage=stream.usage(self.prompt_tokens, n),
                )
                yield stream.encode(last)
            yield stream.DONE
        finally:
            self.in_flight -= 1
            self.served += 1

    async def chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        n = min(
            self.tokens,
            int(body.get("max_tokens") or body.get("max_completion_tokens") or self.tokens),
        )
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if not body.get("stream"):
            text = "".join(WORDS[i % len(WORDS)] for i in range(n))
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": stream.usage(self.prompt_tokens, n).model_dump(),
                }
            )
        return StreamingResponse(self.events(n, usage), media_type="text/event-stream")

    async def models(self, request: Request) -> Response:
        card = {"id": self.model, "object": "model", "created": 0, "owned_by": "corral"}
        return JSONResponse({"object": "list", "data": [card]})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "served": self.served, "in_flight": self.in_flight})


def build_app(upstream: FakeUpstream, link: ControllerLink | None) -> Starlette:
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if link is None:
            yield
            return
        link.start()
        try:
            yield
        finally:
            await link.close()
            if link.task is not None:
                link.task.cancel()

    return Starlette(
        routes=[
            Route("/v1/chat/completions", upstream.chat, methods=["POST"]),
            Route("/v1/models", upstream.models, methods=["GET"]),
            Route("/health", upstream.health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--controller-url", action="append", default=[], help="none: standalone")
    p.add_argument("--control-secret")
    p.add_argument("--model-name", default="fake")
    p.add_argument("--worker-id", default=None)
    p.add_argument("--tokens", type=int, default=128, help="tokens per stream (at most)")
    p.add_argument(
        "--interval", type=float, default=0.02, help="seconds between tokens; 0: no pause"
    )
    p.add_argument("--prompt-tokens", type=int, default=16, help="reported in the usage chunk")
    p.add_argument("--capacity", type=int, default=1024)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    upstream = FakeUpstream(args.model_name, args.tokens, args.interval, args.prompt_tokens)
    url = f"http://127.0.0.1:{args.port}"
    worker_id = args.worker_id or f"fake-{args.port}"
    link = None
    if args.controller_url:
        registration = WorkerRegistration(
            worker_id=worker_id,
            url=url,
            models=[args.model_name],
            capacity=args.capacity,
            backend="fake",
        )

        def status() -> Heartbeat:
            return Heartbeat(worker_id=worker_id, in_flight=upstream.in_flight)

        client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        link = ControllerLink(
            client, args.controller_url, registration, status, 2.0, args.control_secret
        )
    uvicorn.run(
        build_app(upstream, link),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
