"""The gateway app: `create_app(settings)`; the lifespan owns the HTTP sessions and stores."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from openai_api.router import ControllerApi
from openai_api.routes import BODY_MODELS, ROUTES
from openai_api.settings import GatewaySettings
from openai_api.state import GatewayState, open_state
from servekit.app import service_app
from servekit.metrics import Metrics
from store import KeyStore, RateLimiter


def create_app(
    settings: GatewaySettings,
    *,
    keys: KeyStore | None = None,
    limiter: RateLimiter | None = None,
    controller: ControllerApi | None = None,
) -> FastAPI:
    """The gateway app. Tests may pass the key store, the rate limiter and the controller
    client; by default the stores come from `store_url` and the client from `controller_urls`."""
    metrics = Metrics("api")

    async def open_gateway(stack: contextlib.AsyncExitStack) -> GatewayState:
        return await open_state(
            settings, stack, metrics, keys=keys, limiter=limiter, controller=controller
        )

    return service_app(
        title="Corral OpenAI-compatible API",
        routes=ROUTES,
        metrics=metrics,
        open_state=open_gateway,
        body_models=BODY_MODELS,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
    )
