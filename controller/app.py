"""The controller app: `create_app(settings)`; the lifespan opens the state store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from controller.observe import ControllerMetrics
from controller.routes import ROUTES
from controller.service import Controller
from controller.settings import ControllerSettings
from servekit.http import install_error_handlers
from servekit.metrics import Metrics, install_metrics
from store import Registry, open_registry


def create_app(settings: ControllerSettings, registry: Registry | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = registry or open_registry(settings.store_url, settings.worker_ttl)
        app.state.settings = settings
        app.state.controller = Controller(
            store,
            settings.policy,
            settings.allowed_worker_hosts,
            metrics=ControllerMetrics(metrics, store),
        )
        try:
            yield
        finally:
            await store.close()

    metrics = Metrics("controller")
    app = FastAPI(title="Corral controller", lifespan=lifespan, routes=ROUTES)
    install_error_handlers(app)
    install_metrics(app, metrics, ROUTES)
    return app
