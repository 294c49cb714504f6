"""The controller's domain logic over a registry: admit workers, pick one, account for load."""

from __future__ import annotations

import logging
import random
from urllib.parse import urlsplit

from controller.dispatch import NO_HINT, POLICIES, Hint
from controller.observe import ControllerMetrics
from protocol.control import (
    DispatchReply,
    DispatchRequest,
    Heartbeat,
    ModelStatus,
    WorkerRegistration,
    WorkerStatus,
)
from protocol.errors import (
    CorralError,
    InvalidRequest,
    ModelNotFound,
    NoWorkerAvailable,
    PermissionDenied,
)
from store.base import PrefixMap, Registry, WorkerRecord

logger = logging.getLogger(__name__)


def _affinity(hint: Hint, chosen: str) -> str:
    if not hint.holders:
        return "none"
    longest = max(hint.holders.values())
    return "holder" if hint.holders.get(chosen) == longest else "moved"


class Controller:
    def __init__(
        self,
        registry: Registry,
        policy: str,
        allowed_hosts: list[str],
        rng: random.Random | None = None,
        metrics: ControllerMetrics | None = None,
        prefixes: PrefixMap | None = None,
        cache_load_margin: float = 8.0,
    ) -> None:
        self.registry = registry
        # only cache_aware reads or writes the prefix map
        self._prefixes = prefixes if policy == "cache_aware" else None
        self._margin = cache_load_margin
        self._metrics = metrics
        self._choose = POLICIES[policy]
        self.policy = policy
        self._allowed = {h.lower() for h in allowed_hosts}
        self._rng = rng or random.Random()

    async def register(self, registration: WorkerRegistration) -> None:
        self._check_url(registration.url)
        await self.registry.register(registration)
        logger.info(
            "worker %s at %s serves %s (capacity %d)",
            registration.worker_id,
            registration.url,
            registration.models,
            registration.capacity,
        )

    def _check_url(self, url: str) -> None:
        """A worker URL is `http(s)://host:port` and nothing else (no user, path, query or
        fragment a relayed request could be steered with), on an allowed host."""
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port is None
            or parts.username is not None
            or parts.password is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or url != url.strip()
        ):
            raise InvalidRequest(f"worker url {url!r} must be http(s)://host:port", param="url")
        if "*" not in self._allowed and parts.hostname.lower() not in self._allowed:
            raise PermissionDenied(
                f"worker host {parts.hostname!r} is not in the allowed worker hosts",
                param="url",
                code="worker_host_not_allowed",
            )

    async def heartbeat(self, beat: Heartbeat) -> bool:
        return await self.registry.heartbeat(beat)

    async def deregister(self, worker_id: str) -> None:
        await self.registry.deregister(worker_id)
        logger.info("worker %s left", worker_id)

    async def dispatch(self, request: DispatchRequest) -> DispatchReply:
        if request.release:
            await self.release(request.release)
        workers = await self.registry.live_workers(request.model)
        candidates = [
            w
            for w in workers
            if w.healthy
            and request.endpoint in w.registration.capabilities
            and w.worker_id not in request.exclude
            and self._url_ok(w)
        ]
        if not candidates:
            try:
                await self._no_worker(request, workers)
            except CorralError as exc:
                if self._metrics is not None:
                    self._metrics.no_worker.labels(exc.code or exc.error_type).inc()
                raise
        keys = request.prefix_keys if self._prefixes is not None else []
        hint = await self._hint(request.model, keys) if keys else NO_HINT
        chosen = self._choose(candidates, self._rng, hint)
        await self.registry.add_in_flight(chosen.worker_id, +1)
        if keys and self._prefixes is not None:  # the chosen worker will hold them all
            await self._prefixes.remember(request.model, keys, chosen.worker_id)
            if self._metrics is not None:
                self._metrics.affinity.labels(_affinity(hint, chosen.worker_id)).inc()
        if self._metrics is not None:
            self._metrics.dispatches.labels(request.model, chosen.worker_id, self.policy).inc()
        return DispatchReply(worker_id=chosen.worker_id, url=chosen.registration.url)

    async def _hint(self, model: str, keys: list[str]) -> Hint:
        """Each worker's longest known prefix among `keys` (shortest first), in keys held."""
        assert self._prefixes is not None
        holders: dict[str, int] = {}
        for depth, worker_id in enumerate(await self._prefixes.lookup(model, keys), start=1):
            if worker_id is not None:
                holders[worker_id] = depth
        return Hint(holders=holders, keys=len(keys), margin=self._margin)

    def _url_ok(self, worker: WorkerRecord) -> bool:
        """Checked again at dispatch: a record in a shared store may not have come through
        `register` (or the allowed hosts changed since)."""
        try:
            self._check_url(worker.registration.url)
        except CorralError as exc:
            logger.warning("not dispatching to worker %s: %s", worker.worker_id, exc.message)
            return False
        return True

    async def _no_worker(self, request: DispatchRequest, workers: list[WorkerRecord]) -> None:
        if not workers and request.model not in await self.registry.known_models():
            available = sorted(
                {m for w in await self.registry.live_workers() for m in w.registration.models}
            )
            raise ModelNotFound(
                f"The model {request.model!r} does not exist. Available models: "
                f"{', '.join(available) or 'none'}",
                param="model",
            )
        if workers and not any(request.endpoint in w.registration.capabilities for w in workers):
            raise InvalidRequest(
                f"model {request.model!r} does not support {request.endpoint}",
                param="model",
                code="unsupported_endpoint",
            )
        raise NoWorkerAvailable(
            f"no live worker for model {request.model!r} right now; retry shortly"
        )

    async def release(self, worker_ids: list[str]) -> None:
        """One request ended on each worker named (a worker may be named several times)."""
        for worker_id in worker_ids:
            await self.registry.add_in_flight(worker_id, -1)

    async def models(self) -> list[ModelStatus]:
        by_model: dict[str, ModelStatus] = {}
        for w in await self.registry.live_workers():
            for name in w.registration.models:
                s = by_model.setdefault(
                    name, ModelStatus(id=name, workers=0, capacity=0, in_flight=0)
                )
                s.workers += 1
                s.capacity += w.registration.capacity
                s.in_flight += w.in_flight
                told = w.registration.context_length
                if told is not None:
                    s.context_length = min(told, s.context_length or told)
        return sorted(by_model.values(), key=lambda s: s.id)

    async def workers(self) -> list[WorkerStatus]:
        return [
            WorkerStatus(
                registration=w.registration,
                in_flight=w.in_flight,
                queued=w.queued,
                healthy=w.healthy,
                last_heartbeat_age_s=max(0.0, round(w.age_s, 3)),
                dispatched_total=w.dispatched_total,
            )
            for w in sorted(await self.registry.live_workers(), key=lambda w: w.worker_id)
        ]
