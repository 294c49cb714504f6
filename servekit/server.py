"""Run an ASGI app with uvicorn, telling the app as soon as shutdown begins.

Uvicorn runs the lifespan shutdown only after open connections drained. A worker must leave the
controller's registry *before* draining, so that no new request is routed to it meanwhile:
`on_shutdown_begin` runs first, then uvicorn stops listening and drains.
"""

from __future__ import annotations

import logging
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
