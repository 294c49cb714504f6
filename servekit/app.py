"""How every service is built: `create_app(settings, ...)` calls `service_app`.

A service describes its routes and an `open_state(stack)` coroutine that builds its state
object (the long-lived things: stores, clients, engines), registering on `stack` how to close
what it opened. The lifespan runs it, keeps the state as `app.state.service` while the app
serves, and unwinds the stack at shutdown. Handlers reach the state with `service_state`.
Tests hand `create_app` fakes for the parts they want to control; what a test passes in, the
service does not close.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.routing import BaseRoute

from servekit.guard import BrowserGuard, allowed_host_names
from servekit.http import document_models, install_error_handlers
from servekit.metrics import Metrics, install_metrics

S = TypeVar("S")
OpenState = Callable[[contextlib.AsyncExitStack], Awaitable[Any]]


def service_app(
    *,
    title: str,
    routes: Sequence[BaseRoute],
    metrics: Metrics,
    open_state: OpenState,
    body_models: Sequence[type[BaseModel]] = (),
    host: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    """The app: routes, OpenAI error envelopes, /metrics, and a lifespan around `open_state`.

    With `host` (the address it listens on), requests must name it, a loopback name or one of
    `allowed_hosts` in their Host header, and POST bodies must be JSON (`servekit.guard`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app.state.service = await open_state(stack)
            try:
                yield
            finally:
                app.state.service = None

    app = FastAPI(title=title, lifespan=lifespan, routes=list(routes))
    install_error_handlers(app)
    install_metrics(app, metrics, routes)
    if body_models:
        document_models(app, list(body_models))
    if host is not None:
        app.add_middleware(BrowserGuard, hosts=allowed_host_names(host, allowed_hosts))
    return app


def app_state(app: Any, kind: type[S]) -> S | None:
    """The service's state while the app serves, else None (before start-up, after shutdown)."""
    state = getattr(app.state, "service", None)
    if state is not None and not isinstance(state, kind):
        raise TypeError(f"the app's state is a {type(state).__name__}, not a {kind.__name__}")
    return state


def service_state(request: Request, kind: type[S]) -> S:
    """The state of the service serving `request`."""
    state = app_state(request.app, kind)
    if state is None:
        raise RuntimeError("the service is not started (no lifespan ran)")
    return state
