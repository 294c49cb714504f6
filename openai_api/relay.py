"""Forward a validated request to a worker and relay its reply byte for byte.

Before the first byte, a worker that refuses the connection or answers 503 is skipped and the
request goes to another one (at most `max_retries` more). After streaming started, a failure is
one SSE error event followed by `data: [DONE]`: never a hang, never a torn event. A reply's
token usage goes to `on_usage` for token limits and metrics: from the JSON body's `usage`, or,
for a stream, from the standard usage chunk, which the gateway always asks the worker for and
drops again when its own client did not ask for usage (`protocol.stream`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from openai_api.observe import GatewayMetrics
from openai_api.router import ControllerApi, no_worker
from protocol.control import Endpoint
from protocol.errors import CorralError, UpstreamError, UpstreamTimeout
from protocol.openai import Usage
from protocol.stream import (
    DONE,
    EventSplitter,
    StreamFormatError,
    ends_stream,
    error_event,
    is_role_chunk,
    request_usage,
    take_usage,
)
from servekit.http import until_disconnect

logger = logging.getLogger(__name__)

_FORWARD_HEADERS = {"Content-Type": "application/json"}
# (prompt tokens, completion tokens); the first call counts. Prompt tokens are None when a
# stream ended without its usage (cut short): the completion tokens are the events relayed.
UsageHook = Callable[[int | None, int], None]


class Relay:
    """`write_idle_timeout`: seconds a client may stop reading a stream before the gateway
    drops it (closing the worker's connection, which aborts the generation there).
    `stream_idle_timeout`: seconds a worker may stay silent on a stream, before its headers or
    between two chunks, before the stream fails."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        router: ControllerApi,
        max_retries: int,
        metrics: GatewayMetrics,
        *,
        write_idle_timeout: float = 30.0,
        stream_idle_timeout: float | None = None,
    ) -> None:
        self._session = session
        self._router = router
        self._max_retries = max_retries
        self._metrics = metrics
        self._write_idle = write_idle_timeout
        self._stream_timeout = (
            aiohttp.ClientTimeout(total=None, sock_read=stream_idle_timeout)
            if stream_idle_timeout
            else None
        )

    async def forward(
        self,
        request: Request,
        endpoint: Endpoint,
        model: str,
        path: str,
        body: bytes,
        stream: bool,
        on_usage: UsageHook,
        *,
        client_wants_usage: bool = False,
        on_end: Callable[[], None] | None = None,
    ) -> Response:
        """Send `body` (the client's bytes) to a worker and relay the reply; for a stream whose
        client did not ask for usage, the worker is asked for it all the same. `on_end` runs
        once when the request is over, however it ends (a stream: when it stops relaying).

        A client that leaves before a non-streaming reply (which only starts when it is
        complete) closes the worker's connection, so the worker aborts the generation.
        """
        start = time.perf_counter()
        ended = _once(on_end or _nothing)
        try:
            if stream and not client_wants_usage:
                body = request_usage(body)
            opening = self._open(endpoint, model, path, body, stream)
            if stream:  # headers come at once; a client gone is seen by the relay
                upstream, worker_id = await opening
            else:  # headers come with the whole reply: watch the client meanwhile
                upstream, worker_id = await until_disconnect(request, opening)
        except BaseException:
            ended()
            raise
        release = _once(lambda: self._router.release(worker_id))
        headers = {"x-corral-worker": worker_id}
        is_sse = upstream.content_type == "text/event-stream"
        if stream and is_sse and upstream.status == 200:
            meter = _StreamMeter(self._metrics, model, start, on_usage, client_wants_usage)
            return _RelayedStream(upstream, _both(release, ended), headers, meter, self._write_idle)
        try:
            content = await until_disconnect(request, upstream.read())
        except TimeoutError as exc:
            raise UpstreamTimeout("the worker did not answer in time") from exc
        except aiohttp.ClientError as exc:
            logger.warning("worker %s failed before answering: %r", worker_id, exc)
            raise UpstreamError("the worker failed before answering") from exc
        finally:
            upstream.release()
            release()
            ended()
        if upstream.status == 200:
            self._metrics.ttft.labels(model).observe(time.perf_counter() - start)
            _report_usage(_json_usage(content), self._metrics, model, on_usage)
        else:
            on_usage(0, 0)  # an error reply: nothing was generated
        media = upstream.headers.get("Content-Type", "application/json")
        return Response(content, status_code=upstream.status, media_type=media, headers=headers)

    async def _open(
        self, endpoint: Endpoint, model: str, path: str, body: bytes, stream: bool = False
    ) -> tuple[aiohttp.ClientResponse, str]:
        """Send to a worker, trying others while a worker fails before its first byte."""
        exclude: list[str] = []
        timing: dict[str, Any] = (
            {"timeout": self._stream_timeout} if stream and self._stream_timeout else {}
        )
        for _ in range(self._max_retries + 1):
            target = await self._router.dispatch(model, endpoint, exclude)
            url = target.url.rstrip("/") + path
            try:
                upstream = await self._session.post(
                    url, data=body, headers=_FORWARD_HEADERS, allow_redirects=False, **timing
                )
            except aiohttp.ClientConnectorError as exc:
                logger.warning("worker %s unreachable (%s); trying another", target.worker_id, exc)
                self._metrics.retries.labels("unreachable").inc()
            except aiohttp.ConnectionTimeoutError as exc:  # a TimeoutError, but nothing was sent
                logger.warning(
                    "worker %s: connect timed out (%s); trying another", target.worker_id, exc
                )
                self._metrics.retries.labels("unreachable").inc()
            except TimeoutError as exc:
                self._router.release(target.worker_id)
                logger.warning("worker %s did not answer in time", target.worker_id)
                raise UpstreamTimeout("the worker did not answer in time") from exc
            except aiohttp.ClientError as exc:
                logger.warning("worker %s failed (%r); trying another", target.worker_id, exc)
                self._metrics.retries.labels("failed").inc()
            except BaseException:  # cancelled: the client left
                self._router.release(target.worker_id)
                raise
            else:
                if upstream.status != 503:
                    return upstream, target.worker_id
                upstream.release()
                logger.info("worker %s is overloaded; trying another", target.worker_id)
                self._metrics.retries.labels("overloaded").inc()
            self._router.release(target.worker_id)
            exclude.append(target.worker_id)
        raise no_worker(model, len(exclude))


def _nothing() -> None:
    pass


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            second()

    return both


class _StreamMeter:
    """Times relayed events and takes the usage chunk out of the stream's last ones."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        model: str,
        start: float,
        on_usage: UsageHook,
        keep_usage: bool,
    ) -> None:
        self.metrics = metrics
        self.model = model
        self.start = start
        self.last = 0.0
        self.on_usage = on_usage
        self.keep_usage = keep_usage
        self.events = 0  # relayed, roughly one token each
        self._itl = metrics.itl.labels(model)  # looked up once: chunk() runs for every token

    def chunk(self, events: bytes) -> bytes:
        """Observe these events; return what to relay of them."""
        now = time.perf_counter()
        if self.last:
            self._itl.observe(now - self.last)
            self.last = now
        elif not is_role_chunk(events):  # the role chunk comes before any token
            self.metrics.ttft.labels(self.model).observe(now - self.start)
            self.last = now
        self.events += events.count(b"data: {")
        usage, events = take_usage(events, self.keep_usage)
        if usage is not None:
            _report_usage(usage, self.metrics, self.model, self.on_usage)
        return events

    def finish(self) -> None:
        """The stream is over: without its usage, it costs what was relayed."""
        self.on_usage(None, self.events)

    def failed(self) -> None:
        self.metrics.stream_failures.labels(self.model).inc()

    def stalled(self) -> None:
        self.metrics.client_stalls.inc()


def _json_usage(content: bytes) -> Usage | None:
    try:
        return Usage.model_validate(json.loads(content)["usage"], strict=False)
    except (ValueError, KeyError, TypeError):
        return None


def _report_usage(
    usage: Usage | None, metrics: GatewayMetrics, model: str, on_usage: UsageHook
) -> None:
    if usage is None:
        return
    metrics.prompt_tokens.labels(model).inc(usage.prompt_tokens)
    metrics.output_tokens.labels(model).inc(usage.completion_tokens)
    on_usage(usage.prompt_tokens, usage.completion_tokens)


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
        meter: _StreamMeter,
        write_idle_timeout: float,
    ) -> None:
        super().__init__(
            _relay_sse(upstream, meter),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", **headers},
        )
        self._upstream = upstream
        self._release = release
        self._write_idle = write_idle_timeout
        self._meter = meter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Every send has `write_idle_timeout` seconds: a client that stops reading (its socket
        buffers full) loses the stream, and closing the worker's connection frees its slot."""
        gone = asyncio.ensure_future(_wait_disconnect(receive))
        gone.add_done_callback(lambda _: self._upstream.close())
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as stall:
                stall.reschedule(loop.time() + self._write_idle)
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                stall.reschedule(None)
                async for chunk in self.body_iterator:
                    if gone.done():
                        return
                    stall.reschedule(loop.time() + self._write_idle)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    stall.reschedule(None)
                stall.reschedule(loop.time() + self._write_idle)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            logger.warning("client stopped reading for %.0f s; stream dropped", self._write_idle)
            self._upstream.close()
            self._meter.stalled()
        finally:
            gone.cancel()
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self._upstream.release()
            self._meter.finish()
            self._release()


async def _wait_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _relay_sse(upstream: aiohttp.ClientResponse, meter: _StreamMeter) -> AsyncIterator[bytes]:
    """Relay whole SSE events; a torn stream ends with an error event and [DONE]."""
    splitter = EventSplitter()
    failure: CorralError | None = None
    done = False
    try:
        async for data in upstream.content.iter_any():
            events = splitter.feed(data)
            if not events:
                continue
            done = ends_stream(events)
            events = meter.chunk(events)
            if events:
                yield events
    except TimeoutError:
        failure = UpstreamTimeout("the worker stopped sending tokens (timeout)")
    except aiohttp.ClientError as exc:
        failure = UpstreamError(f"the worker failed mid-stream: {type(exc).__name__}")
    except StreamFormatError as exc:
        failure = UpstreamError(f"the worker sent a malformed stream: {exc}")
    if failure is None and not done:
        failure = UpstreamError("the worker ended the stream early")
    if failure is not None:
        logger.warning("stream from worker failed: %s", failure.message)
        meter.failed()
        yield error_event(failure) + DONE


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    called = False

    def wrapper() -> None:
        nonlocal called
        if not called:
            called = True
            fn()

    return wrapper
