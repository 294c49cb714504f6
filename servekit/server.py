"""Run an ASGI app with uvicorn, telling the app as soon as shutdown begins.

Uvicorn runs the lifespan shutdown only after open connections drained. A worker must leave the
controller's registry *before* draining, so that no new request is routed to it meanwhile:
`on_shutdown_begin` runs first, then uvicorn stops listening and drains.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_begin: Callable[[], Awaitable[None]] | None):
        super().__init__(config)
        self._on_begin = on_begin

    async def shutdown(self, sockets: Any = None) -> None:
        if self._on_begin is not None:
            try:
                await self._on_begin()
            except Exception:
                logger.exception("shutdown hook failed")
        await super().shutdown(sockets=sockets)


def run(
    app: Any,
    host: str,
    port: int,
    *,
    on_shutdown_begin: Callable[[], Awaitable[None]] | None = None,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
    forwarded_allow_ips: list[str] | None = None,
) -> None:
    """`forwarded_allow_ips`: the proxies whose X-Forwarded-For is believed (addresses or
    networks); None: uvicorn's default (127.0.0.1, or $FORWARDED_ALLOW_IPS)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=int(graceful_timeout),
        log_config=None,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    _Server(config, on_shutdown_begin).run()


def run_workers(
    factory: str,
    env: dict[str, str],
    workers: int,
    host: str,
    port: int,
    *,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
) -> None:
    """`workers` processes serving one port (uvicorn's supervisor: one listening socket
    shared by all, a process that dies replaced). Each builds its app by calling `factory`
    ("module:function"), reading its settings from `env`, set here for them to inherit.
    Their metrics go through prometheus_client's multiprocess mode (counters and histograms
    summed over the processes at /metrics), in a directory that lives as long as they do."""
    from servekit.metrics import MULTIPROCESS_ENV

    with tempfile.TemporaryDirectory(prefix="corral-metrics-") as metrics_dir:
        os.environ.update({**env, MULTIPROCESS_ENV: metrics_dir})
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=int(graceful_timeout),
            log_config=None,
        )
