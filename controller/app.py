"""The controller app: `create_app(settings)`; the lifespan opens the state store."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from controller.routes import ROUTES
from controller.settings import ControllerSettings
from controller.state import ControllerState, open_state
from servekit.app import service_app
from servekit.metrics import Metrics
from store import Registry


def create_app(settings: ControllerSettings, *, registry: Registry | None = None) -> FastAPI:
    """The controller app; tests may pass the `registry` (default: opened from `store_url`)."""
    metrics = Metrics("controller")

    async def open_controller(stack: contextlib.AsyncExitStack) -> ControllerState:
        return await open_state(settings, stack, metrics, registry)

    return service_app(
        title="Corral controller",
        routes=ROUTES,
        metrics=metrics,
        open_state=open_controller,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
    )
