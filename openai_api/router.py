"""The gateway's client of the controller: one dispatch per attempt, releases off the hot path."""

from __future__ import annotations

import asyncio
import logging

import httpx

from protocol.control import DispatchReply, DispatchRequest, Endpoint, ModelsReply, ModelStatus
from protocol.errors import NoWorkerAvailable, ServiceUnavailable, parse_envelope

logger = logging.getLogger(__name__)


class ControllerClient:
    """Talks to whichever controller answers; a dead controller costs one connect attempt."""

    def __init__(self, client: httpx.AsyncClient, urls: list[str], secret: str | None) -> None:
        if not urls:
            raise ValueError("at least one controller URL is needed")
        self._client = client
        self._urls = [u.rstrip("/") for u in urls]
        self._current = 0
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._pending: set[asyncio.Task[None]] = set()

    async def _call(self, method: str, path: str, json: object | None = None) -> httpx.Response:
        last: Exception | None = None
        for _ in range(len(self._urls)):
            url = self._urls[self._current] + path
            try:
                return await self._client.request(method, url, json=json, headers=self._headers)
            except httpx.TransportError as exc:  # connect refused, reset, timeout
                last = exc
                logger.warning("controller %s failed (%s); trying the next", url, exc)
                self._current = (self._current + 1) % len(self._urls)
        raise ServiceUnavailable(f"no controller reachable ({last})", code="controller_unavailable")

    async def dispatch(self, model: str, endpoint: Endpoint, exclude: list[str]) -> DispatchReply:
        body = DispatchRequest(model=model, endpoint=endpoint, exclude=exclude).model_dump()
        response = await self._call("POST", "/internal/dispatch", body)
        if response.status_code != 200:
            raise parse_envelope(response.content, response.status_code)
        return DispatchReply.model_validate_json(response.content)

    async def models(self) -> list[ModelStatus]:
        response = await self._call("GET", "/internal/models")
        if response.status_code != 200:
            raise parse_envelope(response.content, response.status_code)
        return ModelsReply.model_validate_json(response.content).models

    def release(self, worker_id: str) -> None:
        """Tell the controller a request ended, in the background (never delays the client)."""
        task = asyncio.create_task(self._release(worker_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release(self, worker_id: str) -> None:
        try:
            await self._call("POST", "/internal/release", {"worker_id": worker_id})
        except ServiceUnavailable as exc:
            logger.debug("release of %s not delivered: %s (heartbeat will correct)", worker_id, exc)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=2.0)


def no_worker(model: str, tried: int) -> NoWorkerAvailable:
    return NoWorkerAvailable(
        f"{tried} worker(s) for model {model!r} failed before answering; retry shortly"
    )
