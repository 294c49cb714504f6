"""The gateway app: `create_app(settings)`; the lifespan owns the HTTP sessions and stores."""

from __future__ import annotations

import contextlib
import os

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


# How `corral api --workers N` hands its settings to the gateway processes it starts.
SETTINGS_ENV = "CORRAL_API_SETTINGS_JSON"


def create_app_from_env() -> FastAPI:
    """The app of one of several gateway processes (uvicorn's factory): its settings come
    from the parent, which parsed the flags once (in the environment, not in `ps`)."""
    from servekit.logs import configure_logging

    settings = GatewaySettings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level)
    return create_app(settings)
