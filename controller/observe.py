"""The controller's metrics: dispatch decisions, and each live worker's load at scrape time."""

from __future__ import annotations

from prometheus_client import Gauge

from servekit.metrics import Metrics
from store.base import Registry


class ControllerMetrics:
    def __init__(self, metrics: Metrics, registry: Registry) -> None:
        self.dispatches = metrics.counter(
            "dispatches",
            "requests routed, by model, worker and policy",
            ["model", "worker", "policy"],
        )
        self.no_worker = metrics.counter(
            "dispatch_refusals", "dispatches with no worker to give, by reason", ["reason"]
        )
        self.affinity = metrics.counter(
            "cache_affinity",
            "cache_aware dispatches: to the worker holding the longest known prefix ('holder'), "
            "elsewhere though one was known ('moved': dead, excluded or over the load margin), "
            "or with no prefix known ('none')",
            ["outcome"],
        )
        in_flight = Gauge(
            "corral_controller_worker_in_flight",
            "in-flight requests per worker",
            ["worker"],
            registry=metrics.registry,
        )
        queued = Gauge(
            "corral_controller_worker_queued",
            "queued requests per worker",
            ["worker"],
            registry=metrics.registry,
        )
        live = Gauge(
            "corral_controller_live_workers",
            "live workers per model",
            ["model"],
            registry=metrics.registry,
        )

        async def refresh() -> None:
            workers = await registry.live_workers()
            for gauge in (in_flight, queued, live):
                gauge.clear()  # workers that left must not linger in the output
            self.forget_departed({w.worker_id for w in workers})
            for w in workers:
                in_flight.labels(w.worker_id).set(w.in_flight)
                queued.labels(w.worker_id).set(w.queued)
                for model in w.registration.models:
                    live.labels(model).inc()

        metrics.before_scrape.append(refresh)

    def forget_departed(self, live: set[str]) -> None:
        """Drop the dispatch series of workers that left: a worker id is new at every start,
        so they would pile up forever."""
        gone = {
            (s.labels["model"], s.labels["worker"], s.labels["policy"])
            for family in self.dispatches.collect()
            for s in family.samples
            if s.labels.get("worker") not in live and "worker" in s.labels
        }
        for labels in gone:
            self.dispatches.remove(*labels)
