"""Forward a validated request to a worker and relay its reply byte for byte.

Before the first byte, a worker that refuses the connection or answers 503 is skipped and the
request goes to another one (at most `max_retries` more). After streaming started, a failure is
one SSE error event followed by `data: [DONE]`: never a hang, never a torn event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from corral.http import until_disconnect
from openai_api.router import ControllerClient, no_worker
from protocol.control import Endpoint
from protocol.errors import CorralError, UpstreamError, UpstreamTimeout

logger = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
_FORWARD_HEADERS = {"content-type": "application/json"}


class Relay:
    def __init__(
        self, client: httpx.AsyncClient, router: ControllerClient, max_retries: int
    ) -> None:
        self._client = client
        self._router = router
        self._max_retries = max_retries

    async def forward(
        self, request: Request, endpoint: Endpoint, model: str, path: str, body: bytes, stream: bool
    ) -> Response:
        upstream, worker_id = await self._open(endpoint, model, path, body)
        release = _once(lambda: self._router.release(worker_id))
        headers = {"x-corral-worker": worker_id}
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        if stream and is_sse and upstream.status_code == 200:
            return _RelayedStream(_relay_sse(upstream, release), release, headers)
        try:
            content = await until_disconnect(request, upstream.aread())
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the worker did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the worker failed before answering: {exc}") from exc
        finally:
            await upstream.aclose()
            release()
        media = upstream.headers.get("content-type", "application/json")
        return Response(
            content, status_code=upstream.status_code, media_type=media, headers=headers
        )

    async def _open(
        self, endpoint: Endpoint, model: str, path: str, body: bytes
    ) -> tuple[httpx.Response, str]:
        """Send to a worker, trying others while a worker fails before its first byte."""
        exclude: list[str] = []
        for _ in range(self._max_retries + 1):
            target = await self._router.dispatch(model, endpoint, exclude)
            request = self._client.build_request(
                "POST", target.url.rstrip("/") + path, content=body, headers=_FORWARD_HEADERS
            )
            try:
                upstream = await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                logger.warning("worker %s unreachable (%s); trying another", target.worker_id, exc)
            except httpx.TimeoutException as exc:
                self._router.release(target.worker_id)
                raise UpstreamTimeout(f"worker {target.worker_id} did not answer in time") from exc
            except httpx.HTTPError as exc:
                logger.warning("worker %s failed (%s); trying another", target.worker_id, exc)
            else:
                if upstream.status_code != 503:
                    return upstream, target.worker_id
                await upstream.aclose()
                logger.info("worker %s is overloaded; trying another", target.worker_id)
            self._router.release(target.worker_id)
            exclude.append(target.worker_id)
        raise no_worker(model, len(exclude))


class _RelayedStream(StreamingResponse):
    """Releases the worker even when the client left before the stream began."""

    def __init__(
        self, content: AsyncIterator[bytes], release: Callable[[], None], headers: dict[str, str]
    ) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", **headers},
        )
        self._release = release

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _relay_sse(upstream: httpx.Response, release: Callable[[], None]) -> AsyncIterator[bytes]:
    """Relay whole SSE events; a torn stream ends with an error event and [DONE]."""
    pending = b""
    failure: CorralError | None = None
    done = False
    try:
        async for chunk in upstream.aiter_raw():
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
    except httpx.TimeoutException:
        failure = UpstreamTimeout("the worker stopped sending tokens (timeout)")
    except httpx.HTTPError as exc:
        failure = UpstreamError(f"the worker failed mid-stream: {type(exc).__name__}")
    finally:
        await upstream.aclose()
        release()
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
