"""The gateway app: `create_app(settings)`; the lifespan owns the HTTP clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from corral.http import document_models, install_error_handlers
from openai_api.relay import Relay
from openai_api.router import ControllerClient
from openai_api.routes import BODY_MODELS, ROUTES
from openai_api.settings import GatewaySettings


def create_app(settings: GatewaySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        control = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.controller_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
        )
        workers = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=256),
        )
        async with control, workers:
            router = ControllerClient(control, settings.controller_urls, settings.control_secret)
            app.state.settings = settings
            app.state.router = router
            app.state.relay = Relay(workers, router, settings.max_retries)
            try:
                yield
            finally:
                await router.drain()

    app = FastAPI(title="Corral OpenAI-compatible API", lifespan=lifespan, routes=ROUTES)
    install_error_handlers(app)
    document_models(app, BODY_MODELS)
    return app
