"""The gateway's client of the controller: one dispatch per attempt, releases batched.

A request's end is not worth a call of its own: ends are queued and ride along with the next
dispatch, or go out together within `flush_interval` when no dispatch comes. Ends lost with a
failed call are not retried: the workers' next heartbeats correct the counts anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import aiohttp

from protocol.control import (
    MAX_RELEASES,
    DispatchReply,
    DispatchRequest,
    Endpoint,
    ModelsReply,
    ModelStatus,
    Release,
)
from protocol.errors import CorralError, NoWorkerAvailable, ServiceUnavailable, parse_envelope

logger = logging.getLogger(__name__)


class ControllerApi(Protocol):
    """What the gateway asks of the controller (tests give the gateway a fake)."""

    async def dispatch(self, model: str, endpoint: Endpoint, exclude: list[str]) -> DispatchReply:
        """A worker for the request, or the controller's error (404 model, 503 none live)."""
        ...

    async def models(self) -> list[ModelStatus]: ...

    def release(self, worker_id: str) -> None:
        """A request on `worker_id` ended."""
        ...


class ControllerClient:
    """Talks to whichever controller answers; a dead controller costs one connect attempt."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: list[str],
        secret: str | None,
        flush_interval: float = 0.05,
    ) -> None:
        if not urls:
            raise ValueError("at least one controller URL is needed")
        self._session = session
        self._urls = [u.rstrip("/") for u in urls]
        self._current = 0
        self._headers = {"Content-Type": "application/json"}
        if secret:
            self._headers["Authorization"] = f"Bearer {secret}"
        self._ended: list[str] = []
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None

    async def _call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        last: Exception | None = None
        for _ in range(len(self._urls)):
            url = self._urls[self._current] + path
            try:
                async with self._session.request(
                    method, url, data=body, headers=self._headers, allow_redirects=False
                ) as response:
                    return response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:  # refused, reset, timeout
                last = exc
                logger.warning("controller %s failed (%r); trying the next", url, exc)
                self._current = (self._current + 1) % len(self._urls)
        logger.error("no controller reachable; last failure: %r", last)
        raise ServiceUnavailable("no controller reachable", code="controller_unavailable")

    async def dispatch(self, model: str, endpoint: Endpoint, exclude: list[str]) -> DispatchReply:
        ended, self._ended = self._ended[:MAX_RELEASES], self._ended[MAX_RELEASES:]
        body = DispatchRequest(model=model, endpoint=endpoint, exclude=exclude, release=ended)
        status, content = await self._call(
            "POST", "/internal/dispatch", body.model_dump_json().encode()
        )
        if status != 200:
            raise _controller_error(content, status)
        return DispatchReply.model_validate_json(content)

    async def models(self) -> list[ModelStatus]:
        status, content = await self._call("GET", "/internal/models")
        if status != 200:
            raise _controller_error(content, status)
        return ModelsReply.model_validate_json(content).models

    def release(self, worker_id: str) -> None:
        """A request on `worker_id` ended; the controller hears of it soon, off the hot path."""
        self._ended.append(worker_id)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._flush_interval)
        await self.flush()

    async def flush(self) -> None:
        """Send the queued ends now, in batches the controller accepts. Undelivered ends are
        dropped: heartbeats correct the counts."""
        ended, self._ended = self._ended, []
        for i in range(0, len(ended), MAX_RELEASES):
            batch = Release(worker_ids=ended[i : i + MAX_RELEASES])
            try:
                await self._call("POST", "/internal/release", batch.model_dump_json().encode())
            except ServiceUnavailable as exc:
                logger.debug("releases not delivered: %s", exc)
                return

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()


def _controller_error(content: bytes, status: int) -> CorralError:
    """The controller's error as the client should see it. The control plane refusing the
    gateway (a wrong control secret) is this service's fault, not the client's key: 503."""
    if status in (401, 403):
        logger.error("the controller refused the gateway (%d): check --control-secret", status)
        return ServiceUnavailable(
            "the gateway is misconfigured; try again later", code="controller_unavailable"
        )
    return parse_envelope(content, status)


def no_worker(model: str, tried: int) -> NoWorkerAvailable:
    return NoWorkerAvailable(
        f"{tried} worker(s) for model {model!r} failed before answering; retry shortly"
    )
