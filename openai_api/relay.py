"""Forward a validated request to a worker and relay its reply byte for byte.

Before the first byte, a worker that refuses the connection or answers 503 is skipped and the
request goes to another one (at most `max_retries` more). After streaming started, a failure is
one SSE error event followed by `data: [DONE]`: never a hang, never a torn event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from corral.http import until_disconnect
from openai_api.router import ControllerClient, no_worker
from protocol.control import Endpoint
from protocol.errors import CorralError, UpstreamError, UpstreamTimeout

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
_FORWARD_HEADERS = {"Content-Type": "application/json"}


class Relay:
    def __init__(
        self, session: aiohttp.ClientSession, router: ControllerClient, max_retries: int
    ) -> None:
        self._session = session
        self._router = router
        self._max_retries = max_retries

    async def forward(
        self, request: Request, endpoint: Endpoint, model: str, path: str, body: bytes, stream: bool
    ) -> Response:
        upstream, worker_id = await self._open(endpoint, model, path, body)
        release = _once(lambda: self._router.release(worker_id))
        headers = {"x-corral-worker": worker_id}
        is_sse = upstream.content_type == "text/event-stream"
        if stream and is_sse and upstream.status == 200:
            return _RelayedStream(upstream, release, headers)
        try:
            content = await until_disconnect(request, upstream.read())
        except TimeoutError as exc:
            raise UpstreamTimeout("the worker did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the worker failed before answering: {exc!r}") from exc
        finally:
            upstream.release()
            release()
        media = upstream.headers.get("Content-Type", "application/json")
        return Response(content, status_code=upstream.status, media_type=media, headers=headers)

    async def _open(
        self, endpoint: Endpoint, model: str, path: str, body: bytes
    ) -> tuple[aiohttp.ClientResponse, str]:
        """Send to a worker, trying others while a worker fails before its first byte."""
        exclude: list[str] = []
        for _ in range(self._max_retries + 1):
            target = await self._router.dispatch(model, endpoint, exclude)
            url = target.url.rstrip("/") + path
            try:
                upstream = await self._session.post(url, data=body, headers=_FORWARD_HEADERS)
            except aiohttp.ClientConnectorError as exc:
                logger.warning("worker %s unreachable (%s); trying another", target.worker_id, exc)
            except TimeoutError as exc:
                self._router.release(target.worker_id)
                raise UpstreamTimeout(f"worker {target.worker_id} did not answer in time") from exc
            except aiohttp.ClientError as exc:
                logger.warning("worker %s failed (%r); trying another", target.worker_id, exc)
            else:
                if upstream.status != 503:
                    return upstream, target.worker_id
                upstream.release()
                logger.info("worker %s is overloaded; trying another", target.worker_id)
            self._router.release(target.worker_id)
            exclude.append(target.worker_id)
        raise no_worker(model, len(exclude))


class _RelayedStream(StreamingResponse):
    """Relays a worker's SSE stream with as little work per chunk as ASGI allows.

    Starlette's StreamingResponse runs a task group per response; this sends directly and
    watches for the client leaving with one task, which closes the worker connection at once
    (so the worker aborts the generation). The worker is released however the stream ends.
    """

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        release: Callable[[], None],
        headers: dict[str, str],
    ) -> None:
        super().__init__(
            _relay_sse(upstream),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", **headers},
        )
        self._upstream = upstream
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        gone.add_done_callback(lambda _: self._upstream.close())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self.body_iterator:
                if gone.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self._upstream.release()
            self._release()


async def _wait_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _relay_sse(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Relay whole SSE events; a torn stream ends with an error event and [DONE]."""
    pending = b""
    failure: CorralError | None = None
    done = False
    try:
        async for chunk in upstream.content.iter_any():
            if pending:
                chunk, pending = pending + chunk, b""
            if chunk.endswith(b"\n\n"):
                done = chunk.endswith(DONE)
                yield chunk
                continue
            cut = chunk.rfind(b"\n\n") + 2
            if cut > 1:
                yield chunk[:cut]
            pending = chunk[cut:] if cut > 1 else chunk
    except TimeoutError:
        failure = UpstreamTimeout("the worker stopped sending tokens (timeout)")
    except aiohttp.ClientError as exc:
        failure = UpstreamError(f"the worker failed mid-stream: {type(exc).__name__}")
    if failure is None and not done:
        failure = UpstreamError("the worker ended the stream early")
    if failure is not None:
        logger.warning("stream from worker failed: %s", failure.message)
        yield failure.sse_event() + DONE


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    called = False

    def wrapper() -> None:
        nonlocal called
        if not called:
            called = True
            fn()

    return wrapper
