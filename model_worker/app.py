"""The worker app: `create_app(settings)`; the lifespan loads the model and joins the controller."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from model_worker.backends.base import Backend, BackendError
from model_worker.framing import as_client_error
from model_worker.model_files import ModelSource
from model_worker.routes import BODY_MODELS, ROUTES
from model_worker.settings import WorkerSettings
from model_worker.state import WorkerState, open_state
from servekit.app import app_state, service_app
from servekit.http import error_response
from servekit.metrics import Metrics


def create_app(
    settings: WorkerSettings,
    *,
    backend: Backend | None = None,
    source: ModelSource | None = None,
) -> FastAPI:
    """The worker app. Tests may pass a started `backend` and its `source`; else both come from
    settings."""
    metrics = Metrics("worker")

    async def open_worker(stack: contextlib.AsyncExitStack) -> WorkerState:
        return await open_state(settings, stack, metrics, backend=backend, source=source)

    app = service_app(
        title="Corral model worker",
        routes=ROUTES,
        metrics=metrics,
        open_state=open_worker,
        body_models=BODY_MODELS,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
    )
    app.add_exception_handler(BackendError, _engine_failed)
    return app


async def _engine_failed(request: Request, exc: Exception) -> Response:
    return error_response(as_client_error(exc), request)


async def leave_controller(app: FastAPI) -> None:
    """Shutdown began: leave the registry before draining, so nothing new is routed here."""
    state = app_state(app, WorkerState)
    if state is not None and state.link is not None:
        await state.link.close()
