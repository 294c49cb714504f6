"""The worker's link to the controller: register, heartbeat every interval, deregister."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from protocol.control import Deregistration, Heartbeat, HeartbeatReply, WorkerRegistration

logger = logging.getLogger(__name__)


class ControllerLink:
    """Keeps this worker registered with one of the controllers, whichever answers.

    A heartbeat that the controller does not recognise (it restarted, or expired us) makes the
    worker register again at once, so a controller restart costs at most one heartbeat. Once
    `close` ran (the worker is draining), it never registers again. No failure ends the loop:
    one that is not the controller's (a reply that is not JSON, a schema mismatch) is logged
    and retried like an unreachable controller; `dead()` says the loop ended anyway.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        controller_urls: list[str],
        registration: WorkerRegistration,
        status: Callable[[], Heartbeat],
        interval: float,
        secret: str | None = None,
    ) -> None:
        if not controller_urls:
            raise ValueError("at least one controller URL is needed")
        self._client = client
        self._urls = [u.rstrip("/") for u in controller_urls]
        self._current = 0
        self.registration = registration
        self._status = status
        self._interval = interval
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.registered = False
        self.closed = False
        self.task: asyncio.Task[None] | None = None  # the `run` loop, once started
        self._warned = False

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run())
        return self.task

    def dead(self) -> bool:
        """The heartbeat loop ended while the worker is not shutting down."""
        return self.task is not None and self.task.done() and not self.closed

    async def run(self) -> None:
        """Register and heartbeat until cancelled or closed; never raises."""
        while not self.closed:
            try:
                await self.beat()
            except httpx.HTTPError as exc:
                self._failover(exc)
            except Exception as exc:  # a bad reply, a bug: keep the worker registered
                logger.exception("heartbeat failed")
                self._failover(exc)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Leave the registry for good: the worker is shutting down and draining."""
        self.closed = True
        await self.leave()

    async def beat(self) -> None:
        if self.closed:
            return
        status = self._status()
        if not status.healthy:
            if self.registered:
                logger.error("backend unhealthy: leaving the controller")
                await self.leave()
            return
        if not self.registered:
            await self._post("/internal/register", self.registration.model_dump())
            self.registered = True
            if self.closed:  # shutdown began while we registered: undo it
                await self.leave()
                return
            self._warned = False
            logger.info("registered with %s as %s", self._url, self.registration.worker_id)
            return
        reply = await self._post("/internal/heartbeat", status.model_dump())
        if not HeartbeatReply.model_validate(reply).known and not self.closed:
            logger.warning("controller %s forgot this worker: registering again", self._url)
            self.registered = False
            await self.beat()

    async def leave(self) -> None:
        if not self.registered:
            return
        self.registered = False
        body = Deregistration(worker_id=self.registration.worker_id).model_dump()
        try:
            await self._post("/internal/deregister", body)
        except httpx.HTTPError as exc:
            logger.warning("could not deregister from %s: %s", self._url, exc)

    @property
    def _url(self) -> str:
        return self._urls[self._current]

    async def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = await self._client.post(self._url + path, json=body, headers=self._headers)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"controller replied {type(data).__name__}, not an object")
        return data

    def _failover(self, exc: Exception) -> None:
        if not self._warned:
            logger.warning("controller %s unreachable (%s); will keep trying", self._url, exc)
            self._warned = True
        self.registered = False
        self._current = (self._current + 1) % len(self._urls)
