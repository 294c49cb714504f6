"""Prometheus metrics: one registry per app (no globals), request counts by route and status,
and a /metrics route. Services add their own families to `Metrics.registry`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

# prometheus_client's multiprocess mode: set (before the library is imported) in processes that
# serve one port together; each writes its values to files there and /metrics sums them all.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Token latencies on CPUs and GPUs alike: 1 ms .. 30 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"corral_{service}_requests",
            "HTTP requests by route, model and status",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"corral_{service}_request_seconds",
            "time to the response's headers",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            f"corral_{service}_errors",
            "error replies by OpenAI error type",
            ["type"],
            registry=self.registry,
        )
        self.before_scrape: list[Callable[[], Any]] = []

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(f"corral_{self.service}_{name}", doc, list(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Sequence[str] = ()) -> Histogram:
        return Histogram(
            f"corral_{self.service}_{name}",
            doc,
            list(labels),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    async def endpoint(self, request: Request) -> Response:
        for refresh in self.before_scrape:
            result = refresh()
            if hasattr(result, "__await__"):
                await result
        registry = self.registry
        shared = os.environ.get(MULTIPROCESS_ENV)
        if shared:  # one of several processes on one port: every process's counts, summed
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=shared)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: Any, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
    """Count every request and serve the registry at /metrics."""
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.state.metrics = metrics


class MetricsMiddleware:
    """Counts every request by route template (not raw path: bounded label values), the model
    a handler put in `request.state.model`, and the status; times it to the headers."""

    def __init__(self, app: Any, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            model = str(scope.get("state", {}).get("model", ""))[:128]
            self.metrics.requests.labels(route, model, str(status)).inc()

    def _route(self, scope: Any) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "other"))
        return "other"
