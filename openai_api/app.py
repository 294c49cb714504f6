"""The gateway app: `create_app(settings)`; the lifespan owns the HTTP sessions and stores."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from fastapi import FastAPI

from openai_api.auth import Gatekeeper
from openai_api.observe import GatewayMetrics
from openai_api.relay import Relay
from openai_api.router import ControllerClient
from openai_api.routes import BODY_MODELS, ROUTES
from openai_api.settings import GatewaySettings
from servekit.http import document_models, install_error_handlers
from servekit.metrics import Metrics, install_metrics
from store import open_keys, open_limiter


def create_app(settings: GatewaySettings) -> FastAPI:
    """The gateway app.

    It speaks HTTP to the controller and the workers with aiohttp, whose client costs a
    fraction of httpx's per request: that difference is most of the gateway's added latency.
    """
    metrics = Metrics("api")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        control = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=settings.controller_timeout, connect=settings.connect_timeout
            ),
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
        )
        workers = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=settings.connect_timeout,
                sock_read=settings.request_timeout,
            ),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            auto_decompress=False,
        )
        keys, limiter = open_keys(settings.store_url), open_limiter(settings.store_url)
        async with control, workers:
            router = ControllerClient(control, settings.controller_urls, settings.control_secret)
            gatekeeper = Gatekeeper(
                settings.api_keys,
                keys,
                limiter,
                static_rpm=settings.static_key_rpm,
                static_tpm=settings.static_key_tpm,
                cache_ttl=settings.key_cache_ttl,
            )
            app.state.settings = settings
            app.state.router = router
            app.state.gatekeeper = gatekeeper
            app.state.relay = Relay(workers, router, settings.max_retries, GatewayMetrics(metrics))
            try:
                yield
            finally:
                await router.close()
                await gatekeeper.drain()
                await keys.close()
                await limiter.close()

    app = FastAPI(title="Corral OpenAI-compatible API", lifespan=lifespan, routes=ROUTES)
    install_error_handlers(app)
    install_metrics(app, metrics, ROUTES)
    document_models(app, BODY_MODELS)
    return app
