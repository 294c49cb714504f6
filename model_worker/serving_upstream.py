"""The OpenAI endpoints of a worker whose backend is an external OpenAI-compatible server.

The client's request (already validated by the worker's routes) goes to the upstream as it
came, with `model` renamed to the upstream's name; the reply comes back with our name. A
stream is cut into whole events with `protocol.stream`'s splitter; the worker always asks the
upstream for the standard usage chunk, counts tokens from it and drops it again when its own
client did not ask for usage, exactly as the gateway does with a local worker.

Upstream failures reach the client in our envelope, never with the upstream's internals:
400/413/422/429 keep their status (422 as 400) and message, as they describe the client's
request; 503 and a refused connection answer 503 (so a gateway tries another worker); any
other status or a reply that is not OpenAI-shaped answers 502; a timeout 504. A client that
goes away closes the upstream request, which aborts it there. The key is redacted from
anything the upstream sends back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from model_worker.backends.openai import OpenAIBackend
from model_worker.framing import SlotStreamingResponse
from model_worker.limiter import AdmissionQueue
from model_worker.observe import WorkerMetrics
from protocol.errors import (
    CorralError,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    parse_envelope,
)
from protocol.stream import EventSplitter, StreamFormatError, take_usage
from servekit.http import until_disconnect

logger = logging.getLogger(__name__)

_SEP = b"\n\n"
_DONE_EVENT = b"data: [DONE]"
_KEPT_STATUSES = {400, 413, 422, 429}  # about the client's request: the client may fix it
_MAX_MESSAGE = 500


class _Body(Protocol):
    model: str


class UpstreamServing:
    """One OpenAI endpoint (`path`, relative to the upstream's base URL) relayed upstream."""

    def __init__(
        self,
        backend: OpenAIBackend,
        path: str,
        limiter: AdmissionQueue,
        meter: WorkerMetrics,
        write_idle_timeout: float,
    ) -> None:
        self.backend = backend
        self.path = path
        self.limiter = limiter
        self.meter = meter
        self.write_idle_timeout = write_idle_timeout

    async def __call__(self, req: _Body, request: Request, lora: str | None = None) -> Response:
        data = json.loads(await request.body())  # the routes validated it already
        data["model"] = self.backend.upstream_model
        stream = bool(data.get("stream"))
        wants_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        if stream:
            data["stream_options"] = {**(data.get("stream_options") or {}), "include_usage": True}
        slot = await self.limiter.acquire()
        try:
            if stream:
                upstream = await until_disconnect(request, self._open(data))
                events = self._events(upstream, req.model, wants_usage)
                # which releases the slot, and drops a client that stops reading
                return SlotStreamingResponse(events, slot, self.write_idle_timeout)
            body = await until_disconnect(request, self._post(data))
        except BaseException:
            slot.release()
            raise
        slot.release()
        body["model"] = req.model
        self._count(body.get("usage"), req.model)
        return JSONResponse(body)

    async def _post(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            r = await self.backend.client.post(self.path, json=data)
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        if r.status_code != 200:
            raise self._refused(r.status_code, r.content)
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or ("choices" not in body and "data" not in body):
            raise UpstreamError("the upstream server sent a reply that is not OpenAI-shaped")
        return body

    async def _open(self, data: dict[str, Any]) -> httpx.Response:
        """Send a streaming request; its status says whether the stream opened."""
        client = self.backend.client
        try:
            r = await client.send(client.build_request("POST", self.path, json=data), stream=True)
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        if r.status_code == 200 and r.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            return r
        try:
            content = await r.aread() if r.status_code != 200 else b""
        except httpx.HTTPError:
            content = b""
        finally:
            await r.aclose()
        if r.status_code == 200:
            raise UpstreamError("the upstream server answered a stream request without a stream")
        raise self._refused(r.status_code, content)

    async def _events(
        self, upstream: httpx.Response, model: str, wants_usage: bool
    ) -> AsyncIterator[bytes]:
        """The upstream's events renamed to `model`, without its `[DONE]` (the worker's
        stream guard ends every stream with one, after an error event too)."""
        splitter = EventSplitter()
        done = False
        try:
            async for data in upstream.aiter_bytes():
                events = splitter.feed(data)
                if not events:
                    continue
                usage, events = take_usage(events, wants_usage)
                if usage is not None:
                    self._count(usage.model_dump(), model)
                out: list[bytes] = []
                for event in events.split(_SEP)[:-1]:
                    if event == _DONE_EVENT:
                        done = True
                    elif event.startswith(b"data: "):
                        out.append(self._renamed(event, model) + _SEP)
                    # comments (": ping") and other fields are not relayed
                if out:
                    yield b"".join(out)
        except httpx.HTTPError as exc:
            raise self._failed(exc, mid_stream=True) from None
        except StreamFormatError as exc:
            raise UpstreamError(f"the upstream server sent a malformed stream: {exc}") from None
        finally:
            await upstream.aclose()
        if not done:
            raise UpstreamError("the upstream server ended the stream early")

    def _renamed(self, event: bytes, model: str) -> bytes:
        try:
            data = json.loads(event[6:])
        except ValueError:
            raise UpstreamError("the upstream server sent an event that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError("the upstream server sent an event that is not an object")
        if "error" in data:
            raise self._mid_stream_error(data["error"])
        data["model"] = model
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return b"data: " + self.backend.redact_bytes(encoded)

    def _mid_stream_error(self, err: Any) -> CorralError:
        message = err.get("message") if isinstance(err, dict) else None
        logger.warning("upstream stream failed: %s", self.backend.redact(str(message))[:200])
        return UpstreamError("the upstream server failed mid-stream")

    def _count(self, usage: Any, model: str) -> None:
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.meter.tokens.labels(model).inc(usage["completion_tokens"])

    def _refused(self, status: int, content: bytes) -> CorralError:
        """The envelope for an upstream's error status (see the module's docstring)."""
        if status in _KEPT_STATUSES:
            err = parse_envelope(self.backend.redact_bytes(content), status)
            if status == 429:
                return RateLimited(
                    f"the upstream server is rate-limiting: {err.message[:_MAX_MESSAGE]}",
                    retry_after=1,
                )
            err.message = err.message[:_MAX_MESSAGE]
            if status == 422:  # FastAPI's validation status; ours is 400
                return parse_envelope(err.to_json_bytes(), 400)
            return err
        logger.warning(
            "upstream %s answered %d: %s",
            self.backend.base_url,
            status,
            self.backend.redact(content[:300].decode(errors="replace")),
        )
        if status == 503:
            return ServiceUnavailable(
                "the upstream server is overloaded or down; retry shortly",
                code="upstream_unavailable",
            )
        if status in (401, 403):
            return UpstreamError(
                "the upstream server refused this worker's credentials", code="upstream_auth"
            )
        return UpstreamError(f"the upstream server failed (HTTP {status})")

    def _failed(self, exc: httpx.HTTPError, *, mid_stream: bool = False) -> CorralError:
        where = "mid-stream" if mid_stream else "before answering"
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(f"the upstream server did not answer in time ({where})")
        if isinstance(exc, httpx.ConnectError) and not mid_stream:
            return ServiceUnavailable(
                "the upstream server is not reachable; retry shortly", code="upstream_unavailable"
            )
        return UpstreamError(f"the upstream server failed {where} ({type(exc).__name__})")
