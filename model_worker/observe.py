"""The worker's own metrics: time to first token, inter-token latency, tokens, load."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable

from prometheus_client import Gauge

from model_worker.backends.base import Delta, PrefixCacheStats
from model_worker.limiter import AdmissionQueue
from servekit.metrics import Metrics


class WorkerMetrics:
    def __init__(
        self,
        metrics: Metrics,
        limiter: AdmissionQueue,
        running: Callable[[], int],
        prefix_cache: PrefixCacheStats | None = None,
    ) -> None:
        self.ttft = metrics.histogram("ttft_seconds", "request start to first token", ["model"])
        self.itl = metrics.histogram("inter_token_seconds", "between streamed tokens", ["model"])
        self.tokens = metrics.counter("output_tokens", "generated tokens", ["model"])
        in_flight = Gauge(
            "corral_worker_in_flight", "requests running or queued", registry=metrics.registry
        )
        queued = Gauge(
            "corral_worker_queued", "requests waiting for a slot", registry=metrics.registry
        )
        engine = Gauge(
            "corral_worker_engine_running", "requests inside the engine", registry=metrics.registry
        )

        def refresh() -> None:
            in_flight.set(limiter.in_flight)
            queued.set(limiter.queued)
            engine.set(running())

        metrics.before_scrape.append(refresh)
        if prefix_cache is not None:
            self._export_prefix_cache(metrics, prefix_cache)

    @staticmethod
    def _export_prefix_cache(metrics: Metrics, stats: PrefixCacheStats) -> None:
        """Only for a backend with a prefix cache (vllm, llamacpp); others have no such metric."""
        hit_rate = Gauge(
            "corral_worker_prefix_cache_hit_rate",
            "share of prompt tokens found in the engine's prefix cache, since start",
            registry=metrics.registry,
        )
        queried = Gauge(
            "corral_worker_prefix_cache_queried_tokens",
            "prompt tokens looked up in the prefix cache, since start",
            registry=metrics.registry,
        )
        hits = Gauge(
            "corral_worker_prefix_cache_hit_tokens",
            "prompt tokens found in the prefix cache, since start",
            registry=metrics.registry,
        )

        def refresh() -> None:
            queried.set(stats.queried)
            hits.set(stats.hits)
            hit_rate.set(stats.hits / stats.queried if stats.queried else 0.0)

        metrics.before_scrape.append(refresh)

    async def metered(
        self, stream: AsyncGenerator[list[Delta], None], model: str
    ) -> AsyncGenerator[list[Delta], None]:
        """Pass the backend's deltas through, timing tokens as they come."""
        start = last = time.perf_counter()
        first = True
        tokens = 0
        try:
            async for deltas in stream:
                now = time.perf_counter()
                count = sum(len(d.token_ids) for d in deltas)
                if count:
                    if first:
                        self.ttft.labels(model).observe(now - start)
                        first = False
                    else:
                        self.itl.labels(model).observe(now - last)
                    last = now
                    tokens += count
                yield deltas
        finally:
            self.tokens.labels(model).inc(tokens)
            await stream.aclose()
